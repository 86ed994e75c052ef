/**
 * Linear-layer pieces for the fused training kernels on host memory (cpu, wasm): transposes into
 * fresh tensors and the weight and input gradients of y = x W as plain 2-D matMuls. On wasm a
 * matMul with a transposed operand, or with a batch, leaves XNNPACK for a naive loop (and the panel kernel
 * takes plain operands), so every transpose is materialised first.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';
import { transposeKernels } from '../host/simd/transpose-kernel.ts';

type Info = tf.TensorInfo;

/** Tile edge of the transpose: a tile's source rows and destination rows both stay in cache. */
const TILE = 16;

/** x [rows, cols] -> a new [cols, rows] tensor: 4 x 4 blocks in SIMD on the wasm heap, the rest here. */
export function transposed(io: HostIO, x: Info): Info {
  const [rows, cols] = x.shape;
  const out = io.alloc([cols, rows]);
  const k = io.heap && transposeKernels(io.heap);
  if (!k) {
    copyTransposed(io.view(x), io.view(out), rows, cols, 0, rows, 0, cols);
    return out;
  }
  k.transpose(io.addr(x), rows, cols, io.addr(out));
  const [r4, c4] = [rows & ~3, cols & ~3];
  copyTransposed(io.view(x), io.view(out), rows, cols, r4, rows, 0, cols);
  copyTransposed(io.view(x), io.view(out), rows, cols, 0, r4, c4, cols);
  return out;
}

/** dst [cols, rows] at rows [r0, r1) x columns [c0, c1) of src [rows, cols], in cache-sized tiles. */
function copyTransposed(src: Float32Array, dst: Float32Array, rows: number, cols: number, r0: number, r1: number, c0: number, c1: number): void {
  for (let ra = r0; ra < r1; ra += TILE) {
    const rb = Math.min(r1, ra + TILE);
    for (let ca = c0; ca < c1; ca += TILE) {
      const cb = Math.min(c1, ca + TILE);
      for (let c = ca; c < cb; c++) {
        const o = c * rows;
        for (let r = ra; r < rb; r++) dst[o + r] = src[r * cols + c];
      }
    }
  }
}

/** dW = x^T dy for y = x W: x [N, in], dy [N, out] -> [in, out]. */
export function weightGrad(io: HostIO, x: Info, dy: Info): Info {
  const xT = transposed(io, x);
  const out = io.matMul(xT, dy);
  io.free(xT);
  return out;
}

/** dx = dy W^T for y = x W: dy [N, out], W [in, out] -> [N, in]. */
export function inputGrad(io: HostIO, dy: Info, W: Info): Info {
  const wT = transposed(io, W);
  const out = io.matMul(dy, wT);
  io.free(wT);
  return out;
}

/** Column sums of x [N, width] over columns [from, from + n): a new [n] tensor (a bias gradient). */
export function columnSums(io: HostIO, x: Info, from: number, n: number): Info {
  const [N, width] = x.shape;
  const out = io.alloc([n]);
  const acc = new Float64Array(n);
  const v = io.view(x);
  for (let r = 0; r < N; r++) {
    const o = r * width + from;
    for (let c = 0; c < n; c++) acc[c] += v[o + c];
  }
  io.view(out).set(acc);
  return out;
}
