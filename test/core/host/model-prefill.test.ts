import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { gatherState, validateModelConfig, XlstmModel, type ModelConfig, type ModelState } from '../../../src/core/index.ts';
import { unpackState } from '../../../src/core/gpu/pack.ts';
import { chunkLength } from '../../../src/core/host/model-prefill.ts';
import { Rng } from '../../../src/util/rng.ts';
import { refForward } from '../../support/reference/index.ts';
import { maxRelDiff, modelFromParams, seededTiny, TINY } from '../../support/tiny-model.ts';
import { SIMD_CONFIG } from './step-pair.ts';

/** Two layers, and an MLP width whose up projection (2P = 42 columns) needs padding to whole vectors. */
const CONFIG: ModelConfig = validateModelConfig({ ...SIMD_CONFIG, num_layers: 2 });
const NO_CONV: ModelConfig = validateModelConfig({ ...CONFIG, ker_size: 0 });
/** The forms' bar: float32 against float64 (or against each other) to 1e-4 relative. */
const TOL = 1e-4;

const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
const prompts = (rng: Rng, B: number, T: number, V: number) => Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));

/**
 * The prompts stepped one token at a time through the whole-model decode step, which generation continues with:
 * prefill must leave exactly the state it would. (That step against the per-block kernels: model-step.test.ts.)
 */
function stepped(model: XlstmModel, tokens: number[][], state: ModelState): { logits: tf.Tensor2D; state: ModelState } {
  let out = { logits: tf.zeros([0, 0]) as tf.Tensor2D, state };
  for (let t = 0; t < tokens[0].length; t++) out = model.hostStep(tf.tensor1d(tokens.map((row) => row[t]), 'int32'), out.state);
  return out;
}

/** Every state tensor of every block, equal bit for bit. */
function expectSameState(model: XlstmModel, got: ModelState, want: ModelState, what: string): void {
  const [a, b] = [unpackState(got, model.dims), unpackState(want, model.dims)];
  b.forEach((blk, i) => {
    for (const key of Object.keys(blk)) expect(bits(a[i][key]), `${what}: block ${i} ${key}`).toEqual(bits(blk[key]));
  });
}

