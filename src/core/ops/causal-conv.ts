/**
 * Causal depthwise convolution over time: y_t = bias + sum_j w[j] * x_{t-(k-1)+j}, with w stored
 * [k, C] (tap-major; the checkpoint's [C, k] transposed) so that w[k-1] multiplies the current input.
 */
import * as tf from '@tensorflow/tfjs-core';

/** x [B, T, C], w [k, C], b [C] -> [B, T, C]; `history` [B, k-1, C] holds the inputs before x. */
export function causalConv(x: tf.Tensor3D, w: tf.Tensor2D, b: tf.Tensor1D, history?: tf.Tensor3D): tf.Tensor3D {
  const k = w.shape[0];
  const [B, T, C] = x.shape;
  const padded = history ? tf.concat([history, x], 1) : tf.pad(x, [[0, 0], [k - 1, 0], [0, 0]]); // [B, T+k-1, C]
  let y: tf.Tensor = b;
  for (let j = 0; j < k; j++) {
    const tap = tf.slice(padded, [0, j, 0], [B, T, C]); // [B, T, C]
    y = tf.add(y, tf.mul(tap, tf.reshape(tf.slice(w, [j, 0], [1, C]), [C])));
  }
  return y as tf.Tensor3D;
}

/** The last k-1 inputs of [history, x], oldest first: the state after consuming x. */
export function convHistory(x: tf.Tensor3D, k: number, history?: tf.Tensor3D): tf.Tensor3D {
  const [B, T, C] = x.shape;
  const full = history ? tf.concat([history, x], 1) : tf.pad(x, [[0, 0], [k - 1, 0], [0, 0]]);
  return tf.slice(full, [0, T, 0], [B, k - 1, C]) as tf.Tensor3D;
}
