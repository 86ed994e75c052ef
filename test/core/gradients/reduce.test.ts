/** Sum, Mean, Max, Min and Prod over all, one, negative and several axes, with and without keepDims. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { checkExact, checkGradient, describeOnBackends, normal, spaced, uniform } from './check.ts';

const AXES: Array<number | number[] | undefined> = [undefined, 0, -1, [0, 2], [1]];

describeOnBackends('reduction gradients', () => {
  const ops: Array<[string, (x: tf.Tensor, axis: number | number[] | undefined, keep: boolean) => tf.Tensor]> = [
    ['sum', (x, a, k) => tf.sum(x, a, k)],
    ['mean', (x, a, k) => tf.mean(x, a, k)],
    ['max', (x, a, k) => tf.max(x, a, k)],
    ['min', (x, a, k) => tf.min(x, a, k)],
    ['prod', (x, a, k) => tf.prod(x, a, k)],
  ];
  for (const [name, op] of ops) {
    for (const axis of AXES) {
      for (const keep of [false, true]) {
        it(`${name} over ${axis === undefined ? 'all axes' : JSON.stringify(axis)}${keep ? ' keepDims' : ''}`, () => {
          const rng = new Rng(61);
          // max/min need inputs without near-ties; prod wants factors of moderate size.
          const x =
            name === 'max' || name === 'min'
              ? spaced(rng, [2, 3, 4])
              : name === 'prod'
                ? uniform(rng, [2, 3, 4], 0.5, 1.5)
                : normal(rng, [2, 3, 4]);
          checkGradient((t) => op(t, axis, keep), [x], rng);
        });
      }
    }
  }

  it('prod with a zero factor: the other factors, no division by zero', () => {
    // d(x0 x1 x2)/dx = [x1 x2, x0 x2, x0 x1] = [0*4, 3*4, 3*0] per row.
    checkExact((x) => tf.prod(x, 1), [{ shape: [1, 3], values: [3, 0, 4] }], null, [[0, 12, 0]]);
  });

  it('max shares a tie equally between the tied positions', () => {
    checkExact((x) => tf.max(x, 1), [{ shape: [2, 4], values: [1, 3, 3, 2, 5, 5, 5, 1] }], [2, 3], [[0, 1, 1, 0, 1, 1, 1, 0]]);
  });

  it('moments and a layer norm, as the blocks compose them', () => {
    const rng = new Rng(67);
    checkGradient(
      (x) => {
        const { mean, variance } = tf.moments(x, -1, true);
        return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
      },
      [normal(rng, [3, 6])],
      rng,
    );
  });
});
