/** Gradients of the broadcasting binary kernels and AddN; each input's gradient is summed back to its shape. */
import * as tf from '@tensorflow/tfjs-core';
import { alias, sumToShape } from './util.ts';

type T = tf.Tensor;

/** A binary kernel whose two gradients are (dy, a, b, y) -> value at the broadcast shape. */
function binary(
  kernelName: string,
  da: (dy: T, a: T, b: T, y: T) => T,
  db: (dy: T, a: T, b: T, y: T) => T,
  saveOutput = false,
): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['a', 'b'],
    outputsToSave: saveOutput ? [true] : undefined,
    gradFunc: (dy, saved) => {
      const [a, b, y] = saved;
      const g = dy as T;
      return {
        a: () => sumToShape(da(g, a, b, y), a.shape),
        b: () => sumToShape(db(g, a, b, y), b.shape),
      };
    },
  };
}

const mask = (cond: T): T => tf.cast(cond, 'float32');

export const arithmeticGradients: tf.GradConfig[] = [
  binary(tf.Add, (dy) => dy, (dy) => dy),
  binary(tf.Sub, (dy) => dy, (dy) => tf.neg(dy)),
  binary(tf.Multiply, (dy, _a, b) => tf.mul(dy, b), (dy, a) => tf.mul(dy, a)),
  binary(
    tf.RealDiv,
    (dy, _a, b) => tf.div(dy, b),
    // d(a/b)/db = -a/b^2 = -(a/b)/b, using the saved quotient.
    (dy, _a, b, y) => tf.neg(tf.div(tf.mul(dy, y), b)),
    true,
  ),
  binary(
    tf.SquaredDifference,
    (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(a, b), 2)),
    (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(b, a), 2)),
  ),
  // A tie sends the whole gradient to `a`: a valid subgradient that keeps the total equal to dy.
  binary(
    tf.Maximum,
    (dy, a, b) => tf.mul(dy, mask(tf.greaterEqual(a, b))),
    (dy, a, b) => tf.mul(dy, mask(tf.less(a, b))),
  ),
  binary(
    tf.Minimum,
    (dy, a, b) => tf.mul(dy, mask(tf.lessEqual(a, b))),
    (dy, a, b) => tf.mul(dy, mask(tf.greater(a, b))),
  ),
  binary(
    tf.Pow,
    (dy, a, b) => tf.mul(dy, tf.mul(b, tf.pow(a, tf.sub(b, 1)))),
    // d(a^b)/db = a^b log a, taken as 0 where a <= 0 (log undefined; a^b is then only defined for integer b).
    (dy, a, _b, y) => {
      const positive = tf.greater(a, 0);
      const logA = tf.where(positive, tf.log(tf.where(positive, a, tf.onesLike(a))), tf.zerosLike(a));
      return tf.mul(dy, tf.mul(y, logA));
    },
    true,
  ),
  {
    // Inputs arrive as an array, so the tape names them '0', '1', ...; saving them is how the
    // gradient learns their count (the saved tensors share data with the inputs, no copy).
    kernelName: tf.AddN,
    saveAllInputs: true,
    gradFunc: (dy, saved) => {
      const grads: Record<string, () => T> = {};
      saved.forEach((_, i) => {
        grads[i] = () => alias(dy as T);
      });
      return grads;
    },
  },
];
