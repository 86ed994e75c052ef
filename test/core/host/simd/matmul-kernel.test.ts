import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../../src/backend/select.ts';
import { scratchIn } from '../../../../src/core/host/simd/instance.ts';
import { matmulKernels, panelWeights } from '../../../../src/core/host/simd/matmul-kernel.ts';
import { Rng } from '../../../../src/util/rng.ts';

/** y = x w in float32 with every output summed in order from 0, one rounding per multiply and per add. */
function sequential(x: Float32Array, w: Float32Array, B: number, K: number, N: number): Float32Array {
  const y = new Float32Array(B * N);
  for (let r = 0; r < B; r++) {
    for (let c = 0; c < N; c++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc = Math.fround(acc + Math.fround(x[r * K + k] * w[k * N + c]));
      y[r * N + c] = acc;
    }
  }
  return y;
}

/** The kernel's y [B, N] for x [B, K] and w [K, N], run in a private memory with padded strides. */
function kernel(x: Float32Array, w: Float32Array, B: number, K: number, N: number): Float32Array {
  const xs = K + 3;
  const ys = N + 8;
  const at = { w: 64, x: 64 + 4 * K * N, y: 64 + 4 * (K * N + B * xs) };
  const memory = scratchIn(at.y + 4 * B * ys);
  const mm = matmulKernels(memory);
  if (!mm) throw new Error('no WebAssembly SIMD');
  const F = new Float32Array(memory.buffer);
  panelWeights(w, K, N, F, at.w / 4);
  for (let r = 0; r < B; r++) F.set(x.subarray(r * K, (r + 1) * K), at.x / 4 + r * xs);
  // Stale values around the output must stay untouched.
  F.fill(7, at.y / 4, at.y / 4 + B * ys);
  mm.mm(at.x, xs, at.w, at.y, ys, K, N / 4, B);
  const y = new Float32Array(B * N);
  for (let r = 0; r < B; r++) {
    y.set(F.subarray(at.y / 4 + r * ys, at.y / 4 + r * ys + N), r * N);
    expect(Array.from(F.subarray(at.y / 4 + r * ys + N, at.y / 4 + (r + 1) * ys))).toEqual(Array(ys - N).fill(7));
  }
  return y;
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('the few-row SIMD matMul', () => {
  const rng = new Rng(11);
  const draw = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

  it('panelWeights puts column 4v of row k where the kernel reads it, and loses nothing', () => {
    const [K, N] = [3, 28]; // a four-vector panel of 16 columns, then a pair of vectors, then a single one
    const w = Float32Array.from({ length: K * N }, (_, j) => j);
    const out = new Float32Array(K * N);
    panelWeights(w, K, N, out, 0);
    expect(Array.from(out.subarray(0, 16))).toEqual(Array.from(w.subarray(0, 16)));
    expect(Array.from(out.subarray(16, 32))).toEqual(Array.from(w.subarray(28, 44)));
    const pair = 4 * 4 * K;
    expect(Array.from(out.subarray(pair, pair + 8))).toEqual([16, 17, 18, 19, 20, 21, 22, 23]);
    expect(Array.from(out.subarray(pair + 8, pair + 16))).toEqual([44, 45, 46, 47, 48, 49, 50, 51]);
    const single = 6 * 4 * K;
    expect(Array.from(out.subarray(single, single + 8))).toEqual([24, 25, 26, 27, 52, 53, 54, 55]);
    expect([...out].sort((a, b) => a - b)).toEqual([...w]);
  });

  it.each([1, 2, 3, 5, 8])('equals the in-order float32 sum bit for bit, for %d rows and widths with and without whole panels', (B) => {
    for (const [K, N] of [[1, 4], [3, 12], [16, 16], [64, 20], [5, 24], [85, 44], [64, 172], [128, 200]]) {
      const x = draw(B * K);
      const w = draw(K * N);
      expect(bits(kernel(x, w, B, K, N)), `${B}x${K}x${N}`).toEqual(bits(sequential(x, w, B, K, N)));
    }
  });

  it('gives every row the result it has alone', () => {
    const [B, K, N] = [7, 64, 200];
    const x = draw(B * K);
    const w = draw(K * N);
    const all = kernel(x, w, B, K, N);
    for (let r = 0; r < B; r++) {
      expect(bits(kernel(x.slice(r * K, (r + 1) * K), w, 1, K, N)), `row ${r}`).toEqual(bits(all.slice(r * N, (r + 1) * N)));
    }
  });

  describe('against tf.matMul on wasm (XNNPACK)', () => {
    beforeAll(async () => {
      await selectBackend('wasm');
    });
    it.each([1, 4, 8, 32])('is bit-identical for %d rows at the reference widths', (B) => {
      for (const [K, N] of [[64, 192], [128, 200], [128, 128], [64, 64], [85, 64], [64, 172]]) {
        const x = draw(B * K);
        const w = draw(K * N);
        const want = tf.tidy(() => tf.matMul(tf.tensor2d(x, [B, K]), tf.tensor2d(w, [K, N])).dataSync() as Float32Array);
        expect(bits(kernel(x, w, B, K, N)), `${B}x${K}x${N}`).toEqual(bits(want));
      }
    });
  });
});
