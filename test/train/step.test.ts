import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { nextTokenLoss, weightEntries, XlstmModel } from '../../src/core/index.ts';
import type { Batch } from '../../src/data/index.ts';
import { applyGradientSum, countTargets, gradientSum, localStep, optimizerFor, splitRows } from '../../src/train/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { expectNoTensorLeak } from '../support/tiny-model.ts';
import { TINY_TRAIN_MODEL, tinyRunConfig } from './support/synthetic.ts';

const PAD = 63;

function randomBatch(rows: number, length: number, seed: number, padTail = 0): Batch {
  const rng = new Rng(seed);
  const tokens = Int32Array.from({ length: rows * length }, () => rng.int(62));
  // The last row ends in padding, as the last window of a packed stream does.
  for (let t = length - padTail; t < length; t++) tokens[(rows - 1) * length + t] = PAD;
  return { tokens, batch: rows, length };
}

describe('one training step', () => {
  let model: XlstmModel;
  beforeAll(async () => {
    await selectBackend('cpu');
    model = XlstmModel.init(TINY_TRAIN_MODEL, 11).asTrainable();
  });
  afterAll(() => model.dispose());

  it('should count only targets that are not padding', () => {
    const b = randomBatch(3, 9, 1, 4);
    expect(countTargets(b, PAD)).toBe(3 * 8 - 4);
  });

  it('should split rows into near-equal consecutive shards', () => {
    const b = randomBatch(5, 4, 2);
    const shards = splitRows(b, 2);
    expect(shards.map((s) => s.batch)).toEqual([3, 2]);
    expect(Array.from(shards[0].tokens).concat(Array.from(shards[1].tokens))).toEqual(Array.from(b.tokens));
    expect(splitRows(randomBatch(1, 4, 3), 3)).toHaveLength(1);
  });

  it("should sum count-weighted gradients whose mean is the gradient of the whole batch's masked mean loss", async () => {
    const whole = randomBatch(6, 9, 4, 5);
    await expectNoTensorLeak(async () => {
      const parts = await gradientSum(model, splitRows(whole, 3), PAD);
      // The oracle: tfjs's own gradient of the masked mean loss over all six rows at once.
      const vars = weightEntries(model.weights).map(([, t]) => t as tf.Variable);
      const { value, grads } = tf.variableGrads(() => {
        const w = tf.tensor2d(whole.tokens, [6, 9], 'int32');
        const mask = tf.cast(tf.notEqual(tf.slice(w, [0, 1], [6, 8]), tf.scalar(PAD, 'int32')), 'float32') as tf.Tensor2D;
        return nextTokenLoss(model, w, mask);
      }, vars);
      expect(parts.count).toBe(countTargets(whole, PAD));
      expect(parts.lossSum / parts.count).toBeCloseTo(value.dataSync()[0], 5);
      vars.forEach((v, j) => {
        const ours = parts.grads[j].dataSync();
        const want = grads[v.name].dataSync();
        let err = 0;
        let scale = 0;
        for (let i = 0; i < want.length; i++) {
          err = Math.max(err, Math.abs(ours[i] / parts.count - want[i]));
          scale = Math.max(scale, Math.abs(want[i]));
        }
        expect(err).toBeLessThanOrEqual(1e-5 * Math.max(scale, 1e-3));
      });
      value.dispose();
      Object.values(grads).forEach((g) => g.dispose());
      parts.grads.forEach((g) => g.dispose());
    });
  });

  it('should decay matrices and leave norms, biases and the embedding alone', async () => {
    const cfg = tinyRunConfig('unused', { optimizer: { lr: 0.1, weight_decay: 0.5 } });
    const fresh = XlstmModel.init(TINY_TRAIN_MODEL, 12);
    const m = fresh.asTrainable();
    fresh.dispose();
    const adamw = optimizerFor(m, cfg);
    const names = weightEntries(m.weights).map(([name]) => name);
    const before = new Map(weightEntries(m.weights).map(([n, t]) => [n, Float32Array.from(t.dataSync())]));
    // Zero gradients: Adam moves nothing, so any change is the decoupled decay p <- p (1 - lr wd).
    const zeros = { grads: weightEntries(m.weights).map(([, t]) => tf.zerosLike(t)), lossSum: 1, count: 1 };
    applyGradientSum(adamw, names, zeros, 0.1, 1);
    for (const [name, t] of weightEntries(m.weights)) {
      const ratio = t.dataSync()[0] / before.get(name)![0];
      const decays = t.rank >= 2 && name !== 'embedding';
      if (before.get(name)![0] !== 0) expect(ratio).toBeCloseTo(decays ? 1 - 0.1 * 0.5 : 1, 6);
    }
    adamw.dispose();
    m.dispose();
  });

  it('should fail with a clear reason, and change nothing, when the loss is not finite', () => {
    const cfg = tinyRunConfig('unused');
    const adamw = optimizerFor(model, cfg);
    const names = weightEntries(model.weights).map(([name]) => name);
    const before = weightEntries(model.weights).map(([, t]) => Float32Array.from(t.dataSync()));
    const poisoned = { grads: weightEntries(model.weights).map(([, t]) => tf.zerosLike(t)), lossSum: NaN, count: 5 };
    expect(() => applyGradientSum(adamw, names, poisoned, 0.01, 7)).toThrow(/training step 7 expected a finite loss, but got NaN/);
    const infinite = { grads: weightEntries(model.weights).map(([, t]) => tf.fill(t.shape, Infinity)), lossSum: 1, count: 1 };
    expect(() => applyGradientSum(adamw, names, infinite, 0.01, 8)).toThrow(/training step 8 expected a finite gradient norm, but got Infinity/);
    weightEntries(model.weights).forEach(([, t], j) => expect(Array.from(t.dataSync())).toEqual(Array.from(before[j])));
    expect(adamw.stepCount).toBe(0);
    adamw.dispose();
  });

  it('should leave no tensors behind after a whole step', async () => {
    const adamw = optimizerFor(model, tinyRunConfig('unused'));
    await localStep(model, adamw, [randomBatch(2, 9, 5)], { padId: PAD, lr: 0.01, step: 1 });
    await expectNoTensorLeak(() => localStep(model, adamw, [randomBatch(2, 9, 6), randomBatch(2, 9, 7)], { padId: PAD, lr: 0.01, step: 2 }));
    adamw.dispose();
  });
});
