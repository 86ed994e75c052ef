import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { FORMS, validateModelConfig, XlstmModel, type FormName } from '../../src/core/index.ts';
import { TEST_BACKENDS } from '../support/backends.ts';
import { refForward } from '../support/reference/index.ts';
import { expectNoTensorLeak, loadFixture, maxRelDiff, modelFromParams, seededTiny, TINY } from '../support/tiny-model.ts';

/** The core issue's bar: float32 against float64 to 1e-4 relative. */
const TOL = 1e-4;
const forms = Object.keys(FORMS) as FormName[];

const logitsOf = (model: XlstmModel, tokens: number[][], form: FormName): Float32Array =>
  tf.tidy(() => model.forward(tf.tensor2d(tokens, undefined, 'int32'), form)).dataSync() as Float32Array;

describe.each(TEST_BACKENDS)('XlstmModel on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  describe.each(['tiny', 'noconv'] as const)('the PyTorch fixture %s', (name) => {
    const fx = loadFixture(name);
    let model: XlstmModel;
    beforeAll(() => {
      model = modelFromParams(fx.config, fx.params);
    });
    afterAll(() => model.dispose());
    it.each(forms)('matches the float64 PyTorch logits in the %s form', (form) => {
      expect(maxRelDiff(logitsOf(model, fx.tokens, form), fx.logits.flat(2))).toBeLessThan(TOL);
    });
  });

  describe('a seeded tiny model against the float64 TypeScript reference', () => {
    let model: XlstmModel;
    let params: Map<string, Float64Array>;
    let want: number[];
    beforeAll(() => {
      ({ model, params } = seededTiny());
      want = refForward(TINY, params, tokens[0], 'recurrent').flatMap((row) => Array.from(row));
    });
    afterAll(() => model.dispose());
    const tokens = [[3, 14, 15, 9, 26, 53, 5, 8, 9, 7, 9, 32, 38, 46, 26, 43, 38, 32, 7, 9]];

    it.each(forms)('agrees in the %s form', (form) => {
      expect(maxRelDiff(logitsOf(model, tokens, form), want)).toBeLessThan(TOL);
    });

    it('prefill then step reproduces the forward logits at every later position', () => {
      const split = 11;
      const got = tf.tidy(() => {
        const t = tf.tensor2d(tokens, undefined, 'int32');
        const pre = model.prefill(tf.slice(t, [0, 0], [1, split]) as tf.Tensor2D);
        const rows = [pre.logits];
        let state = pre.state;
        for (let j = split; j < tokens[0].length; j++) {
          const out = model.step(tf.tensor1d([tokens[0][j]], 'int32'), state);
          rows.push(out.logits);
          state = out.state;
        }
        return tf.concat(rows, 0);
      });
      const V = TINY.vocab_size;
      expect(maxRelDiff(got.dataSync(), want.slice((split - 1) * V))).toBeLessThan(TOL);
      got.dispose();
    });

    it('prefill can continue from a state (two prompt halves equal the whole prompt)', () => {
      const got = tf.tidy(() => {
        const t = tf.tensor2d(tokens, undefined, 'int32');
        const first = model.prefill(tf.slice(t, [0, 0], [1, 7]) as tf.Tensor2D);
        return model.prefill(tf.slice(t, [0, 7], [1, tokens[0].length - 7]) as tf.Tensor2D, first.state).logits;
      });
      const V = TINY.vocab_size;
      expect(maxRelDiff(got.dataSync(), want.slice(-V))).toBeLessThan(TOL);
      got.dispose();
    });

    it('leaks no tensors in forward, prefill or step', async () => {
      await expectNoTensorLeak(() => {
        tf.tidy(() => {
          const t = tf.tensor2d(tokens, undefined, 'int32');
          model.forward(t, 'parallel');
          const pre = model.prefill(t);
          model.step(tf.tensor1d([1], 'int32'), pre.state);
        });
      });
    });
  });

  describe('batch independence', () => {
    let model: XlstmModel;
    beforeAll(() => {
      ({ model } = seededTiny(TINY, 11));
    });
    afterAll(() => model.dispose());
    const row = [5, 17, 2, 40, 63, 0, 12, 12, 9];
    it.each(forms)('a row has the same logits alone and beside other rows (%s)', (form) => {
      const alone = logitsOf(model, [row], form);
      const batched = logitsOf(model, [[1, 2, 3, 4, 5, 6, 7, 8, 9], row, [60, 61, 62, 63, 0, 1, 2, 3, 4]], form);
      const V = TINY.vocab_size;
      const mine = batched.slice(row.length * V, 2 * row.length * V);
      expect(maxRelDiff(mine, alone)).toBeLessThan(1e-6);
    });
  });

  describe('the stabiliser', () => {
    it.each([60, -60])('gate pre-activations of %d over T = 2048 stay finite and correct', (bias) => {
      const { params } = seededTiny(TINY, 5);
      for (const [name, v] of params) {
        if (/\.(igate|fgate|W_i|W_f)\.bias$/.test(name)) v.fill(bias);
      }
      const model = modelFromParams(TINY, params);
      const T = 2048;
      const tokens = [Array.from({ length: T }, (_, j) => (j * 7 + 3) % TINY.vocab_size)];
      const want = refForward(TINY, params, tokens[0], 'recurrent');
      const wantLast = Array.from(want[T - 1]);
      for (const form of ['chunkwise', 'recurrent'] as const) {
        const got = logitsOf(model, tokens, form);
        expect(got.every(Number.isFinite)).toBe(true);
        // The last position carries the accumulated error of the whole sequence.
        expect(maxRelDiff(got.slice(-TINY.vocab_size), wantLast)).toBeLessThan(TOL);
      }
      model.dispose();
    });
  });

  it('refuses float token ids with a clear error', () => {
    const { model } = seededTiny();
    expect(() => tf.tidy(() => model.forward(tf.tensor2d([[1, 2]]) as tf.Tensor2D))).toThrow(/tokens expected dtype int32, but got float32/);
    model.dispose();
  });
});

describe('model config', () => {
  it.each([
    [{ ...TINY, head_num: 0 }, /head_num expected an integer >= 1, but got 0/],
    [{ ...TINY, signature: [0, 0] }, /signature expected at least one block/],
    [{ ...TINY, p_factor: [2] }, /p_factor expected a list of two numbers/],
    [{ ...TINY, extra: 1 }, /unknown key extra/],
    [{ ...TINY, vocab_size: 1.5 }, /vocab_size expected an integer/],
  ])('rejects %j', (raw, message) => {
    expect(() => validateModelConfig(raw, 'test.yaml: model')).toThrow(message);
  });
});

describe.each(TEST_BACKENDS)('the fused decode step on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });
  it.each(['tiny', 'noconv'] as const)('equals the op-by-op step over 12 steps of a batch of 3 (%s fixture)', (name) => {
    const fx = loadFixture(name);
    const model = modelFromParams(fx.config, fx.params);
    const diff = tf.tidy(() => {
      let fused = model.initState(3);
      let ops = model.initState(3);
      let worst = 0;
      for (let t = 0; t < 12; t++) {
        const ids = tf.tensor1d([t % 64, (t * 5 + 1) % 64, 63 - t], 'int32');
        const a = model.fusedStep(ids, fused);
        const b = model.opStep(ids, ops);
        worst = Math.max(worst, maxRelDiff(a.logits.dataSync(), b.logits.dataSync()));
        fused = a.state;
        ops = b.state;
      }
      return worst;
    });
    expect(diff).toBeLessThan(1e-5);
    model.dispose();
  });
});