describe('the whole-model prefill on wasm', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  describe.each([
    ['conv', CONFIG],
    ['no conv', NO_CONV],
  ] as const)('(%s)', (_, config) => {
    let model: XlstmModel;
    beforeAll(() => {
      model = XlstmModel.init(config, 3);
    });
    afterAll(() => model.dispose());

    it('is the path prefill takes here, unless a form is asked for', () => {
      const spy = vi.spyOn(model, 'hostPrefill');
      tf.tidy(() => {
        model.prefill(tf.tensor2d([[1, 2, 3]], undefined, 'int32'));
        expect(spy).toHaveBeenCalledTimes(1);
        model.prefill(tf.tensor2d([[1, 2, 3]], undefined, 'int32'), undefined, 'chunkwise');
        expect(spy).toHaveBeenCalledTimes(1);
      });
      spy.mockRestore();
    });

    it('equals stepping the tokens one by one, bit for bit: 3 rows of 45 tokens (two passes), logits and every state tensor', () => {
      expect(chunkLength(3, 45)).toBeLessThan(45);
      const tokens = prompts(new Rng(1), 3, 45, model.dims.V);
      tf.tidy(() => {
        const got = model.prefill(tf.tensor2d(tokens, undefined, 'int32'));
        const want = stepped(model, tokens, model.initState(3));
        expect(bits(got.logits)).toEqual(bits(want.logits));
        expectSameState(model, got.state, want.state, 'from the initial state');
      });
    });

    it('continues from a given state as stepping does, and two halves equal the whole prompt', () => {
      const rng = new Rng(2);
      const start = prompts(rng, 2, 6, model.dims.V);
      const tokens = prompts(rng, 2, 21, model.dims.V);
      tf.tidy(() => {
        const running = stepped(model, start, model.initState(2)).state;
        const got = model.prefill(tf.tensor2d(tokens, undefined, 'int32'), running);
        const want = stepped(model, tokens, running);
        expect(bits(got.logits)).toEqual(bits(want.logits));
        expectSameState(model, got.state, want.state, 'from a running state');
        const whole = model.prefill(tf.tensor2d(start.map((row, r) => [...row, ...tokens[r]]), undefined, 'int32'));
        expect(bits(whole.logits)).toEqual(bits(got.logits));
        expectSameState(model, whole.state, got.state, 'whole against halves');
      });
    });

    it('takes a 1-token prompt as one step', () => {
      tf.tidy(() => {
        const state = stepped(model, [[4], [9]], model.initState(2)).state;
        const got = model.prefill(tf.tensor2d([[7], [30]], undefined, 'int32'), state);
        const want = model.hostStep(tf.tensor1d([7, 30], 'int32'), state);
        expect(bits(got.logits)).toEqual(bits(want.logits));
        expectSameState(model, got.state, want.state, 'T = 1');
      });
    });

    it('gives each row of a batch of 5 exactly what it gets alone (other pass lengths), logits and state', () => {
      const tokens = prompts(new Rng(4), 5, 31, model.dims.V);
      expect(chunkLength(5, 31)).not.toBe(chunkLength(1, 31));
      tf.tidy(() => {
        const batch = model.prefill(tf.tensor2d(tokens, undefined, 'int32'));
        tokens.forEach((row, r) => {
          const alone = model.prefill(tf.tensor2d([row], undefined, 'int32'));
          expect(bits(alone.logits), `row ${r} logits`).toEqual(bits(tf.slice(batch.logits, [r, 0], [1, -1])));
          expect(bits(alone.state[0].packed), `row ${r} state`).toEqual(bits(gatherState(batch.state, [r])[0].packed));
        });
      });
    });

    it('keeps rows exact in a batch so wide that a pass covers one position of every row (130 rows of 3 tokens)', () => {
      const tokens = prompts(new Rng(6), 130, 3, model.dims.V);
      expect(chunkLength(130, 3)).toBe(1);
      tf.tidy(() => {
        const batch = model.prefill(tf.tensor2d(tokens, undefined, 'int32'));
        for (const r of [0, 77, 129]) {
          const alone = model.prefill(tf.tensor2d([tokens[r]], undefined, 'int32'));
          expect(bits(alone.logits), `row ${r} logits`).toEqual(bits(tf.slice(batch.logits, [r, 0], [1, -1])));
          expect(bits(alone.state[0].packed), `row ${r} state`).toEqual(bits(gatherState(batch.state, [r])[0].packed));
        }
      });
    });

    it('agrees with the chunkwise form within the forms tolerance, logits and state', () => {
      const tokens = prompts(new Rng(5), 2, 37, model.dims.V);
      tf.tidy(() => {
        const t = tf.tensor2d(tokens, undefined, 'int32');
        const got = model.prefill(t);
        const want = model.prefill(t, undefined, 'chunkwise');
        expect(maxRelDiff(got.logits.dataSync(), want.logits.dataSync())).toBeLessThan(TOL);
        const [a, b] = [unpackState(got.state, model.dims), unpackState(want.state, model.dims)];
        b.forEach((blk, i) => {
          for (const key of Object.keys(blk)) expect(maxRelDiff(a[i][key].dataSync(), blk[key].dataSync()), `block ${i} ${key}`).toBeLessThan(TOL);
        });
      });
    });
  });

  it.each([0, -60])('matches the float64 reference at the end of a 2048-token prompt (gate biases %d: the stabiliser)', (bias) => {
    const { model: seeded, params } = seededTiny(TINY, 9);
    seeded.dispose();
    for (const [name, v] of params) if (/\.(igate|fgate|W_i|W_f)\.bias$/.test(name) && bias !== 0) v.fill(bias);
    const m = modelFromParams(TINY, params);
    const T = 2048;
    const tokens = Array.from({ length: T }, (_, j) => (j * 7 + 3) % TINY.vocab_size);
    const want = refForward(TINY, params, tokens, 'recurrent')[T - 1];
    const got = tf.tidy(() => m.prefill(tf.tensor2d([tokens], undefined, 'int32')).logits.dataSync() as Float32Array);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(maxRelDiff(got, want)).toBeLessThan(TOL);
    m.dispose();
  });

  it('rejects a token id outside the vocabulary with INVALID_INPUT, leaking no tensor', () => {
    const model = XlstmModel.init(CONFIG, 3);
    tf.tidy(() => {
      model.prefill(tf.tensor2d([[1, 2]], undefined, 'int32')); // builds the weight buffer
      const ids = tf.tensor2d([[1, 2], [3, model.dims.V]], undefined, 'int32');
      const state = model.initState(2);
      const before = tf.memory().numTensors;
      expect(() => model.prefill(ids, state)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', message: expect.stringMatching(/token ids expected integers in \[0, 32\), but got 32/) }));
      expect(tf.memory().numTensors).toBe(before);
    });
    model.dispose();
  });

  it('rejects a state of another batch size', () => {
    const model = XlstmModel.init(CONFIG, 3);
    tf.tidy(() => {
      expect(() => model.prefill(tf.tensor2d([[1, 2]], undefined, 'int32'), model.initState(2))).toThrow(/packed prefill state expected shape \[1, \d+\], but got \[2,\d+\]/);
    });
    model.dispose();
  });
});

