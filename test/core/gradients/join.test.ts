/** Concat, split, stack and unstack, including partly used outputs and a repeated input. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { checkGradient, describeOnBackends, normal } from './check.ts';

describeOnBackends('join gradients', () => {
  it('concat along axis 0 and -1, with a repeated input', () => {
    const rng = new Rng(149);
    const xs = [normal(rng, [2, 3]), normal(rng, [2, 1]), normal(rng, [2, 2])];
    checkGradient((a, b, c) => tf.concat([a, b, c, a], -1), xs, rng);
    checkGradient((a, b) => tf.concat([a, b], 0), [normal(rng, [1, 3]), normal(rng, [2, 3])], rng);
  });

  it('split into sizes with -1, and into equal parts with only some used', () => {
    const rng = new Rng(151);
    checkGradient((x) => tf.concat(tf.split(x, [1, -1, 2], 1).map((p, i) => tf.mul(p, i + 1)), 1), [normal(rng, [2, 6])], rng);
    checkGradient((x) => tf.exp(tf.split(x, 3, 0)[1]), [normal(rng, [3, 2])], rng);
  });

  it('stack along axis 0, 1 and -1', () => {
    const rng = new Rng(157);
    for (const axis of [0, 1, -1]) {
      checkGradient((a, b) => tf.stack([a, tf.exp(b), a], axis), [normal(rng, [2, 3]), normal(rng, [2, 3])], rng);
    }
  });

  it('unstack along axis 1 with some parts unused, and of a single-part axis', () => {
    const rng = new Rng(163);
    checkGradient((x) => {
      const parts = tf.unstack(x, 1);
      return tf.add(tf.mul(parts[0], 2), tf.exp(parts[2]));
    }, [normal(rng, [2, 3, 2])], rng);
    checkGradient((x) => tf.exp(tf.unstack(x, 0)[0]), [normal(rng, [1, 3])], rng);
    checkGradient((x) => tf.stack(tf.unstack(x, -1), 0), [normal(rng, [2, 3])], rng);
  });
});
