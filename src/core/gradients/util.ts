/** Shape helpers shared by the gradient families: broadcast reduction, axis normalisation, aliases. */
import * as tf from '@tensorflow/tfjs-core';

/**
 * A new tensor object over the same data. The tape accumulates gradients by adding and then
 * disposing the previous sum, so two inputs must never receive the very same tensor object.
 */
export function alias(t: tf.Tensor): tf.Tensor {
  return tf.reshape(t, t.shape);
}

/**
 * Sums a gradient computed at the broadcast output shape back to one input's shape: over the
 * leading axes the input lacks and over the axes where the input has size 1.
 */
export function sumToShape(g: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const reduced = axes.length > 0 ? tf.sum(g, axes) : g;
  return tf.reshape(reduced, shape as number[]);
}

/** Axes as the reduction kernels read them: null means all, negatives count from the end, sorted and unique. */
export function normalizeAxes(axis: number | number[] | null | undefined, rank: number): number[] {
  if (axis === null || axis === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = Array.isArray(axis) ? axis : [axis];
  return [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}

/** The input shape with every reduced axis kept as 1: the shape a reduction's dy broadcasts back from. */
export function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((n, i) => (axes.includes(i) ? 1 : n));
}

/** Swaps the last two axes (the matrix transpose of a batch of matrices). */
export function swapLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(t, perm);
}

/** A float32 zero gradient for an input that the output does not depend on smoothly. */
export function zerosFor(x: { shape: number[] }): tf.Tensor {
  return tf.zeros(x.shape, 'float32');
}

/** The product of a list of dimensions (1 for the empty list). */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((p, n) => p * n, 1);
}
