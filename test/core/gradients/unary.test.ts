/** Elementwise unary kernels, each on inputs inside its domain and away from its kinks. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { awayFrom, checkExact, checkGradient, describeOnBackends, normal, uniform, type Input } from './check.ts';

const SHAPE = [2, 5];

describeOnBackends('unary gradients', () => {
  const ops: Array<[string, (x: tf.Tensor) => tf.Tensor, (rng: Rng) => Input]> = [
    ['neg', tf.neg, (rng) => normal(rng, SHAPE)],
    ['exp', tf.exp, (rng) => normal(rng, SHAPE)],
    ['expm1', tf.expm1, (rng) => normal(rng, SHAPE)],
    ['log', tf.log, (rng) => uniform(rng, SHAPE, 0.2, 3)],
    ['log1p', tf.log1p, (rng) => uniform(rng, SHAPE, -0.6, 3)],
    ['sigmoid', tf.sigmoid, (rng) => normal(rng, SHAPE, 2)],
    ['softplus', tf.softplus, (rng) => normal(rng, SHAPE, 2)],
    ['tanh', tf.tanh, (rng) => normal(rng, SHAPE)],
    ['erf', tf.erf, (rng) => normal(rng, SHAPE)],
    ['sqrt', tf.sqrt, (rng) => uniform(rng, SHAPE, 0.2, 3)],
    ['rsqrt', tf.rsqrt, (rng) => uniform(rng, SHAPE, 0.3, 3)],
    ['reciprocal', tf.reciprocal, (rng) => awayFrom(rng, SHAPE, [0], 0.4)],
    ['square', tf.square, (rng) => normal(rng, SHAPE)],
    ['abs', tf.abs, (rng) => awayFrom(rng, SHAPE, [0])],
    ['relu', tf.relu, (rng) => awayFrom(rng, SHAPE, [0])],
    ['clone (Identity)', tf.clone, (rng) => normal(rng, SHAPE)],
    ['cast float32 -> float32', (x) => tf.cast(x, 'float32'), (rng) => normal(rng, SHAPE)],
  ];
  for (const [name, op, gen] of ops) {
    it(name, () => {
      const rng = new Rng(29);
      checkGradient(op, [gen(rng)], rng);
    });
  }

  it('silu and exact gelu, as the blocks compose them', () => {
    const rng = new Rng(31);
    checkGradient((x) => tf.mul(x, tf.sigmoid(x)), [normal(rng, SHAPE, 2)], rng);
    checkGradient(
      (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))),
      [normal(rng, SHAPE, 2)],
      rng,
    );
  });

  it('abs and relu take the subgradient 0 at 0', () => {
    const x = [{ shape: [3], values: [-1, 0, 2] }];
    checkExact(tf.abs, x, null, [[-1, 0, 1]]);
    checkExact(tf.relu, x, null, [[0, 0, 1]]);
  });
});
