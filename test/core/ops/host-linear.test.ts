import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { hostIO } from '../../../src/core/host/io.ts';
import { columnSums, inputGrad, transposed, weightGrad } from '../../../src/core/ops/host-linear.ts';
import { Rng } from '../../../src/util/rng.ts';
import { TEST_BACKENDS } from '../../support/backends.ts';
import { maxRelDiff } from '../../support/tiny-model.ts';

/** The host linear-layer helpers against tfjs's own transpose, matMul and sum. */
describe.each(TEST_BACKENDS)('host linear helpers on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  // 37 x 19: neither side a multiple of the 16-wide transpose tile.
  const [N, inDim, outDim] = [37, 19, 23];
  const rng = new Rng(4);
  const values = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const xv = values(N * inDim);
  const dyv = values(N * outDim);
  const wv = values(inDim * outDim);

  /** Runs f on host tensors of the given values and returns its output's values. */
  function host(f: (io: ReturnType<typeof hostIO>, ...t: tf.TensorInfo[]) => tf.TensorInfo, ...inputs: tf.Tensor[]): Float32Array {
    const io = hostIO(backend, tf.backend());
    const out = f(io, ...inputs);
    const data = Float32Array.from(io.view(out));
    io.free(out);
    return data;
  }

  it('transposes, and gives x^T dy, dy W^T and column sums as tfjs does', () => {
    tf.tidy(() => {
      const x = tf.tensor2d(xv, [N, inDim]);
      const dy = tf.tensor2d(dyv, [N, outDim]);
      const W = tf.tensor2d(wv, [inDim, outDim]);
      expect(Array.from(host((io, a) => transposed(io, a), x))).toEqual(Array.from(tf.transpose(x).dataSync()));
      expect(maxRelDiff(host((io, a, b) => weightGrad(io, a, b), x, dy), tf.matMul(x, dy, true, false).dataSync())).toBeLessThan(1e-6);
      expect(maxRelDiff(host((io, a, b) => inputGrad(io, a, b), dy, W), tf.matMul(dy, W, false, true).dataSync())).toBeLessThan(1e-6);
      expect(maxRelDiff(host((io, a) => columnSums(io, a, 4, 11), dy), tf.sum(tf.slice(dy, [0, 4], [N, 11]), 0).dataSync())).toBeLessThan(1e-6);
    });
  });

  // Whole 4 x 4 blocks only, blocks with a column or row remainder, and less than one block (wasm moves the blocks
  // in SIMD and the rest in JavaScript).
  it.each([[64, 1024], [1024, 64], [8, 13], [13, 8], [3, 5], [1, 9]])('transposes %d x %d exactly', (rows, cols) => {
    tf.tidy(() => {
      const x = tf.tensor2d(values(rows * cols), [rows, cols]);
      expect(host((io, a) => transposed(io, a), x)).toEqual(tf.transpose(x).dataSync());
    });
  });
});
