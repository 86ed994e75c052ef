import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { gatherState, validateModelConfig, XlstmModel, type ModelConfig, type ModelState } from '../../../src/core/index.ts';
import { isPacked, unpackState } from '../../../src/core/gpu/pack.ts';
import { hostStepAvailable } from '../../../src/core/host/model-step.ts';
import { Rng } from '../../../src/util/rng.ts';
import { refInit } from '../../support/reference/index.ts';
import { maxRelDiff, modelFromParams } from '../../support/tiny-model.ts';
import { SIMD_CONFIG } from './step-pair.ts';

/** Two layers, and an MLP width whose up projection (2P = 42 columns) needs padding to whole vectors. */
const CONFIG: ModelConfig = validateModelConfig({ ...SIMD_CONFIG, num_layers: 2 });
const NO_CONV: ModelConfig = validateModelConfig({ ...CONFIG, ker_size: 0 });

/**
 * The config's model with every bias drawn at random: initialisation leaves most at 0 (up_l's, v's and the o
 * gate's among them), which would hide a wrong fused bias of v and o.
 */
function withBiases(config: ModelConfig, seed: number): XlstmModel {
  const params = refInit(config, seed);
  const rng = new Rng(seed);
  for (const [name, v] of params) if (name.endsWith('.bias')) params.set(name, v.map(() => rng.normal() * 0.5));
  return modelFromParams(config, params);
}

const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
/**
 * The whole-model step against the per-block kernels: the same float32 operations except v and the o gate, which
 * it takes from xn through the product W_l W_U (step-weights.ts) where those take u = xn W_l + b_l and then W_U.
 * Rounding then differs by an ulp or so per block; a wrong weight or a stale buffer differs by far more.
 */
const TOL = 1e-5;
const close = (got: tf.Tensor, want: tf.Tensor, what: string) => {
  expect(got.shape, what).toEqual(want.shape);
  expect(maxRelDiff(got.dataSync(), want.dataSync()), what).toBeLessThan(TOL);
};

/** A state of B rows after prompts of different content, so no row starts from the initial state. */
function runningState(model: XlstmModel, B: number, rng: Rng): ModelState {
  const prompt = Array.from({ length: B }, () => Array.from({ length: 5 }, () => rng.int(model.dims.V)));
  return model.prefill(tf.tensor2d(prompt, undefined, 'int32')).state;
}

describe('the whole-model decode step on wasm', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  describe.each([
    ['conv', CONFIG],
    ['no conv', NO_CONV],
  ] as const)('(%s)', (_, config) => {
    let model: XlstmModel;
    beforeAll(() => {
      model = withBiases(config, 3);
    });
    afterAll(() => model.dispose());

    it('runs here, and the model keeps its states packed (one row per sequence)', () => {
      expect(hostStepAvailable(model.dims)).toBe(true);
      tf.tidy(() => {
        expect(isPacked(model.initState(2))).toBe(true);
        expect(isPacked(runningState(model, 2, new Rng(1)))).toBe(true);
      });
    });

    it('agrees with the per-block kernels (XNNPACK matMuls) to float32 rounding: logits and every state tensor, over 6 steps', () => {
      const rng = new Rng(2);
      tf.tidy(() => {
        let a = runningState(model, 3, rng);
        let b = a;
        for (let t = 0; t < 6; t++) {
          const ids = tf.tensor1d([rng.int(model.dims.V), rng.int(model.dims.V), rng.int(model.dims.V)], 'int32');
          const host = model.hostStep(ids, a);
          const fused = model.fusedStep(ids, b);
          close(host.logits, fused.logits, `step ${t}`);
          const [ua, ub] = [unpackState(host.state, model.dims), unpackState(fused.state, model.dims)];
          ua.forEach((blk, i) => {
            for (const key of Object.keys(ub[i])) {
              // m is -Infinity in no row here (every row has run a prompt), so relative differences are defined.
              close(blk[key], ub[i][key], `step ${t} block ${i} ${key}`);
            }
          });
          [a, b] = [host.state, fused.state];
        }
      });
    });

    it('gives each row of a batch of 5 exactly what it gets alone (logits and state), over 4 steps', () => {
      const rng = new Rng(4);
      tf.tidy(() => {
        const B = 5;
        let batch = runningState(model, B, rng);
        let alone = Array.from({ length: B }, (_, r) => gatherState(batch, [r]));
        for (let t = 0; t < 4; t++) {
          const ids = Array.from({ length: B }, () => rng.int(model.dims.V));
          const out = model.step(tf.tensor1d(ids, 'int32'), batch);
          alone = alone.map((s, r) => {
            const one = model.step(tf.tensor1d([ids[r]], 'int32'), s);
            expect(bits(one.logits), `step ${t} row ${r} logits`).toEqual(bits(tf.slice(out.logits, [r, 0], [1, -1])));
            expect(bits(one.state[0].packed), `step ${t} row ${r} state`).toEqual(bits(gatherState(out.state, [r])[0].packed));
            return one.state;
          });
          batch = out.state;
        }
      });
    });
  });

  it('rebuilds its weight buffer when a trainable weight is assigned, and follows the per-block kernels after it', () => {
    const base = XlstmModel.init(CONFIG, 5);
    const model = base.asTrainable();
    tf.tidy(() => {
      const ids = tf.tensor1d([3, 9], 'int32');
      const state = runningState(model, 2, new Rng(6));
      const before = bits(model.hostStep(ids, state).logits);
      const w = model.weights.blocks[1] as unknown as { bDown: tf.Variable };
      w.bDown.assign(tf.add(w.bDown, 0.5));
      const after = bits(model.hostStep(ids, state).logits);
      expect(after).not.toEqual(before);
      close(model.hostStep(ids, state).logits, model.fusedStep(ids, state).logits, 'after the assignment');
    });
    model.dispose();
    base.dispose();
  });

  it('rejects a token id outside the vocabulary with INVALID_INPUT, leaking no tensor', () => {
    const model = XlstmModel.init(CONFIG, 3);
    tf.tidy(() => {
      const state = model.step(tf.tensor1d([1, 2], 'int32'), model.initState(2)).state; // builds the weight buffer
      const ids = tf.tensor1d([1, model.dims.V], 'int32');
      const before = tf.memory().numTensors;
      let caught: unknown;
      try {
        model.step(ids, state);
      } catch (e) {
        caught = e;
      }
      expect(caught).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/token ids expected integers in \[0, 32\), but got 32/) });
      expect(tf.memory().numTensors).toBe(before);
    });
    model.dispose();
  });
});
