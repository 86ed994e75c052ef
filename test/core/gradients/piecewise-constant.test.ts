/** Masks built from comparisons, rounding and argmax: the backward pass goes through them with zero gradient. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { awayFrom, checkGradient, describeOnBackends, spaced } from './check.ts';

describeOnBackends('piecewise-constant gradients', () => {
  it('a where() mask from every comparison', () => {
    const rng = new Rng(71);
    const comparisons = [tf.greater, tf.greaterEqual, tf.less, tf.lessEqual, tf.equal, tf.notEqual];
    for (const cmp of comparisons) {
      checkGradient((x) => tf.where(cmp(x, tf.scalar(0.5)), tf.square(x), tf.mul(x, 3)), [awayFrom(rng, [2, 4], [0.5])], rng);
    }
  });

  it('a cast bool mask, through logicalAnd / logicalOr / logicalNot', () => {
    const rng = new Rng(73);
    checkGradient(
      (x) => {
        const inBand = tf.logicalAnd(tf.greater(x, -1), tf.less(x, 1));
        const outside = tf.logicalOr(tf.logicalNot(inBand), tf.equal(x, 0));
        return tf.add(tf.mul(tf.cast(inBand, 'float32'), tf.exp(x)), tf.mul(tf.cast(outside, 'float32'), x));
      },
      [awayFrom(rng, [3, 4], [-1, 0, 1])],
      rng,
    );
  });

  it('rounding, sign and step of x multiplied back onto x', () => {
    const rng = new Rng(79);
    const x = awayFrom(rng, [2, 5], [-3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3], 0.05, 1.5);
    checkGradient((t) => tf.mul(t, tf.add(tf.add(tf.floor(t), tf.ceil(t)), tf.round(t))), [x], rng);
    checkGradient((t) => tf.mul(t, tf.add(tf.sign(t), tf.step(t))), [x], rng);
  });

  it('zerosLike / onesLike and isNaN / isFinite', () => {
    const rng = new Rng(83);
    checkGradient(
      (x) => tf.add(tf.mul(x, tf.onesLike(x)), tf.add(tf.zerosLike(x), tf.cast(tf.isFinite(x), 'float32'))),
      [spaced(rng, [2, 3])],
      rng,
    );
    checkGradient((x) => tf.where(tf.isNaN(x), tf.zerosLike(x), tf.exp(x)), [spaced(rng, [2, 3])], rng);
  });

  it('indices from argMax / argMin, used by gather and oneHot', () => {
    const rng = new Rng(89);
    checkGradient((x) => tf.gather(x, tf.argMax(x)), [spaced(rng, [5])], rng);
    checkGradient((x) => tf.mul(tf.oneHot(tf.argMin(x, 1), 4), x), [spaced(rng, [3, 4])], rng);
  });
});
