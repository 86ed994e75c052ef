/** Gradients of the reductions Sum, Mean, Max, Min and Prod over any set of axes, with or without keepDims. */
import * as tf from '@tensorflow/tfjs-core';
import { keptShape, normalizeAxes, sizeOf } from './util.ts';

type T = tf.Tensor;

/** dy (and y) reshaped so that they broadcast against x: the reduced axes kept as size 1. */
function kept(t: T, xShape: number[], axes: number[]): T {
  return tf.reshape(t, keptShape(xShape, axes));
}

/** Sum and Mean: dy spread evenly back over the reduced positions, times `scale(count)`. */
function spread(kernelName: string, scale: (count: number) => number): tf.GradConfig {
  return {
    kernelName,
    // Saved for its shape only: keepDims=false drops the reduced sizes from the output.
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        // tf.broadcastTo cannot reach a shape with a 0 in it.
        if (x.size === 0) return tf.zeros(x.shape, 'float32');
        const axes = normalizeAxes(attrs.axis as number | number[] | null, x.rank);
        const count = sizeOf(axes.map((a) => x.shape[a]));
        const g = kept(dy as T, x.shape, axes);
        const s = scale(count);
        return tf.broadcastTo(s === 1 ? g : tf.mul(g, s), x.shape);
      },
    }),
  };
}

/**
 * Max and Min: dy goes to the positions equal to the result; ties share it equally, so the
 * gradient sums to dy (a valid subgradient) instead of being counted once per tied position.
 */
function extremum(kernelName: string, axisAttr: 'reductionIndices' | 'axis'): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, [x, y], attrs) => ({
      x: () => {
        const axes = normalizeAxes(attrs[axisAttr] as number | number[] | null, x.rank);
        const hit = tf.cast(tf.equal(x, kept(y, x.shape, axes)), 'float32');
        const ties = tf.sum(hit, axes, true);
        return tf.mul(hit, tf.div(kept(dy as T, x.shape, axes), ties));
      },
    }),
  };
}

/**
 * Prod: the derivative by x_i is the product of the other factors, taken as exclusive
 * cumulative products from both ends so that zeros in x are handled exactly (no division by x).
 */
const prodGradient: tf.GradConfig = {
  kernelName: tf.Prod,
  inputsToSave: ['x'],
  gradFunc: (dy, [x], attrs) => ({
    x: () => {
      const axes = normalizeAxes(attrs.axis as number | number[] | null, x.rank);
      const keep = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
      const perm = [...keep, ...axes];
      const inverse = perm.map((_, i) => perm.indexOf(i));
      const rows = sizeOf(keep.map((i) => x.shape[i]));
      const cols = sizeOf(axes.map((i) => x.shape[i]));
      const flat = tf.reshape(tf.transpose(x, perm), [rows, cols]);
      const others = tf.mul(tf.cumprod(flat, 1, true, false), tf.cumprod(flat, 1, true, true));
      const g = tf.mul(others, tf.reshape(dy as T, [rows, 1]));
      return tf.transpose(tf.reshape(g, perm.map((i) => x.shape[i])), inverse);
    },
  }),
};

export const reduceGradients: tf.GradConfig[] = [
  spread(tf.Sum, () => 1),
  spread(tf.Mean, (count) => 1 / count),
  extremum(tf.Max, 'reductionIndices'),
  extremum(tf.Min, 'axis'),
  prodGradient,
];
