/**
 * Linear-layer pieces for the fused training kernels on host memory (cpu, wasm): transposes into
 * fresh tensors and the weight and input gradients of y = x W as plain 2-D matMuls. On wasm a
 * matMul with a transposed operand, or with a batch, leaves XNNPACK for a naive loop, so every
 * transpose is materialised first.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';

type Info = tf.TensorInfo;

/** Tile edge of the transpose: a tile's source rows and destination rows both stay in cache. */
const TILE = 16;

/** x [rows, cols] -> a new [cols, rows] tensor. */
export function transposed(io: HostIO, x: Info): Info {
  const [rows, cols] = x.shape;
  const out = io.alloc([cols, rows]);
  const src = io.view(x);
  const dst = io.view(out);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let c = c0; c < c1; c++) {
        const o = c * rows;
        for (let r = r0; r < r1; r++) dst[o + r] = src[r * cols + c];
      }
    }
  }
  return out;
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
