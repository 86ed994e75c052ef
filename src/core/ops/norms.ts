/** LayerNorm over the last axis and GroupNorm over nh contiguous heads (eps 1e-5, biased variance). */
import * as tf from '@tensorflow/tfjs-core';

export const NORM_EPS = 1e-5;

/**
 * (x - mean) / sqrt(var + eps) over the last axis, as one op with a hand-written gradient:
 * dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps). Autodiff of the mean would
 * broadcast its gradient with Tile, which the wasm backend runs slowly.
 */
const standardize: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  const [xhat, rstd] = tf.tidy(() => {
    const centred = tf.sub(x, tf.mean(x, -1, true));
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), NORM_EPS));
    return [tf.mul(centred, r), r];
  });
  save([xhat, rstd]);
  return {
    value: xhat,
    gradFunc: (g: tf.Tensor, saved: tf.Tensor[]) => {
      const [xh, r] = saved;
      const inner = tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true)));
      return tf.mul(inner, r);
    },
  };
});

/** x [..., d] -> [..., d]; weight, bias [d]. */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(standardize(x), weight), bias);
}

/** x [..., H] -> [..., H], each head's dh channels normalised alone; weight, bias [H]. */
export function groupNorm(x: tf.Tensor, nh: number, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const H = shape[shape.length - 1];
  const grouped = tf.reshape(x, [...shape.slice(0, -1), nh, H / nh]); // [..., nh, dh]
  const normed = tf.reshape(standardize(grouped), shape); // [..., H]
  return tf.add(tf.mul(normed, weight), bias);
}
