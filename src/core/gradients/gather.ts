/**
 * Gradient of GatherV2 (embedding lookup) through ScatterNd, which both the cpu and the wasm
 * backend have and which sums rows that repeated indices send to the same place. tfjs's own
 * gradient needs UnsortedSegmentSum, which wasm lacks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sizeOf, zerosFor } from './util.ts';

type T = tf.Tensor;

/**
 * x [Bt.., Mt.., N, Kt..] gathered along N by indices [Bt.., It..] (Bt: the batchDims leading
 * axes shared by both) gives dy [Bt.., Mt.., It.., Kt..]. dx is dy's rows scattered back onto N:
 * dy -> [B*I, M*K] rows, indices offset by b*N for batch b, scattered into [B*N, M*K].
 * Only dx itself is dense; nothing of size indices x N (a one-hot) is ever built.
 */
function scatterBack(dy: T, xShape: number[], indices: T, axis: number, batchDims: number): T {
  const B = sizeOf(xShape.slice(0, batchDims));
  const M = sizeOf(xShape.slice(batchDims, axis));
  const N = xShape[axis];
  const K = sizeOf(xShape.slice(axis + 1));
  const I = indices.size / B;
  let rows = tf.reshape(dy, [B, M, I, K]);
  if (M > 1) rows = tf.transpose(rows, [0, 2, 1, 3]); // [B, I, M, K]
  const updates = tf.reshape(rows, [B * I, M * K]);
  let flatIndices = tf.reshape(tf.cast(indices, 'int32'), [B, I]);
  if (B > 1) flatIndices = tf.add(flatIndices, tf.reshape(tf.range(0, B * N, N, 'int32'), [B, 1]));
  const scattered = tf.scatterND(tf.reshape(flatIndices, [B * I, 1]), updates, [B * N, M * K]);
  let dx = tf.reshape(scattered, [B, N, M, K]);
  if (M > 1) dx = tf.transpose(dx, [0, 2, 1, 3]); // [B, M, N, K]
  return tf.reshape(dx, xShape);
}

export const gatherGradients: tf.GradConfig[] = [
  {
    // x is saved for its shape only (it is usually a weight, alive anyway).
    kernelName: tf.GatherV2,
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, [x, indices], attrs) => {
      const rawAxis = attrs.axis as number;
      const rawBatch = (attrs.batchDims as number | undefined) ?? 0;
      const axis = rawAxis < 0 ? rawAxis + x.rank : rawAxis;
      const batchDims = rawBatch < 0 ? rawBatch + indices.rank : rawBatch;
      return {
        x: () => scatterBack(dy as T, x.shape, indices, axis, batchDims),
        indices: () => zerosFor(indices),
      };
    },
  },
];
