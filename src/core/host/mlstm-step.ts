/**
 * One fused decode step of an mLSTM block on the host backends (cpu, wasm): the four matMuls run
 * on the backend's kernel, everything between them (LayerNorm, conv, gates, the cell update,
 * GroupNorm, gating, residual) in one pass over the rows. Same equations as mlstm/block.ts. On wasm
 * that pass is generated WebAssembly SIMD working on the heap in place (simd/mlstm-kernels.ts,
 * float32); on cpu, or for widths it does not cover, it is the JavaScript below (float64 inside).
 */
import * as tf from '@tensorflow/tfjs-core';
import { scratch, type HostIO } from './io.ts';
import { convStepRows, expClamped, expNonPositive, logSigmoid, normRow, residualRows } from './math.ts';
import { mlstmKernels, simdCovers } from './simd/mlstm-kernels.ts';

const NORM_EXP_CAP = 80;

export interface MlstmStepAttrs {
  readonly nh: number;
  readonly dh: number;
  readonly dm: number;
  readonly k: number;
}

type Info = tf.TensorInfo;

/**
 * inputs: x [B, d], the block's packed weights, and its state (conv [B, k-1, dm] when k > 0,
 * C [B, nh, dh, dh], n [B, nh, dh], m [B, nh]). Returns [y, conv?, C, n, m].
 */
export function mlstmStepHost(io: HostIO, inp: Record<string, Info>, a: MlstmStepAttrs): Info[] {
  const { nh, dh, dm, k } = a;
  const H = nh * dh;
  const [B, d] = inp.x.shape;
  const v = (t: Info) => io.view(t);
  const { tmp, take, free } = scratch(io);

  const widths = { d, nh, dh, dm, k };
  const simd = io.heap && simdCovers(widths) ? mlstmKernels(io.heap, widths) : null;
  const at = io.addr;
  const xn = take([B, d]);
  if (simd) simd.norm(at(inp.x), at(inp.normW), at(inp.normB), at(xn), B);
  else {
    const x = v(inp.x), w = v(inp.normW), b = v(inp.normB), out = v(xn);
    for (let r = 0; r < B; r++) normRow(x, r * d, d, w, b, 0, out, r * d);
  }
  const up = tmp(io.matMul(xn, inp.wUp)); // [B, dm + H]
  const u = take([B, dm]);
  const c = k > 0 ? take([B, dm]) : u;
  const convOut = k > 0 ? io.alloc([B, k - 1, dm]) : null;
  if (simd && convOut) {
    simd.conv(at(up), at(inp.bUp), at(inp.convW), at(inp.convB), at(inp.conv), at(u), at(c), at(convOut), B);
  } else {
    const upv = v(up), bUp = v(inp.bUp), uv = v(u);
    for (let r = 0; r < B; r++) for (let j = 0; j < dm; j++) uv[r * dm + j] = upv[r * (dm + H) + j] + bUp[j];
    if (k > 0 && convOut) convStepRows(uv, B, dm, k, v(inp.convW), v(inp.convB), v(inp.conv), v(c), v(convOut));
  }
  const cc = tmp(io.matMul(c, inp.wC)); // [B, 3H + 2nh]
  const uu = tmp(io.matMul(u, inp.wU)); // [B, 2H]
  const y = take([B, H]);
  const C2 = io.alloc([B, nh, dh, dh]);
  const n2 = io.alloc([B, nh, dh]);
  const m2 = io.alloc([B, nh]);
  if (simd) {
    const gates = take([B, nh, 3]);
    simd.cell(
      at(cc), at(uu), at(up), at(inp.bC), at(inp.bU), at(inp.bUp), at(inp.outW), at(inp.outB),
      at(inp.C), at(inp.n), at(inp.m), at(C2), at(n2), at(m2), at(y), at(gates), B, 1 / Math.sqrt(dh),
    );
  } else {
    cellRows(
      { cc: v(cc), uu: v(uu), up: v(up), bC: v(inp.bC), bU: v(inp.bU), bUp: v(inp.bUp), outW: v(inp.outW), outB: v(inp.outB) },
      { C: v(inp.C), n: v(inp.n), m: v(inp.m) },
      { C: v(C2), n: v(n2), m: v(m2), y: v(y) },
      B, nh, dh, dm,
    );
  }
  const down = tmp(io.matMul(y, inp.wDown)); // [B, d]
  const out = io.alloc([B, d]);
  if (simd) simd.residual(at(inp.x), at(down), at(inp.bDown), at(out), B);
  else residualRows(v(inp.x), v(down), v(inp.bDown), v(out), B, d);
  free();
  return convOut ? [out, convOut, C2, n2, m2] : [out, C2, n2, m2];
}

