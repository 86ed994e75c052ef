/** Binary kernels (Add, Sub, Multiply, RealDiv, SquaredDifference, Maximum, Minimum, Pow) and AddN, with broadcasting. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { awayFrom, checkExact, checkGradient, describeOnBackends, normal, uniform, type Input } from './check.ts';

type Pair = [number[], number[]];
/** Same shape, trailing broadcast, both sides broadcast, scalar against matrix. */
const SHAPES: Pair[] = [
  [[2, 3], [2, 3]],
  [[2, 3], [3]],
  [[2, 1, 3], [4, 1]],
  [[], [2, 3]],
];

/** Pairs whose broadcast elements all differ by at least `gap`, so max/min have no near-ties. */
function separated(rng: Rng, [sa, sb]: Pair, gap = 0.1): [Input, Input] {
  for (;;) {
    const a = normal(rng, sa);
    const b = normal(rng, sb);
    const diff = tf.tidy(() => tf.min(tf.abs(tf.sub(tf.tensor(a.values, sa), tf.tensor(b.values, sb)))).dataSync()[0]);
    if (diff >= gap) return [a, b];
  }
}

describeOnBackends('arithmetic gradients', () => {
  const ops: Array<[string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, (rng: Rng, p: Pair) => [Input, Input]]> = [
    ['add', tf.add, (rng, [sa, sb]) => [normal(rng, sa), normal(rng, sb)]],
    ['sub', tf.sub, (rng, [sa, sb]) => [normal(rng, sa), normal(rng, sb)]],
    ['mul', tf.mul, (rng, [sa, sb]) => [normal(rng, sa), normal(rng, sb)]],
    ['div', tf.div, (rng, [sa, sb]) => [normal(rng, sa), awayFrom(rng, sb, [0], 0.5)]],
    ['squaredDifference', tf.squaredDifference, (rng, [sa, sb]) => [normal(rng, sa), normal(rng, sb)]],
    ['maximum', tf.maximum, separated],
    ['minimum', tf.minimum, separated],
    ['pow', tf.pow, (rng, [sa, sb]) => [uniform(rng, sa, 0.5, 2), uniform(rng, sb, -1.5, 2)]],
  ];
  for (const [name, op, gen] of ops) {
    for (const pair of SHAPES) {
      it(`${name} [${pair[0]}] with [${pair[1]}]`, () => {
        const rng = new Rng(17);
        checkGradient(op, gen(rng, pair), rng);
      });
    }
  }

  it('pow with a negative base and an integer exponent takes d/db as 0', () => {
    // (-2)^3 = -8: d/da = 3 * 4 = 12; d/db would be a^b log a, undefined for a < 0.
    checkExact(tf.pow, [{ shape: [1], values: [-2] }, { shape: [1], values: [3] }], null, [[12], [0]]);
  });

  it('maximum and minimum send a tie to the first input only', () => {
    const ab = [{ shape: [2], values: [1, 2] }, { shape: [2], values: [1, 3] }];
    checkExact(tf.maximum, ab, null, [[1, 0], [0, 1]]);
    checkExact(tf.minimum, ab, null, [[1, 1], [0, 0]]);
  });

  it('the same tensor on both sides accumulates both gradients', () => {
    const rng = new Rng(3);
    checkGradient((x) => tf.add(x, x), [normal(rng, [3])], rng);
    checkGradient((x) => tf.mul(x, x), [normal(rng, [3])], rng);
  });

  it('addN, with one input repeated', () => {
    const rng = new Rng(5);
    checkGradient((a, b) => tf.addN([a, b, a]), [normal(rng, [2, 3]), normal(rng, [2, 3])], rng);
  });
});
