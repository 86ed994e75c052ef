/**
 * One fused decode step of an sLSTM block on the host backends: LayerNorm, conv, the gate
 * matMuls, the recurrent update (one step of slstm/scan.ts, written into the next state in place
 * rather than through the scan's trace), GroupNorm and the gated GeLU MLP. Same equations as
 * slstm/block.ts. On wasm the work between the matMuls is generated WebAssembly SIMD on the heap in
 * place (simd/slstm-kernels.ts, float32); on cpu, or for widths it does not cover, the JavaScript
 * below (float64 inside).
 */
import * as tf from '@tensorflow/tfjs-core';
import { scratch, type HostIO } from './io.ts';
import { convStepRows, expNonPositive, gelu, logSigmoid, normRow, residualRows, sigmoid, tanh } from './math.ts';
import { slstmKernels, slstmSimdCovers } from './simd/slstm-kernels.ts';

export interface SlstmStepAttrs {
  readonly nh: number;
  readonly dh: number;
  readonly P: number;
  readonly k: number;
}

type Info = tf.TensorInfo;

/** One row's gate pre-activations, kept between calls. */
let preScratch = new Float64Array(0);

/**
 * inputs: x [B, d], the block's packed weights, and its state (conv [B, k-1, d] when k > 0;
 * c, n, h, m [B, H]). Returns [y, conv?, c, n, h, m].
 */
