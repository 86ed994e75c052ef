/** LayerNorm over the last axis and GroupNorm over nh contiguous heads (eps 1e-5, biased variance). */
import * as tf from '@tensorflow/tfjs-core';

export const NORM_EPS = 1e-5;

function normalise(x: tf.Tensor, axis: number): tf.Tensor {
  const mean = tf.mean(x, axis, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), axis, true);
  return tf.mul(centred, tf.rsqrt(tf.add(variance, NORM_EPS)));
}

/** x [..., d] -> [..., d]; weight, bias [d]. */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(normalise(x, -1), weight), bias);
}

/** x [..., H] -> [..., H], each head's dh channels normalised alone; weight, bias [H]. */
export function groupNorm(x: tf.Tensor, nh: number, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const H = shape[shape.length - 1];
  const grouped = tf.reshape(x, [...shape.slice(0, -1), nh, H / nh]); // [..., nh, dh]
  const normed = tf.reshape(normalise(grouped, -1), shape); // [..., H]
  return tf.add(tf.mul(normed, weight), bias);
}
