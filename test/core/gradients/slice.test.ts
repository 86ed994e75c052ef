/** Slice and StridedSlice, including negative strides and every mask. */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { checkGradient, describeOnBackends, expectNoLeak, normal } from './check.ts';

describeOnBackends('slice gradients', () => {
  const cases: Array<[string, number[], (x: tf.Tensor) => tf.Tensor]> = [
    ['slice with a number begin and size -1', [4, 3], (x) => tf.slice(x, 1, -1)],
    ['slice in the middle of rank 3', [3, 4, 2], (x) => tf.slice(x, [1, 1, 0], [2, 2, 1])],
    ['stridedSlice, unit strides', [4, 5], (x) => tf.stridedSlice(x, [1, 1], [3, 4], [1, 1])],
    ['stridedSlice, stride 2 and 3', [5, 7], (x) => tf.stridedSlice(x, [0, 1], [5, 7], [2, 3])],
    ['stridedSlice, negative strides', [5, 4], (x) => tf.stridedSlice(x, [4, 3], [0, -5], [-2, -1])],
    ['stridedSlice, begin and end masks', [4, 5], (x) => tf.stridedSlice(x, [2, 9], [0, 2], [1, 1], 0b10, 0b01)],
    // Shrinking with unit strides only: tfjs 4.22's forward (cpu and wasm) reads the wrong elements
    // when shrinkAxisMask meets a stride other than 1 on another axis.
    ['stridedSlice, shrinking an axis', [3, 4], (x) => tf.stridedSlice(x, [1, 1], [2, 4], [1, 1], 0, 0, 0, 0, 0b01)],
    ['stridedSlice, a new axis', [3, 4], (x) => tf.stridedSlice(x, [0, 1, 0], [0, 3, 4], [1, 1, 2], 0, 0, 0, 0b001)],
    ['stridedSlice, an ellipsis', [2, 3, 4], (x) => tf.stridedSlice(x, [0, 1], [0, 4], [1, 2], 0, 0, 0b01)],
  ];
  for (const [name, shape, f] of cases) {
    it(name, () => {
      const rng = new Rng(137);
      checkGradient(f, [normal(rng, shape)], rng);
    });
  }

  it('stridedSlice shrinking with a stride: the gradient of the slice the masks describe', () => {
    // The forward is wrong here in tfjs 4.22 (see above), so the oracle is the same selection
    // written without the shrink: rows 1:2, columns 0:4:2, then the row axis dropped.
    const rng = new Rng(138);
    expectNoLeak(() => {
      const x = tf.tensor(normal(rng, [3, 4]).values, [3, 4]);
      const dy = tf.tensor1d([0.5, -2]);
      const [shrunk] = tf.grads((t: tf.Tensor) => tf.stridedSlice(t, [1, 0], [2, 4], [1, 2], 0, 0, 0, 0, 0b01))([x], dy);
      const [expected] = tf.grads((t: tf.Tensor) => tf.reshape(tf.stridedSlice(t, [1, 0], [2, 4], [1, 2]), [2]))([x], dy);
      expect(Array.from(shrunk.dataSync())).toEqual(Array.from(expected.dataSync()));
      expect(Array.from(expected.dataSync())).toEqual([0, 0, 0, 0, 0.5, 0, -2, 0, 0, 0, 0, 0]);
      tf.dispose([x, dy, shrunk, expected]);
    });
  });

  it('stridedSlice that selects nothing has a zero gradient', () => {
    const rng = new Rng(139);
    checkGradient((x) => tf.add(tf.sum(tf.stridedSlice(x, [2], [2], [1])), tf.sum(x)), [normal(rng, [4])], rng);
  });
});
