/** GatherV2: repeated indices, other axes, batchDims, and an embedding lookup at GPT-2 vocabulary scale. */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { checkExact, checkGradient, describeOnBackends, normal } from './check.ts';

describeOnBackends('gather gradients', () => {
  it('axis 0 with repeated indices sums their rows', () => {
    const rng = new Rng(167);
    const indices = tf.tensor1d([1, 3, 1, 1, 0], 'int32');
    checkGradient((x) => tf.gather(x, indices), [normal(rng, [5, 3])], rng);
    indices.dispose();
  });

  it('axis 1 with a matrix of indices, repeats included', () => {
    const rng = new Rng(173);
    const indices = tf.tensor2d([[0, 3], [3, 3]], [2, 2], 'int32');
    checkGradient((x) => tf.gather(x, indices, 1), [normal(rng, [2, 4, 3])], rng);
    checkGradient((x) => tf.gather(x, indices, -1), [normal(rng, [3, 4])], rng);
  });

  it('batchDims 1: each batch row scatters back through its own indices', () => {
    // Checked against sums written out by hand rather than finite differences: wasm's GatherV2
    // forward is wrong for batchDims > 0 in tfjs 4.22 (it reads other batches' rows).
    const ids = [[2, 0, 2], [1, 1, 3]];
    const indices = tf.tensor2d(ids, [2, 3], 'int32');
    const dy = Array.from({ length: 12 }, (_, i) => i + 1);
    // x [2, 4, 2] along axis 1: dx[b, ids[b][i], c] += dy[b, i, c].
    const alongRows = new Array(16).fill(0);
    ids.forEach((row, b) => row.forEach((id, i) => [0, 1].forEach((c) => (alongRows[b * 8 + id * 2 + c] += dy[b * 6 + i * 2 + c]))));
    checkExact((x) => tf.gather(x, indices, 1, 1), [{ shape: [2, 4, 2], values: new Array(16).fill(0) }], dy, [alongRows]);
    // x [2, 2, 4] along axis 2: dx[b, m, ids[b][i]] += dy[b, m, i].
    const alongColumns = new Array(16).fill(0);
    ids.forEach((row, b) => [0, 1].forEach((m) => row.forEach((id, i) => (alongColumns[b * 8 + m * 4 + id] += dy[b * 6 + m * 3 + i]))));
    checkExact((x) => tf.gather(x, indices, 2, 1), [{ shape: [2, 2, 4], values: new Array(16).fill(0) }], dy, [alongColumns]);
    indices.dispose();
  });

  it('an embedding of 50258 x 64 looked up by 1024 tokens: exact sums, no one-hot in memory', async () => {
    const [V, d, n] = [50258, 64, 1024];
    const rng = new Rng(181);
    // Half the tokens come from a small set, so many rows repeat; the rest spread over the vocabulary.
    const ids = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? rng.int(8) : rng.int(V)));
    const dyValues = Float32Array.from({ length: n * d }, () => rng.normal());
    const tensorsBefore = tf.memory().numTensors;
    const table = tf.zeros([V, d]);
    const indices = tf.tensor1d(ids, 'int32');
    const dy = tf.tensor2d(dyValues, [n, d]);
    const bytesBefore = tf.memory().numBytes;
    let grad: tf.Tensor | undefined;
    const profile = await tf.profile(() => {
      grad = tf.grad((t: tf.Tensor) => tf.gather(t, indices))(table, dy);
    });
    const got = grad!.dataSync();
    const expected = new Float64Array(V * d);
    ids.forEach((id, i) => {
      for (let j = 0; j < d; j++) expected[id * d + j] += dyValues[i * d + j];
    });
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
    // Float32 sums of at most a few hundred standard normals: rounding stays far below 1e-4.
    expect(worst).toBeLessThan(1e-4);
    // dx is V*d*4 = 12.9 MB; a one-hot of the indices alone would be n*V*4 = 206 MB. The peak
    // (dx, the saved copy of the table, the scatter's output) stays under half of that.
    expect(profile.peakBytes - bytesBefore).toBeLessThan((n * V * 4) / 2);
    tf.dispose([table, indices, dy, grad!]);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });
});
