/**
 * The host kernels' matMul on the wasm heap through the SIMD panel kernel (simd/matmul-kernel.ts) instead of
 * XNNPACK: the right operand is packed into panels on every call (XNNPACK packs it on every call too), then
 * multiplied at 1.3-1.9x XNNPACK's rate on a training step's shapes. The kernel sums each output over k in order
 * with a separate multiply and add, as XNNPACK's wasm SIMD GEMM does, so results are the same bit for bit.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from './io.ts';
import type { Kernels } from './simd/instance.ts';

type TensorInfo = tf.TensorInfo;

/** Below this many rows of the left operand XNNPACK keeps the call: the packing is a larger share of the work. */
export const PANEL_MIN_ROWS = 16;

/**
 * A right operand larger than this (floats) is packed only for at least BIG_MIN_ROWS rows: measured on a decode
 * step's head ([64, 64] x [64, 50260]), packing 3.2M floats made the panel path slower than XNNPACK's call.
 */
export const BIG_OPERAND = 1 << 20;
export const BIG_MIN_ROWS = 128;

export function panelMatMul(io: HostIO, k: Kernels, xnnpack: HostIO['matMul']): HostIO['matMul'] {
  return (a, b) => {
    const [M, K] = a.shape;
    const N = b.shape[1];
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.dtype !== 'float32' || b.dtype !== 'float32') return xnnpack(a, b);
    if (M < PANEL_MIN_ROWS || N < 4 || (K * N > BIG_OPERAND && M < BIG_MIN_ROWS)) return xnnpack(a, b);
    const N4 = N >> 2;
    const tail = N - 4 * N4;
    // Every allocation before any address is taken: the heap may grow.
    const y = io.alloc([M, N]);
    const packed = io.alloc([K, 4 * N4]);
    const rest = tail ? [io.alloc([K, 4]), io.alloc([M, 4])] : null;
    k.pack(io.addr(b), N, io.addr(packed), K, N4);
    k.mm(io.addr(a), K, io.addr(packed), io.addr(y), N, K, N4, M);
    if (rest) multiplyTail(io, k, a, b, y, rest[0], rest[1], tail);
    io.free(packed);
    if (rest) for (const t of rest) io.free(t);
    return y;
  };
}

/** The last `tail` (< 4) columns of y = a b: b's columns zero-padded to one vector, multiplied, copied into y. */
function multiplyTail(io: HostIO, k: Kernels, a: TensorInfo, b: TensorInfo, y: TensorInfo, panel: TensorInfo, out: TensorInfo, tail: number): void {
  const [M, K] = a.shape;
  const N = b.shape[1];
  const from = N - tail;
  const bv = io.view(b);
  const pv = io.view(panel).fill(0);
  for (let r = 0; r < K; r++) for (let j = 0; j < tail; j++) pv[4 * r + j] = bv[r * N + from + j];
  k.mm(io.addr(a), K, io.addr(panel), io.addr(out), 4, K, 1, M);
  const yv = io.view(y);
  const ov = io.view(out);
  for (let r = 0; r < M; r++) for (let j = 0; j < tail; j++) yv[r * N + from + j] = ov[4 * r + j];
}
