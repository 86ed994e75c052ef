import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { headLossFused } from '../../../src/core/ops/head-loss-host.ts';
import { headLossOps } from '../../../src/core/ops/head-loss.ts';
import { Rng } from '../../../src/util/rng.ts';
import { TEST_BACKENDS } from '../../support/backends.ts';
import { finiteDiffGrad } from '../../support/reference/index.ts';
import { expectNoTensorLeak, maxRelDiff } from '../../support/tiny-model.ts';

/**
 * The one-kernel head + cross-entropy (gradients computed in the forward pass) against a float64
 * evaluation of the loss with central finite differences, and against the op-by-op headLoss.
 * N = 530 rows: two full chunks of 256 and a last one of 18 (padded to a whole group of 8).
 */
const [N, d, V] = [530, 6, 37];

function problem(seed: number) {
  const rng = new Rng(seed);
  const x = Float64Array.from({ length: N * d }, () => Math.fround(rng.normal()));
  const W = Float64Array.from({ length: d * V }, () => Math.fround(0.7 * rng.normal()));
  const targets = Int32Array.from({ length: N }, () => rng.int(V));
  // Some rows masked out (weight 0); the rest weighted 1/count, as nextTokenLoss does.
  const mask = Array.from({ length: N }, (_, n): number => (n % 7 === 3 ? 0 : 1));
  const count = mask.reduce((a, b) => a + b, 0);
  const weights = Float64Array.from(mask, (m) => Math.fround(m / count));
  return { x, W, targets, weights };
}

/** sum_n w_n (logsumexp(x_n W) - x_n . W[:, t_n]) in float64. */
function loss64(p: ReturnType<typeof problem>): number {
  let total = 0;
  const logits = new Float64Array(V);
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let c = 0; c < V; c++) {
      let acc = 0;
      for (let i = 0; i < d; i++) acc += p.x[n * d + i] * p.W[i * V + c];
      logits[c] = acc;
      max = Math.max(max, acc);
    }
    let sum = 0;
    for (let c = 0; c < V; c++) sum += Math.exp(logits[c] - max);
    total += p.weights[n] * (Math.log(sum) + max - logits[p.targets[n]]);
  }
  return total;
}

type Loss = (x: tf.Tensor2D, W: tf.Tensor2D, t: tf.Tensor1D, w: tf.Tensor1D) => tf.Scalar;

/** The loss and its gradients with respect to x and W for an upstream gradient dy. */
function evaluate(f: Loss, p: ReturnType<typeof problem>, dy = 1) {
  return tf.tidy(() => {
    const x = tf.tensor2d(Float32Array.from(p.x), [N, d]);
    const W = tf.tensor2d(Float32Array.from(p.W), [d, V]);
    const t = tf.tensor1d(p.targets, 'int32');
    const w = tf.tensor1d(Float32Array.from(p.weights));
    const loss = f(x, W, t, w).dataSync()[0];
    const [dx, dW] = tf.grads((a: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor2D, b as tf.Tensor2D, t, w))([x, W], tf.scalar(dy));
    return { loss, dx: dx.dataSync() as Float32Array, dW: dW.dataSync() as Float32Array };
  });
}

describe.each(TEST_BACKENDS)('the fused head and cross-entropy on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });
  const p = problem(3);

  it('gives the float64 loss and its finite-difference gradients', () => {
    const got = evaluate(headLossFused, p);
    const want = loss64(p);
    expect(Math.abs(got.loss - want) / want).toBeLessThan(1e-6);
    for (const [name, param, g] of [['x', p.x, got.dx], ['W', p.W, got.dW]] as const) {
      const idx = [0, 5, 77, 151, param.length - 1];
      const fd = finiteDiffGrad(() => loss64(p), param, idx);
      const scale = Math.max(...Array.from(g, Math.abs));
      idx.forEach((i, j) => expect(Math.abs(g[i] - fd[j]), `${name}[${i}]: fused ${g[i]}, finite differences ${fd[j]}`).toBeLessThanOrEqual(1e-4 * scale));
    }
  });

  it('agrees with the op-by-op head loss, the upstream gradient scaling both gradients', () => {
    const fused = evaluate(headLossFused, p, 2.5);
    const ops = evaluate(headLossOps, p, 2.5);
    expect(Math.abs(fused.loss - ops.loss) / ops.loss).toBeLessThan(1e-6);
    expect(maxRelDiff(fused.dx, ops.dx)).toBeLessThan(1e-5);
    expect(maxRelDiff(fused.dW, ops.dW)).toBeLessThan(1e-5);
    const unit = evaluate(headLossFused, p, 1);
    expect(maxRelDiff(fused.dW, unit.dW.map((v) => 2.5 * v))).toBeLessThan(1e-6);
  });

  // Targets at each row's argmax and logits 8x sharper: most rows have p_t close to 1, and their
  // small gradient must not come out of a difference of two rounded terms (w p_t - w in float32, as
  // the op-by-op loss forms it, leaves such rows wrong by more than their size). Checked row by row.
  it('keeps the precision of dx where the softmax is peaked at the target', () => {
    const q = problem(5);
    for (let i = 0; i < q.x.length; i++) q.x[i] = Math.fround(8 * q.x[i]);
    const want = new Float64Array(N * d);
    for (let n = 0; n < N; n++) {
      const logits = Array.from({ length: V }, (_, c) => {
        let acc = 0;
        for (let i = 0; i < d; i++) acc += q.x[n * d + i] * q.W[i * V + c];
        return acc;
      });
      const t = logits.indexOf(Math.max(...logits));
      q.targets[n] = t;
      const max = logits[t];
      const sum = logits.reduce((a, l) => a + Math.exp(l - max), 0);
      for (let c = 0; c < V; c++) {
        const g = q.weights[n] * (Math.exp(logits[c] - max) / sum - (c === t ? 1 : 0));
        for (let i = 0; i < d; i++) want[n * d + i] += g * q.W[i * V + c];
      }
    }
    const got = evaluate(headLossFused, q).dx;
    for (let n = 0; n < N; n++) {
      const row = (a: ArrayLike<number>) => Array.from({ length: d }, (_, i) => a[n * d + i]);
      // A masked row (weight 0) has no gradient at all.
      if (q.weights[n] === 0) expect(row(got).every((v) => v === 0), `row ${n}`).toBe(true);
      else expect(maxRelDiff(row(got), row(want)), `row ${n}`).toBeLessThan(1e-4);
    }
  });

  it('computes the same loss without a tape, and leaves no tensors behind either way', async () => {
    const taped = evaluate(headLossFused, p).loss;
    const plain = await expectNoTensorLeak(() =>
      tf.tidy(() => headLossFused(tf.tensor2d(Float32Array.from(p.x), [N, d]), tf.tensor2d(Float32Array.from(p.W), [d, V]), tf.tensor1d(p.targets, 'int32'), tf.tensor1d(Float32Array.from(p.weights))).dataSync()[0]),
    );
    expect(plain).toBe(taped);
    await expectNoTensorLeak(() => void evaluate(headLossFused, p));
  });
});
