/** Cumsum along each axis, in all four combinations of exclusive and reverse. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { checkExact, checkGradient, describeOnBackends, normal } from './check.ts';

describeOnBackends('scan gradients', () => {
  for (const axis of [0, 1]) {
    for (const exclusive of [false, true]) {
      for (const reverse of [false, true]) {
        it(`cumsum axis ${axis}${exclusive ? ' exclusive' : ''}${reverse ? ' reverse' : ''}`, () => {
          const rng = new Rng(107);
          checkGradient((x) => tf.cumsum(x, axis, exclusive, reverse), [normal(rng, [3, 4])], rng);
        });
      }
    }
  }

  it('cumsum by hand: dx_i counts the outputs that include x_i', () => {
    const x = [{ shape: [4], values: [1, 2, 3, 4] }];
    checkExact((t) => tf.cumsum(t, 0), x, null, [[4, 3, 2, 1]]);
    checkExact((t) => tf.cumsum(t, 0, true), x, null, [[3, 2, 1, 0]]);
    checkExact((t) => tf.cumsum(t, 0, false, true), x, null, [[1, 2, 3, 4]]);
    checkExact((t) => tf.cumsum(t, 0, true, true), x, null, [[0, 1, 2, 3]]);
  });
});
