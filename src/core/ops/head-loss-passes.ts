/**
 * The passes head-loss-host.ts makes over a chunk's [n, V] logits and its gradient sums: by the SIMD kernels of
 * host/simd/head-loss-kernels.ts where the wasm backend's heap holds them, else by the JavaScript loops here (the
 * cpu backend, runtimes without SIMD), which are also the kernels' test oracle.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';
import { expNonPositive } from '../host/math.ts';
import { addIntoKernel, GROUP, headLossKernels } from '../host/simd/head-loss-kernels.ts';

export { GROUP };

/** The passes over the rows of a chunk's logits L [n, V]; r is a row, g0 the first row of a group of GROUP. */
export interface RowPasses {
  /** The max of row r. */
  max(r: number): number;
  /** Row r's entries x become e^(x - max); returns their sum. */
  exp(r: number, max: number): number;
  /** Rows g0 .. g0 + GROUP scaled in place by k[g0 ..], and written transposed into GT [V, n]. */
  scaleTransposeGroup(g0: number, k: Float64Array): void;
}

/** The max of row r of L [n, V]. */
export function rowMax(L: Float32Array, o: number, V: number): number {
  let max = -Infinity;
  for (let c = 0; c < V; c++) if (L[o + c] > max) max = L[o + c];
  return max;
}

/** L[o + c] = exp(L[o + c] - max) for c < V; returns their sum. */
export function rowExp(L: Float32Array, o: number, V: number, max: number): number {
  let sum = 0;
  for (let c = 0; c < V; c++) {
    const e = expNonPositive(L[o + c] - max);
    L[o + c] = e;
    sum += e;
  }
  return sum;
}

/**
 * Rows g0 .. g0 + GROUP of L [n, V] scaled in place by k[g0 ..], and written transposed into
 * GT [V, n]: one read stream per row, runs of GROUP floats written.
 */
export function scaleTransposeGroup(L: Float32Array, GT: Float32Array, V: number, n: number, g0: number, k: Float64Array): void {
  const k0 = k[g0], k1 = k[g0 + 1], k2 = k[g0 + 2], k3 = k[g0 + 3];
  const k4 = k[g0 + 4], k5 = k[g0 + 5], k6 = k[g0 + 6], k7 = k[g0 + 7];
  const o = g0 * V;
  for (let c = 0; c < V; c++) {
    const i = o + c;
    const dst = c * n + g0;
    const v0 = L[i] * k0, v1 = L[i + V] * k1, v2 = L[i + 2 * V] * k2, v3 = L[i + 3 * V] * k3;
    const v4 = L[i + 4 * V] * k4, v5 = L[i + 5 * V] * k5, v6 = L[i + 6 * V] * k6, v7 = L[i + 7 * V] * k7;
    L[i] = v0;
    L[i + V] = v1;
    L[i + 2 * V] = v2;
    L[i + 3 * V] = v3;
    L[i + 4 * V] = v4;
    L[i + 5 * V] = v5;
    L[i + 6 * V] = v6;
    L[i + 7 * V] = v7;
    GT[dst] = v0;
    GT[dst + 1] = v1;
    GT[dst + 2] = v2;
    GT[dst + 3] = v3;
    GT[dst + 4] = v4;
    GT[dst + 5] = v5;
    GT[dst + 6] = v6;
    GT[dst + 7] = v7;
  }
}

/** The JavaScript passes over L [n, V] (and GT [V, n] when the gradients are wanted). */
export function jsPasses(L: Float32Array, GT: Float32Array | null, V: number, n: number): RowPasses {
  return {
    max: (r) => rowMax(L, r * V, V),
    exp: (r, max) => rowExp(L, r * V, V, max),
    scaleTransposeGroup: (g0, k) => scaleTransposeGroup(L, GT as Float32Array, V, n, g0, k),
  };
}

/**
 * The SIMD passes over the tensors G [n, V] and GT [V, n] (or null) in the wasm heap; null where there is no
 * such heap or no SIMD. Views are taken once: nothing is allocated while the passes run.
 */
export function simdPasses(io: HostIO, G: tf.TensorInfo, GT: tf.TensorInfo | null): RowPasses | null {
  const [n, V] = G.shape;
  const k = io.heap ? headLossKernels(io.heap, V) : null;
  if (!k) return null;
  const L = io.view(G);
  const base = io.addr(G);
  const baseT = GT ? io.addr(GT) : 0;
  const V4 = V >> 2;
  const row = (r: number): number => base + 4 * r * V;
  return {
    max: (r) => {
      // The kernel takes whole vectors; the V mod 4 last floats are compared here.
      let max: number = k.rowMax(row(r), V4);
      for (let c = r * V + 4 * V4; c < (r + 1) * V; c++) if (L[c] > max) max = L[c];
      return max;
    },
    exp: (r, max) => {
      const sum: number = k.rowExp(row(r), V4, max);
      return sum + rowExp(L, r * V + 4 * V4, V - 4 * V4, max);
    },
    scaleTransposeGroup: (g0, kr) => k.scaleTranspose(row(g0), baseT + 4 * g0, 4 * n, ...kr.subarray(g0, g0 + GROUP)),
  };
}

/** acc += x over the float32 tensors' whole length: by SIMD where the wasm heap holds them. */
export function addInto(io: HostIO, acc: tf.TensorInfo, x: tf.TensorInfo): void {
  const a = io.view(acc);
  const k = io.heap ? addIntoKernel(io.heap) : null;
  let from = 0;
  if (k) {
    from = 4 * (a.length >> 2);
    k.addInto(io.addr(acc), io.addr(x), a.length >> 2);
  }
  const b = io.view(x);
  for (let i = from; i < a.length; i++) a[i] += b[i];
}
