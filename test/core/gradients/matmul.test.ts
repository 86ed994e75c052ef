/** BatchMatMul: every transpose flag combination, plain batches, and each way a batch can broadcast. */
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { checkGradient, describeOnBackends, normal } from './check.ts';

/** The stored shape of an operand [.., rows, cols], transposed in its last two axes when the flag is set. */
function stored(batch: number[], rows: number, cols: number, transposed: boolean): number[] {
  return transposed ? [...batch, cols, rows] : [...batch, rows, cols];
}

// [batch of A, batch of B]: unbatched; shared batch; B shared by A's batch (a linear layer); A shared
// by B's batch; a batch of 1 against 2; B's batch [3] broadcast over A's leading axis.
const BATCHES: Array<[number[], number[]]> = [
  [[], []],
  [[2], [2]],
  [[2, 2], []],
  [[], [3]],
  [[1], [2]],
  [[2, 3], [3]],
];

describeOnBackends('matmul gradients', () => {
  for (const [batchA, batchB] of BATCHES) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        it(`[${batchA}] x [${batchB}]${transposeA ? ' transposeA' : ''}${transposeB ? ' transposeB' : ''}`, () => {
          const rng = new Rng(109);
          const [m, k, n] = [3, 2, 4];
          checkGradient(
            (a, b) => tf.matMul(a, b, transposeA, transposeB),
            [normal(rng, stored(batchA, m, k, transposeA)), normal(rng, stored(batchB, k, n, transposeB))],
            rng,
          );
        });
      }
    }
  }

  it('a rank-4 batch against a rank-2 weight, then a rank-2 against a rank-4 batch', () => {
    const rng = new Rng(113);
    checkGradient((a, b) => tf.matMul(a, b), [normal(rng, [2, 1, 3, 2]), normal(rng, [2, 3])], rng);
    checkGradient((a, b) => tf.matMul(a, b), [normal(rng, [3, 2]), normal(rng, [2, 1, 2, 3])], rng);
  });

  it('the same tensor as both operands', () => {
    const rng = new Rng(127);
    checkGradient((a) => tf.matMul(a, a, false, true), [normal(rng, [3, 2])], rng);
  });
});
