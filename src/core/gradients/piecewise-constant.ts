/**
 * Zero gradients for kernels whose output is piecewise constant in their inputs (comparisons, rounding,
 * argmax, zerosLike): without them a mask such as where(x > 0, ...) stops the whole backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { zerosFor } from './util.ts';

/** Elementwise with one input: the input has dy's shape, so nothing needs saving. */
function sameShape(kernelName: string): tf.GradConfig {
  return { kernelName, gradFunc: (dy) => ({ x: () => zerosFor(dy as tf.Tensor) }) };
}

/** Broadcasting comparisons: the inputs' shapes can differ from dy's, so they are saved. */
function binary(kernelName: string): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['a', 'b'],
    gradFunc: (_dy, [a, b]) => ({ a: () => zerosFor(a), b: () => zerosFor(b) }),
  };
}

/** Reductions to indices: the input's shape is lost in the output, so it is saved. */
function reducing(kernelName: string): tf.GradConfig {
  return { kernelName, inputsToSave: ['x'], gradFunc: (_dy, [x]) => ({ x: () => zerosFor(x) }) };
}

export const piecewiseConstantGradients: tf.GradConfig[] = [
  ...[tf.Equal, tf.NotEqual, tf.Greater, tf.GreaterEqual, tf.Less, tf.LessEqual].map(binary),
  ...[tf.LogicalAnd, tf.LogicalOr].map(binary),
  ...[tf.LogicalNot, tf.Sign, tf.Step, tf.Floor, tf.Ceil, tf.Round].map(sameShape),
  ...[tf.IsNan, tf.IsInf, tf.IsFinite, tf.ZerosLike, tf.OnesLike].map(sameShape),
  ...[tf.ArgMax, tf.ArgMin].map(reducing),
  {
    // indices [...] -> one-hot [..., depth]: the indices' shape is dy's without the last axis.
    kernelName: tf.OneHot,
    gradFunc: (dy) => ({ indices: () => tf.zeros((dy as tf.Tensor).shape.slice(0, -1), 'float32') }),
  },
];
