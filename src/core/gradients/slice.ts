/** Gradients of Slice and StridedSlice: dy placed back at the positions it was read from, zeros elsewhere. */
import * as tf from '@tensorflow/tfjs-core';

type T = tf.Tensor;

/** Slice's begin as the kernel reads it: a number or a short list, padded with zeros to x's rank. */
function fullBegin(begin: number | number[], rank: number): number[] {
  const list = typeof begin === 'number' ? [begin] : begin;
  return Array.from({ length: rank }, (_, i) => list[i] ?? 0);
}

/**
 * Spreads g along `axis` so that its p entries land every `step` positions: [.., p, ..] ->
 * [.., (p-1)*step+1, ..], zeros between.
 */
function dilate(g: T, axis: number, step: number): T {
  const shape = g.shape;
  const p = shape[axis];
  const withGap = tf.reshape(g, [...shape.slice(0, axis + 1), 1, ...shape.slice(axis + 1)]);
  const padding: Array<[number, number]> = withGap.shape.map((_, i) => (i === axis + 1 ? [0, step - 1] : [0, 0]));
  const spread = tf.reshape(tf.pad(withGap, padding), [...shape.slice(0, axis), p * step, ...shape.slice(axis + 1)]);
  const size = shape.map((n, i) => (i === axis ? (p - 1) * step + 1 : n));
  return tf.slice(spread, shape.map(() => 0), size);
}

export const sliceGradients: tf.GradConfig[] = [
  {
    // Saved for its shape only (the zeros after the slice).
    kernelName: tf.Slice,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const g = dy as T;
        const begin = fullBegin(attrs.begin as number | number[], x.rank);
        return tf.pad(g, begin.map((b, i): [number, number] => [b, x.shape[i] - b - g.shape[i]]));
      },
    }),
  },
  {
    // The kernel's own slice_util.sliceInfo resolves the masks into a begin, end and stride per
    // axis of x; dy, reshaped to the per-axis counts, is then dilated by |stride|, reversed where
    // the stride is negative, and padded into place.
    kernelName: tf.StridedSlice,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const info = tf.slice_util.sliceInfo(
          x.shape,
          attrs.begin as number[],
          attrs.end as number[],
          attrs.strides as number[],
          attrs.beginMask as number,
          attrs.endMask as number,
          attrs.ellipsisMask as number,
          attrs.newAxisMask as number,
          attrs.shrinkAxisMask as number,
        );
        const counts = tf.slice_util
          .computeOutShape(info.begin, info.end, info.strides)
          .map((n) => Math.max(0, n));
        if (counts.some((n) => n === 0)) return tf.zeros(x.shape, 'float32');
        let g = tf.reshape(dy as T, counts);
        const padding: Array<[number, number]> = [];
        for (let axis = 0; axis < x.rank; axis++) {
          const stride = info.strides[axis];
          // The lowest index read along this axis; a negative stride reads downwards from begin.
          const first = stride > 0 ? info.begin[axis] : info.begin[axis] + (counts[axis] - 1) * stride;
          if (stride < 0) g = tf.reverse(g, axis);
          if (Math.abs(stride) > 1) g = dilate(g, axis, Math.abs(stride));
          padding.push([first, x.shape[axis] - first - g.shape[axis]]);
        }
        return tf.pad(g, padding);
      },
    }),
  },
];
