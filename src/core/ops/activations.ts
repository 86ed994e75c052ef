/** Pointwise activations that tfjs-core lacks or computes in a less stable way. */
import * as tf from '@tensorflow/tfjs-core';

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** Exact (erf) GeLU, as DESIGN's sLSTM MLP requires. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** log(sigmoid(x)) = -softplus(-x), finite for large |x|. */
export function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.neg(tf.softplus(tf.neg(x)));
}

/**
 * The identity whose gradient is zero. Used for the stabilisers m: they cancel exactly between
 * numerator and normaliser, so their true derivative is zero, and routing none avoids the
 * argmax-routed gradient of a max.
 */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args) => ({
  value: tf.clone(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));