/** Per-row float64 scratch of the cell, kept between calls (a decode step makes one call per block). */
let rowScratch = new Float64Array(0);

/**
 * The cell, GroupNorm, skip and silu(r) gating of B rows: reads the projections (cc = c W_C, uu = u W_U, up =
 * xn W_up, biases not yet added) and the state, writes the next state and y [B, H].
 */
function cellRows(
  a: {
    cc: Float32Array; uu: Float32Array; up: Float32Array; bC: Float32Array; bU: Float32Array; bUp: Float32Array;
    outW: Float32Array; outB: Float32Array;
  },
  s: { C: Float32Array; n: Float32Array; m: Float32Array },
  o: { C: Float32Array; n: Float32Array; m: Float32Array; y: Float32Array },
  B: number, nh: number, dh: number, dm: number,
): void {
  const { cc, uu, up, bC, bU, bUp, outW, outB } = a;
  const { C, n, m } = s;
  const { C: Cn, n: nn, m: mn, y } = o;
  const H = nh * dh;
  const W = 3 * H + 2 * nh;
  const scale = 1 / Math.sqrt(dh);
  if (rowScratch.length < H + 2 * dh) rowScratch = new Float64Array(H + 2 * dh);
  const h = rowScratch;
  const q = H;
  const kv = H + dh;
  for (let r = 0; r < B; r++) {
    const cr = r * W;
    const ur = r * 2 * H;
    for (let j = 0; j < nh; j++) {
      const jh = j * dh;
      const ig = cc[cr + 2 * H + j] + bC[2 * H + j];
      const logf = logSigmoid(cc[cr + 2 * H + nh + j] + bC[2 * H + nh + j]);
      const mPrev = m[r * nh + j];
      const mNew = Math.max(logf + mPrev, ig);
      // Both exponents are <= 0 by the choice of mNew.
      const iw = expNonPositive(ig - mNew);
      const fw = expNonPositive(logf + mPrev - mNew);
      mn[r * nh + j] = mNew;
      const nBase = (r * nh + j) * dh;
      let den = 0;
      for (let p = 0; p < dh; p++) {
        const qp = cc[cr + jh + p] + bC[jh + p];
        const kp = (cc[cr + H + jh + p] + bC[H + jh + p]) * scale;
        h[q + p] = qp;
        h[kv + p] = kp;
        const np = fw * n[nBase + p] + iw * kp;
        nn[nBase + p] = np;
        den += np * qp;
      }
      const invNorm = 1 / Math.max(Math.abs(den), Math.exp(Math.min(-mNew, NORM_EXP_CAP)));
      const cBase = nBase * dh;
      for (let i = 0; i < dh; i++) {
        const ivi = iw * (uu[ur + jh + i] + bU[jh + i]);
        const row = cBase + i * dh;
        // C_t q over two sums, so that consecutive adds do not wait on each other.
        let s0 = 0;
        let s1 = 0;
        let p = 0;
        for (; p + 1 < dh; p += 2) {
          const v0 = fw * C[row + p] + ivi * h[kv + p];
          const v1 = fw * C[row + p + 1] + ivi * h[kv + p + 1];
          Cn[row + p] = v0;
          Cn[row + p + 1] = v1;
          s0 += v0 * h[q + p];
          s1 += v1 * h[q + p + 1];
        }
        if (p < dh) {
          const v0 = fw * C[row + p] + ivi * h[kv + p];
          Cn[row + p] = v0;
          s0 += v0 * h[q + p];
        }
        const og = uu[ur + H + jh + i] + bU[H + jh + i];
        h[jh + i] = ((s0 + s1) * invNorm) / (1 + expClamped(-og));
      }
    }
    // GroupNorm per head, skip, and gating by silu(r).
    const yr = r * H;
    const rr = r * (dm + H) + dm;
    for (let j = 0; j < nh; j++) {
      const jh = j * dh;
      let mean = 0;
      for (let i = 0; i < dh; i++) mean += h[jh + i];
      mean /= dh;
      let varc = 0;
      for (let i = 0; i < dh; i++) {
        const c = h[jh + i] - mean;
        varc += c * c;
      }
      const inv = 1 / Math.sqrt(varc / dh + 1e-5);
      for (let i = 0; i < dh; i++) {
        const ch = jh + i;
        const gn = (h[ch] - mean) * inv * outW[ch] + outB[ch];
        const g = up[rr + ch] + bUp[dm + ch];
        y[yr + ch] = ((gn + cc[cr + 2 * H + 2 * nh + ch]) * g) / (1 + expClamped(-g));
      }
    }
  }
}