export function slstmStepHost(io: HostIO, inp: Record<string, Info>, a: SlstmStepAttrs): Info[] {
  const { nh, dh, P, k } = a;
  const H = nh * dh;
  const [B, d] = inp.x.shape;
  const v = (t: Info) => io.view(t);
  const { tmp, take, free } = scratch(io);

  const xn = take([B, d]);
  const cIn = k > 0 ? take([B, d]) : xn;
  const convOut = k > 0 ? io.alloc([B, k - 1, d]) : null;
  const simd = io.heap && slstmSimdCovers({ nh, dh, d, P, k }) ? slstmKernels(io.heap, { nh, dh, d, P, k }) : null;
  const at = io.addr;
  if (simd) {
    simd.norm(at(inp.x), at(inp.normW), at(inp.normB), at(xn), B);
    if (convOut) simd.conv(at(xn), 0, at(inp.convW), at(inp.convB), at(inp.conv), 0, at(cIn), at(convOut), B);
  } else {
    const x = v(inp.x), w = v(inp.normW), b = v(inp.normB), xv = v(xn);
    for (let r = 0; r < B; r++) normRow(x, r * d, d, w, b, 0, xv, r * d);
    if (k > 0 && convOut) convStepRows(xv, B, d, k, v(inp.convW), v(inp.convB), v(inp.conv), v(cIn), v(convOut));
  }
  const g1 = tmp(io.matMul(cIn, inp.wC)); // [B, 2H]: i, f
  const g2 = tmp(io.matMul(xn, inp.wX)); // [B, 2H]: z, o
  const cs = io.alloc([B, H]), ns = io.alloc([B, H]), hs = io.alloc([B, H]), ms = io.alloc([B, H]);
  const y = take([B, H]);
  if (simd) {
    const Rt = take([4, nh, dh, dh]);
    const work = take([4 * H]);
    transposeBlocks(v(inp.R), v(Rt), 4 * nh, dh);
    simd.cell(
      at(g1), at(g2), at(inp.bG), at(Rt), at(inp.c), at(inp.n), at(inp.h), at(inp.m),
      at(cs), at(ns), at(hs), at(ms), at(inp.outW), at(inp.outB), at(y), at(work), B,
    );
  } else {
    const g1v = v(g1), g2v = v(g2), bG = v(inp.bG), R = v(inp.R);
    const c0 = v(inp.c), n0 = v(inp.n), h0 = v(inp.h), m0 = v(inp.m);
    const c1 = v(cs), n1 = v(ns), h1 = v(hs), m1 = v(ms);
    const outW = v(inp.outW), outB = v(inp.outB), yv = v(y);
    // One row's pre-activations in gate order i, f, z, o: gx (rounded to float32, as the scan takes it) + R h.
    if (preScratch.length < 4 * H) preScratch = new Float64Array(4 * H);
    const pre = preScratch;
    for (let r = 0; r < B; r++) {
      const g = r * 2 * H;
      const s = r * H;
      for (let u = 0; u < 2 * H; u++) {
        pre[u] = Math.fround(g1v[g + u] + bG[u]);
        pre[2 * H + u] = Math.fround(g2v[g + u] + bG[2 * H + u]);
      }
      for (let gate = 0; gate < 4; gate++) {
        for (let j = 0; j < nh; j++) {
          const hb = s + j * dh;
          for (let o = 0; o < dh; o++) {
            const rb = ((gate * nh + j) * dh + o) * dh;
            // Two sums, so that consecutive adds do not wait on each other.
            let a0 = pre[gate * H + j * dh + o];
            let a1 = 0;
            let i = 0;
            for (; i + 1 < dh; i += 2) {
              a0 += R[rb + i] * h0[hb + i];
              a1 += R[rb + i + 1] * h0[hb + i + 1];
            }
            if (i < dh) a0 += R[rb + i] * h0[hb + i];
            pre[gate * H + j * dh + o] = a0 + a1;
          }
        }
      }
      // The step of slstm/scan.ts: exponents are <= 0 by the choice of mNew.
      for (let u = 0; u < H; u++) {
        const logf = logSigmoid(pre[H + u]);
        const pi = pre[u];
        const mPrev = m0[s + u];
        const mNew = Math.max(logf + mPrev, pi);
        const iw = expNonPositive(pi - mNew);
        const fw = expNonPositive(logf + mPrev - mNew);
        const c = fw * c0[s + u] + iw * tanh(pre[2 * H + u]);
        const n = fw * n0[s + u] + iw;
        c1[s + u] = c;
        n1[s + u] = n;
        h1[s + u] = (sigmoid(pre[3 * H + u]) * c) / n;
        m1[s + u] = mNew;
      }
      // GroupNorm per head of the float32 h, as the state holds it.
      for (let j = 0; j < nh; j++) normRow(h1, s + j * dh, dh, outW, outB, j * dh, yv, s + j * dh);
    }
  }
  const upm = tmp(io.matMul(y, inp.wUp)); // [B, 2P]
  const z = take([B, P]);
  {
    // The SIMD kernel covers whole groups of four columns; the rest (or all, without it) run here.
    if (simd) simd.mlp(at(upm), 2 * P, at(inp.bUp), at(z), P, B);
    const uv = v(upm), bUp = v(inp.bUp), zv = v(z);
    const from = simd ? 4 * Math.floor(P / 4) : 0;
    for (let r = 0; r < B; r++) {
      for (let j = from; j < P; j++) zv[r * P + j] = gelu(uv[r * 2 * P + j] + bUp[j]) * (uv[r * 2 * P + P + j] + bUp[P + j]);
    }
  }
  const down = tmp(io.matMul(z, inp.wDown)); // [B, d]
  const out = io.alloc([B, d]);
  if (simd) simd.residual(at(inp.x), at(down), at(inp.bDown), at(out), B);
  else residualRows(v(inp.x), v(down), v(inp.bDown), v(out), B, d);
  free();
  return convOut ? [out, convOut, cs, ns, hs, ms] : [out, cs, ns, hs, ms];
}

/** out[b][i][o] = R[b][o][i] for `blocks` square blocks of side n: R's rows become columns, four outputs a vector. */
function transposeBlocks(R: Float32Array, out: Float32Array, blocks: number, n: number): void {
  for (let b = 0; b < blocks; b++) {
    const base = b * n * n;
    for (let o = 0; o < n; o++) for (let i = 0; i < n; i++) out[base + i * n + o] = R[base + o * n + i];
  }
}
