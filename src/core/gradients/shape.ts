/** Gradients of the kernels that only move values: Reshape, ExpandDims, Transpose, Reverse, Tile, PadV2. */
import * as tf from '@tensorflow/tfjs-core';

type T = tf.Tensor;

export const shapeGradients: tf.GradConfig[] = [
  {
    // Saved for its shape only: the attribute may hold -1, and x's own factorisation is lost.
    kernelName: tf.Reshape,
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.reshape(dy as T, x.shape) }),
  },
  {
    kernelName: tf.ExpandDims,
    inputsToSave: ['input'],
    gradFunc: (dy, [input]) => ({ input: () => tf.reshape(dy as T, input.shape) }),
  },
  {
    kernelName: tf.Transpose,
    gradFunc: (dy, _saved, attrs) => {
      const perm = attrs.perm as number[];
      const inverse = perm.map((_, i) => perm.indexOf(i));
      return { x: () => tf.transpose(dy as T, inverse) };
    },
  },
  {
    kernelName: tf.Reverse,
    gradFunc: (dy, _saved, attrs) => ({ x: () => tf.reverse(dy as T, attrs.dims as number | number[]) }),
  },
  {
    // dy [r0*n0, r1*n1, ...] viewed as [r0, n0, r1, n1, ...]: each input element collects the sum
    // over its copies, i.e. over the even axes.
    kernelName: tf.Tile,
    gradFunc: (dy, _saved, attrs) => ({
      x: () => {
        const g = dy as T;
        const reps = attrs.reps as number[];
        const xShape = g.shape.map((n, i) => n / reps[i]);
        const split = xShape.flatMap((n, i) => [reps[i], n]);
        const copyAxes = reps.map((_, i) => 2 * i).filter((a) => split[a] > 1);
        const summed = copyAxes.length > 0 ? tf.sum(tf.reshape(g, split), copyAxes) : g;
        return tf.reshape(summed, xShape);
      },
    }),
  },
  {
    kernelName: tf.PadV2,
    gradFunc: (dy, _saved, attrs) => ({
      x: () => {
        const g = dy as T;
        const paddings = attrs.paddings as Array<[number, number]>;
        const begin = paddings.map(([before]) => before);
        const size = paddings.map(([before, after], i) => g.shape[i] - before - after);
        return tf.slice(g, begin, size);
      },
    }),
  },
];
