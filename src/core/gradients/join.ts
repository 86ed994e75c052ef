/** Gradients of the kernels that join or part tensors along an axis: Concat, SplitV, Pack, Unpack. */
import * as tf from '@tensorflow/tfjs-core';

type T = tf.Tensor;

/** Multi-output kernels get an array of dy, but a bare tensor when they had a single output. */
function asList(dy: T | T[]): T[] {
  return Array.isArray(dy) ? dy : [dy];
}

export const joinGradients: tf.GradConfig[] = [
  {
    // Inputs arrive as an array, named '0', '1', ... on the tape; they are saved for their sizes
    // along the axis. Each input slices its own part, so no part outlives its closure.
    kernelName: tf.Concat,
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const g = dy as T;
      const raw = attrs.axis as number;
      const axis = raw < 0 ? raw + g.rank : raw;
      const grads: Record<string, () => T> = {};
      let offset = 0;
      saved.forEach((input, i) => {
        const begin = g.shape.map((_, a) => (a === axis ? offset : 0));
        grads[i] = () => tf.slice(g, begin, input.shape);
        offset += input.shape[axis];
      });
      return grads;
    },
  },
  {
    kernelName: tf.SplitV,
    gradFunc: (dy, _saved, attrs) => ({ x: () => tf.concat(asList(dy), attrs.axis as number) }),
  },
  {
    // stack: every input is one index of the new axis; no input needs saving, as dy holds them all.
    kernelName: tf.Pack,
    gradFunc: (dy, _saved, attrs) => {
      const g = dy as T;
      const raw = attrs.axis as number;
      const axis = raw < 0 ? raw + g.rank : raw;
      const count = g.shape[axis];
      const inputShape = g.shape.filter((_, a) => a !== axis);
      const grads: Record<string, () => T> = {};
      for (let i = 0; i < count; i++) {
        const begin = g.shape.map((_, a) => (a === axis ? i : 0));
        const size = g.shape.map((n, a) => (a === axis ? 1 : n));
        grads[i] = () => tf.reshape(tf.slice(g, begin, size), inputShape);
      }
      return grads;
    },
  },
  {
    kernelName: tf.Unpack,
    gradFunc: (dy, _saved, attrs) => {
      const parts = asList(dy as T | T[]);
      const raw = attrs.axis as number;
      const axis = raw < 0 ? raw + parts[0].rank + 1 : raw;
      return { value: () => tf.stack(parts, axis) };
    },
  },
];
