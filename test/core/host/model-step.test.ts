import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { gatherState, validateModelConfig, XlstmModel, type ModelConfig, type ModelState } from '../../../src/core/index.ts';
import { isPacked, unpackState } from '../../../src/core/gpu/pack.ts';
import { hostStepAvailable } from '../../../src/core/host/model-step.ts';
import { Rng } from '../../../src/util/rng.ts';
import { SIMD_CONFIG } from './step-pair.ts';

/** Two layers, and an MLP width whose up projection (2P = 42 columns) needs padding to whole vectors. */
const CONFIG: ModelConfig = validateModelConfig({ ...SIMD_CONFIG, num_layers: 2 });
const NO_CONV: ModelConfig = validateModelConfig({ ...CONFIG, ker_size: 0 });

const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

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
      model = XlstmModel.init(config, 3);
    });
    afterAll(() => model.dispose());

    it('runs here, and the model keeps its states packed (one row per sequence)', () => {
      expect(hostStepAvailable(model.dims)).toBe(true);
      tf.tidy(() => {
        expect(isPacked(model.initState(2))).toBe(true);
        expect(isPacked(runningState(model, 2, new Rng(1)))).toBe(true);
      });
    });

    it('equals the per-block kernels (XNNPACK matMuls) bit for bit: logits and every state tensor, over 6 steps', () => {
      const rng = new Rng(2);
      tf.tidy(() => {
        let a = runningState(model, 3, rng);
        let b = a;
        for (let t = 0; t < 6; t++) {
          const ids = tf.tensor1d([rng.int(model.dims.V), rng.int(model.dims.V), rng.int(model.dims.V)], 'int32');
          const host = model.hostStep(ids, a);
          const fused = model.fusedStep(ids, b);
          expect(bits(host.logits), `step ${t}`).toEqual(bits(fused.logits));
          const [ua, ub] = [unpackState(host.state, model.dims), unpackState(fused.state, model.dims)];
          ua.forEach((blk, i) => {
            for (const key of Object.keys(ub[i])) expect(bits(blk[key]), `step ${t} block ${i} ${key}`).toEqual(bits(ub[i][key]));
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
      expect(after).toEqual(bits(model.fusedStep(ids, state).logits));
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
