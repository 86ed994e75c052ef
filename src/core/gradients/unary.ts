/** Gradients of the elementwise unary kernels, each written from the saved input x or the saved output y. */
import * as tf from '@tensorflow/tfjs-core';
import { alias } from './util.ts';

type T = tf.Tensor;

/** dx from the saved input: dx = f(dy, x). */
function fromInput(kernelName: string, f: (dy: T, x: T) => T): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => f(dy as T, saved[0]) }),
  };
}

/** dx from the saved output, for kernels whose derivative is cheapest in terms of y: dx = f(dy, y). */
function fromOutput(kernelName: string, f: (dy: T, y: T) => T): tf.GradConfig {
  return {
    kernelName,
    outputsToSave: [true],
    gradFunc: (dy, saved) => ({ x: () => f(dy as T, saved[0]) }),
  };
}

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

export const unaryGradients: tf.GradConfig[] = [
  { kernelName: tf.Neg, gradFunc: (dy) => ({ x: () => tf.neg(dy as T) }) },
  { kernelName: tf.Identity, gradFunc: (dy) => ({ x: () => alias(dy as T) }) },
  fromOutput(tf.Exp, (dy, y) => tf.mul(dy, y)),
  fromOutput(tf.Expm1, (dy, y) => tf.mul(dy, tf.add(y, 1))),
  fromInput(tf.Log, (dy, x) => tf.div(dy, x)),
  fromInput(tf.Log1p, (dy, x) => tf.div(dy, tf.add(x, 1))),
  fromOutput(tf.Sigmoid, (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  fromInput(tf.Softplus, (dy, x) => tf.mul(dy, tf.sigmoid(x))),
  fromOutput(tf.Tanh, (dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)))),
  fromInput(tf.Erf, (dy, x) => tf.mul(dy, tf.mul(tf.exp(tf.neg(tf.square(x))), TWO_OVER_SQRT_PI))),
  fromOutput(tf.Sqrt, (dy, y) => tf.div(dy, tf.mul(y, 2))),
  // d(x^-1/2)/dx = -x^-3/2 / 2 = -y^3 / 2.
  fromOutput(tf.Rsqrt, (dy, y) => tf.mul(dy, tf.mul(tf.mul(tf.square(y), y), -0.5))),
  fromOutput(tf.Reciprocal, (dy, y) => tf.neg(tf.mul(dy, tf.square(y)))),
  fromInput(tf.Square, (dy, x) => tf.mul(dy, tf.mul(x, 2))),
  // At 0 both have a kink; 0 is the subgradient chosen (sign(0) = 0, step(0) = 0).
  fromInput(tf.Abs, (dy, x) => tf.mul(dy, tf.sign(x))),
  fromInput(tf.Relu, (dy, x) => tf.mul(dy, tf.step(x))),
  {
    // Passes dy through, whatever the source dtype. From bool the producer is a comparison, whose
    // own gradient is zero; a float -> int -> float chain becomes straight-through rather than zero.
    // Knowing the source dtype would mean saving x, and on wasm every saved tensor is a full copy.
    kernelName: tf.Cast,
    gradFunc: (dy) => ({ x: () => alias(dy as T) }),
  },
];
