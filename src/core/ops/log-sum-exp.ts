/** log(sum(exp(x))) over the last axis, stabilised by the row maximum (whose gradient is zero: it cancels). */
import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from './activations.ts';

/** x [N, V] -> [N] */
export function logSumExp(x: tf.Tensor2D): tf.Tensor1D {
  const max = stopGradient(tf.max(x, 1, true));
  return tf.add(tf.log(tf.sum(tf.exp(tf.sub(x, max)), 1)), tf.reshape(max, [-1])) as tf.Tensor1D;
}
