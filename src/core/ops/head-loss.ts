/**
 * The LM head and next-token cross-entropy as ONE differentiable op. The [N, V] logits are never
 * kept: forward and backward each recompute them chunk by chunk, so the tape saves only x and the
 * head (tfjs copies every saved tensor; logits at N = 1024, V = 50258 are 200 MB). No one-hot is
 * built: the target logit is a row-wise dot product, and its gradient a sparse correction.
 *
 * loss = sum_n w_n (logsumexp(x_n W) - x_n . W[:, t_n]);  w_n = mask_n / sum(mask)
 * dlogits = w_n (softmax(x_n W) - e_{t_n});  dx = dlogits W^T;  dW = x^T dlogits
 */
import * as tf from '@tensorflow/tfjs-core';
import { onWebgpu } from '../gpu/device.ts';
import { headLossFused, headLossOnHost } from './head-loss-host.ts';

/** Rows per chunk: bounds the transient [rows, V] logits to about 50 MB at V = 50258. */
const ROWS = 256;

function chunks(N: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < N; s += ROWS) out.push([s, Math.min(ROWS, N - s)]);
  return out;
}

/**
 * The sum of many tensors in AddN groups of at most 7: webgpu binds every input of an AddN at once,
 * and a device grants 8 storage buffers per shader stage unless asked for more (16 on an H200).
 */
function sumOf(parts: tf.Tensor[]): tf.Tensor {
  let total = tf.addN(parts.slice(0, 7));
  for (let j = 7; j < parts.length; j += 6) total = tf.addN([total, ...parts.slice(j, j + 6)]);
  return total;
}

/**
 * x [N, d], W [d, V] (the head, [in, out]), targets [N] int32, weights [N] (w_n) -> scalar loss.
 * The host backends (cpu, wasm) take the one-kernel form of head-loss-host.ts.
 */
export function headLoss(x: tf.Tensor2D, W: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  return headLossOnHost() ? headLossFused(x, W, targets, weights) : headLossOps(x, W, targets, weights);
}

/** The same loss from tfjs ops, for every backend. */
export const headLossOps: (x: tf.Tensor2D, W: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D) => tf.Scalar = tf.customGrad((...args) => {
  const [x, W, targets, weights] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
  const save = args[4] as tf.GradSaveFunc;
  const [N, d] = x.shape;
  const loss = tf.tidy(() => {
    const WT = tf.transpose(W); // [V, d]: rows of the head, for the target logits
    // Each chunk in its own scope: its [n, V] temporaries are freed before the next chunk starts.
    const parts = chunks(N).map(([s, n]) =>
      tf.tidy(() => {
        const xc = tf.slice(x, [s, 0], [n, d]);
        const logits = tf.matMul(xc, W); // [n, V]
        const max = tf.max(logits, 1, true);
        const lse = tf.add(tf.log(tf.sum(tf.exp(tf.sub(logits, max)), 1)), tf.reshape(max, [n]));
        const target = tf.sum(tf.mul(xc, tf.gather(WT, tf.slice(targets, [s], [n]))), 1);
        return tf.sum(tf.mul(tf.sub(lse, target), tf.slice(weights, [s], [n])));
      }),
    );
    return sumOf(parts) as tf.Scalar;
  });
  save([x, W, targets, weights]);
  return {
    value: loss,
    gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) => {
      const [x, W, targets, weights] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
      const V = W.shape[1];
      const WT = tf.transpose(W); // [V, d]
      const dxs: tf.Tensor[] = [];
      let dW: tf.Tensor = tf.zeros([d, V]);
      for (const [s, n] of chunks(N)) {
        // One scope per chunk (the [n, V] softmax and its products are freed at once); dW carried.
        const [dx, next] = tf.tidy(() => {
          const xc = tf.slice(x, [s, 0], [n, d]);
          const tc = tf.slice(targets, [s], [n]);
          const wc = tf.reshape(tf.mul(tf.slice(weights, [s], [n]), dy), [n, 1]); // [n, 1]
          const logits = tf.matMul(xc, W);
          const e = tf.exp(tf.sub(logits, tf.max(logits, 1, true)));
          const p = tf.mul(tf.div(e, tf.sum(e, 1, true)), wc); // w_n softmax, [n, V]
          // The one-hot part of dlogits, -w_n e_{t_n}, enters dx as -w_n W[:, t_n] and dW as a scatter.
          const dxc = tf.sub(tf.matMul(p, WT), tf.mul(tf.gather(WT, tc), wc));
          const dWc = tf.sub(tf.add(dW, tf.matMul(tf.transpose(xc), p)), scatterColumns(tf.mul(xc, wc) as tf.Tensor2D, tc, V));
          return [dxc, dWc];
        });
        dW.dispose();
        dW = next;
        dxs.push(dx);
      }
      return [tf.concat(dxs, 0), dW, tf.zerosLike(targets), tf.zerosLike(weights)];
    },
  };
});

/** out[:, t_n] += rows[n] for every n (duplicates summed): [d, V]. Built on the host; d * V is small. */
function scatterColumns(rows: tf.Tensor2D, targets: tf.Tensor1D, V: number): tf.Tensor2D {
  // WebGPU under Node cannot read back synchronously: a segment sum on the device instead.
  if (onWebgpu()) return tf.transpose(tf.unsortedSegmentSum(rows, targets, V)) as tf.Tensor2D;
  const [n, d] = rows.shape;
  const r = rows.dataSync(); // sync: a few thousand floats
  const t = targets.dataSync();
  const out = new Float32Array(d * V);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[j * V + t[i]] += r[i * d + j];
  return tf.tensor2d(out, [d, V]);
}
