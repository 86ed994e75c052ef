/**
 * One fused decode step of an mLSTM block on the host backends (cpu, wasm): the four matMuls run
 * on the backend's kernel, everything between them (LayerNorm, conv, gates, the cell update,
 * GroupNorm, gating, residual) in one pass over the rows. Same equations as mlstm/block.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { scratch, type HostIO } from './io.ts';
import { convStepRows, expNonPositive, logSigmoid, normRow, residualRows, sigmoid, silu } from './math.ts';

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

  const xn = take([B, d]);
  {
    const x = v(inp.x), w = v(inp.normW), b = v(inp.normB), out = v(xn);
    for (let r = 0; r < B; r++) normRow(x, r * d, d, w, b, 0, out, r * d);
  }
  const up = tmp(io.matMul(xn, inp.wUp)); // [B, dm + H]
  const u = take([B, dm]);
  const c = k > 0 ? take([B, dm]) : u;
  const convOut = k > 0 ? io.alloc([B, k - 1, dm]) : null;
  {
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
  {
    const ccv = v(cc), uuv = v(uu), upv = v(up), bC = v(inp.bC), bU = v(inp.bU), bUp = v(inp.bUp);
    const C = v(inp.C), n = v(inp.n), m = v(inp.m), Cn = v(C2), nn = v(n2), mn = v(m2), yv = v(y);
    const outW = v(inp.outW), outB = v(inp.outB);
    const W = 3 * H + 2 * nh;
    const scale = 1 / Math.sqrt(dh);
    const hrow = new Float64Array(H);
    const q = new Float64Array(dh);
    const kv = new Float64Array(dh);
    for (let r = 0; r < B; r++) {
      const cr = r * W;
      for (let j = 0; j < nh; j++) {
        const ig = ccv[cr + 2 * H + j] + bC[2 * H + j];
        const fg = ccv[cr + 2 * H + nh + j] + bC[2 * H + nh + j];
        const logf = logSigmoid(fg);
        const mPrev = m[r * nh + j];
        const mNew = Math.max(logf + mPrev, ig);
        // Both exponents are <= 0 by the choice of mNew.
        const iw = expNonPositive(ig - mNew);
        const fw = expNonPositive(logf + mPrev - mNew);
        mn[r * nh + j] = mNew;
        const cBase = (r * nh + j) * dh * dh;
        const nBase = (r * nh + j) * dh;
        let den = 0;
        for (let p = 0; p < dh; p++) {
          q[p] = ccv[cr + j * dh + p] + bC[j * dh + p];
          kv[p] = (ccv[cr + H + j * dh + p] + bC[H + j * dh + p]) * scale;
          const np = fw * n[nBase + p] + iw * kv[p];
          nn[nBase + p] = np;
          den += np * q[p];
        }
        const norm = Math.max(Math.abs(den), Math.exp(Math.min(-mNew, NORM_EXP_CAP)));
        for (let i = 0; i < dh; i++) {
          const ivi = iw * (uuv[r * 2 * H + j * dh + i] + bU[j * dh + i]);
          const row = cBase + i * dh;
          let num = 0;
          for (let p = 0; p < dh; p++) {
            const val = fw * C[row + p] + ivi * kv[p];
            Cn[row + p] = val;
            num += val * q[p];
          }
          const og = uuv[r * 2 * H + H + j * dh + i] + bU[H + j * dh + i];
          hrow[j * dh + i] = (sigmoid(og) * num) / norm;
        }
      }
      // GroupNorm per head, skip, and gating by silu(r).
      for (let j = 0; j < nh; j++) {
        let mean = 0;
        for (let i = 0; i < dh; i++) mean += hrow[j * dh + i];
        mean /= dh;
        let varc = 0;
        for (let i = 0; i < dh; i++) varc += (hrow[j * dh + i] - mean) ** 2;
        const inv = 1 / Math.sqrt(varc / dh + 1e-5);
        for (let i = 0; i < dh; i++) {
          const ch = j * dh + i;
          const gn = (hrow[ch] - mean) * inv * outW[ch] + outB[ch];
          const skip = ccv[cr + 2 * H + 2 * nh + ch];
          const rr = upv[r * (dm + H) + dm + ch] + bUp[dm + ch];
          yv[r * H + ch] = (gn + skip) * silu(rr);
        }
      }
    }
  }
  const down = tmp(io.matMul(y, inp.wDown)); // [B, d]
  const out = io.alloc([B, d]);
  residualRows(v(inp.x), v(down), v(inp.bDown), v(out), B, d);
  free();
  return convOut ? [out, convOut, C2, n2, m2] : [out, C2, n2, m2];
}
