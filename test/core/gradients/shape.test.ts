/** Reshape, expandDims, squeeze, transpose, reverse, tile, broadcastTo and pad. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { checkGradient, describeOnBackends, normal } from './check.ts';

describeOnBackends('shape gradients', () => {
  const cases: Array<[string, number[], (x: tf.Tensor) => tf.Tensor]> = [
    ['reshape with -1', [2, 3, 2], (x) => tf.reshape(x, [3, -1])],
    ['expandDims', [2, 3], (x) => tf.expandDims(x, 1)],
    ['squeeze', [2, 1, 3, 1], (x) => tf.squeeze(x)],
    ['transpose of rank 3', [2, 3, 4], (x) => tf.transpose(x, [2, 0, 1])],
    ['transpose of rank 2 (default perm)', [2, 3], (x) => tf.transpose(x)],
    ['reverse over two axes', [2, 3, 2], (x) => tf.reverse(x, [0, -1])],
    ['tile', [2, 3], (x) => tf.tile(x, [2, 3])],
    ['tile of rank 3 with a rep of 1', [2, 1, 2], (x) => tf.tile(x, [1, 4, 2])],
    ['broadcastTo a higher rank', [3, 1], (x) => tf.broadcastTo(x, [2, 3, 4])],
    ['pad with a nonzero constant', [2, 3], (x) => tf.pad(x, [[1, 2], [0, 3]], 0.5)],
  ];
  for (const [name, shape, f] of cases) {
    it(name, () => {
      const rng = new Rng(131);
      checkGradient(f, [normal(rng, shape)], rng);
    });
  }
});
