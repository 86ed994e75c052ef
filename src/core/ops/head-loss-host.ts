/**
 * The LM head and cross-entropy of head-loss.ts as one host kernel (cpu, wasm) that, when a tape
 * records it, computes the gradients in the same pass: the loss is the last op, so its upstream
 * gradient is a scalar and dlogits = w_n (softmax(x_n W) - e_{t_n}) is known in the forward pass.
 * The [rows, V] logits of a chunk are then used once, while in memory, for the loss, dx and dW:
 * no second logits matMul and no second exp over [N, V] in the backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { onHostBackend, registerHostKernel, type HostIO } from '../host/io.ts';
import { addInto, GROUP, jsPasses, simdPasses, type RowPasses } from './head-loss-passes.ts';
import { transposed } from './host-linear.ts';
import { keepTrace, recording, releaseTrace, type KeptTrace } from './kept-trace.ts';

type Info = tf.TensorInfo;

/** Rows per chunk: the chunk's logits and their transposed copy stay about 100 MB at V = 50258. */
const ROWS = 256;

const KERNEL = 'XlstmHeadLoss';

export interface HeadLossAttrs {
  readonly withGrad: boolean;
}

/**
 * Softmax cross-entropy of a chunk's logits L [n, V], whose first `rows` rows are rows s.. of the
 * batch (the rest padding), returning sum_r w_r (lse_r - L[r, t_r]). With GT, L becomes
 * G = dloss/dlogits = w_r (softmax - e_{t_r}) in place (zero on padding rows) and GT [V, n] its
 * transpose. The target's entry w_r (p_t - 1) is formed before any product: where p_t is near 1 a
 * product first and a subtraction after would cancel. n is a multiple of GROUP (the group's rows are
 * written out together: the transposed copy gets runs of GROUP floats). `passes` work on these L and GT.
 */
function softmaxRows(passes: RowPasses, L: Float32Array, V: number, n: number, rows: number, t: Int32Array, w: Float32Array, s: number, GT: Float32Array | null): number {
  let total = 0;
  const k = new Float64Array(n);
  const p = new Float64Array(n); // the target's softmax
  for (let g0 = 0; g0 < n; g0 += GROUP) {
    for (let r = g0; r < g0 + GROUP; r++) {
      if (r >= rows) continue;
      const o = r * V;
      const max = passes.max(r);
      const logit = L[o + t[s + r]];
      const sum = passes.exp(r, max);
      const wn = w[s + r];
      total += wn * (Math.log(sum) + max - logit);
      k[r] = wn / sum;
      p[r] = Math.exp(logit - max) / sum;
    }
    if (!GT) continue;
    passes.scaleTransposeGroup(g0, k);
    for (let r = g0; r < Math.min(rows, g0 + GROUP); r++) {
      const c = t[s + r];
      const g = w[s + r] * (p[r] - 1);
      L[r * V + c] = g;
      GT[c * n + r] = g;
    }
  }
  return total;
}

/**
 * x [N, d], W [d, V], targets [N] int32, weights [N] -> [loss []] or, withGrad, [loss, dx [N, d],
 * dW [d, V]] (the gradients for an upstream gradient of 1): dx = G W^T and dW^T = G^T x. Every
 * [rows, V] matrix is a matMul's left operand: XNNPACK packs the right one on each call, which
 * for [rows, V] costs more than the product; hence the transposed copy GT.
 */
export function headLossHost(io: HostIO, inp: Record<string, Info>, a: HeadLossAttrs): Info[] {
  const [N, d] = inp.x.shape;
  const V = inp.W.shape[1];
  const loss = io.alloc([]);
  const dx = a.withGrad ? io.alloc([N, d]) : null;
  const dWT = a.withGrad ? io.alloc([V, d]) : null;
  const WT = a.withGrad ? transposed(io, inp.W) : null; // [V, d]
  let total = 0;
  for (let s = 0; s < N; s += ROWS) {
    // The last chunk is padded with zero rows (of zero weight) to a whole number of groups.
    const rows = Math.min(ROWS, N - s);
    const n = Math.ceil(rows / GROUP) * GROUP;
    const xc = io.alloc([n, d]);
    io.view(xc).fill(0).set(io.view(inp.x).subarray(s * d, (s + rows) * d));
    const G = io.matMul(xc, inp.W); // [n, V]: the logits, then dloss/dlogits
    const GT = dx ? io.alloc([V, n]) : null;
    const t = io.view(inp.targets) as unknown as Int32Array;
    const L = io.view(G);
    const LT = GT ? io.view(GT) : null;
    const passes = simdPasses(io, G, GT) ?? jsPasses(L, LT, V, n);
    total += softmaxRows(passes, L, V, n, rows, t, io.view(inp.weights), s, LT);
    if (dx && dWT && WT && GT) {
      const dxc = io.matMul(G, WT); // [n, d]
      const part = io.matMul(GT, xc); // [V, d]
      io.view(dx).set(io.view(dxc).subarray(0, rows * d), s * d);
      if (s === 0) io.view(dWT).set(io.view(part));
      else addInto(io, dWT, part);
      for (const x of [dxc, part, GT]) io.free(x);
    }
    io.free(xc);
    io.free(G);
  }
  io.view(loss)[0] = total;
  if (!dx || !dWT || !WT) return [loss];
  const dW = transposed(io, dWT);
  io.free(dWT);
  io.free(WT);
  return [loss, dx, dW];
}

registerHostKernel(KERNEL, headLossHost);

/** Whether the active backend runs the host kernel. */
export function headLossOnHost(): boolean {
  return onHostBackend();
}

/** x [N, d], W [d, V], targets [N] int32, weights [N] -> scalar loss, as head-loss.ts's headLoss. */
export function headLossFused(x: tf.Tensor2D, W: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  // Only an op recorded for a backward pass computes its gradients.
  const withGrad = recording();
  const op = tf.customGrad((...args) => {
    const [xi, Wi, ti, wi] = args as tf.Tensor[];
    const [loss, dx, dW] = tf.engine().runKernel(KERNEL, { x: xi, W: Wi, targets: ti, weights: wi }, { withGrad } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    const grads: KeptTrace | null = dx && dW ? keepTrace([dx, dW]) : null;
    return {
      value: loss as tf.Scalar,
      gradFunc: (dy: tf.Scalar) => {
        if (!grads) throw new Error('headLossFused: a backward pass ran for a forward pass that was not recorded');
        const [gx, gW] = grads.tensors;
        const out = [tf.mul(gx, dy), tf.mul(gW, dy), tf.zeros(ti.shape), tf.zeros(wi.shape)];
        releaseTrace(grads);
        return out;
      },
    };
  });
  return op(x, W, targets, weights) as tf.Scalar;
}
