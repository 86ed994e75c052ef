/** Select (tf.where, with a broadcast condition and both branches depending on x) and ClipByValue. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { awayFrom, checkExact, checkGradient, describeOnBackends, normal } from './check.ts';

describeOnBackends('select gradients', () => {
  it('where with a broadcast condition, a scalar branch and a broadcast branch', () => {
    const rng = new Rng(97);
    const condition = tf.tensor1d([true, false, true], 'bool');
    checkGradient((a, b) => tf.where(condition, tf.exp(a), b), [normal(rng, [2, 3]), normal(rng, [3])], rng);
    checkGradient((a, s) => tf.where(condition, a, s), [normal(rng, [2, 3]), normal(rng, [])], rng);
    condition.dispose();
  });

  it('where with both branches computed from the same x', () => {
    const rng = new Rng(101);
    const mask = tf.tensor2d([[true, false], [false, true]], [2, 2], 'bool');
    checkGradient((x) => tf.where(mask, tf.tanh(x), tf.mul(x, x)), [normal(rng, [2, 2])], rng);
    mask.dispose();
  });

  it('clipByValue away from its bounds', () => {
    const rng = new Rng(103);
    checkGradient((x) => tf.clipByValue(x, -0.5, 0.8), [awayFrom(rng, [3, 4], [-0.5, 0.8])], rng);
  });

  it('clipByValue passes dy at a bound and stops it outside', () => {
    checkExact((x) => tf.clipByValue(x, -1, 1), [{ shape: [4], values: [-2, -1, 1, 3] }], null, [[0, 1, 1, 0]]);
  });
});
