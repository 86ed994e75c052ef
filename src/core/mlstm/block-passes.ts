/**
 * The row-wise passes of the fused mLSTM training kernels (train-kernels.ts), forward and backward:
 * LayerNorm, the up-projection split, the causal conv with silu, the q/k/v/gate split, the output
 * gate with GroupNorm, skip and silu(r) gating, and the residual. Float64 arithmetic over float32
 * storage; rows n = b*T + t. Views are taken after every allocation (a wasm heap may move). On the
 * wasm heap the generated SIMD kernels (block-passes-simd.ts) stand in for these, which remain the
 * cpu backend's passes and the kernels' test oracle.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';
import { expNonPositive } from '../host/math.ts';
import { NORM_EPS } from '../ops/norms.ts';

type Info = tf.TensorInfo;

/** sigmoid(x), through the host kernels' fast exp of a non-positive argument. */
export function sigmoid(x: number): number {
  const e = expNonPositive(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/** The block's sizes: batch, time, widths and conv taps. */
export interface Rows {
  readonly B: number;
  readonly T: number;
  readonly d: number;
  readonly nh: number;
  readonly dh: number;
  readonly H: number;
  readonly dm: number;
  readonly k: number;
}

/** xhat = (x - mean) * rstd per row; xn = xhat * w + b. */
export function layerNormForward(io: HostIO, R: Rows, x: Info, w: Info, b: Info, xhat: Info, rstd: Info, xn: Info): void {
  const { d } = R;
  const N = R.B * R.T;
  const xv = io.view(x), wv = io.view(w), bv = io.view(b), xh = io.view(xhat), rs = io.view(rstd), out = io.view(xn);
  for (let n = 0; n < N; n++) {
    const o = n * d;
    let mean = 0;
    for (let c = 0; c < d; c++) mean += xv[o + c];
    mean /= d;
    let vr = 0;
    for (let c = 0; c < d; c++) {
      const e = xv[o + c] - mean;
      vr += e * e;
    }
    const r = 1 / Math.sqrt(vr / d + NORM_EPS);
    rs[n] = r;
    for (let c = 0; c < d; c++) {
      const h = (xv[o + c] - mean) * r;
      xh[o + c] = h;
      out[o + c] = h * wv[c] + bv[c];
    }
  }
}

/** up [N, dm + H] + bias -> u [N, dm]; r's silu and sigmoid [N, H]. */
export function splitUp(io: HostIO, R: Rows, up: Info, bUp: Info, u: Info, sir: Info, sr: Info): void {
  const { dm, H } = R;
  const N = R.B * R.T;
  const W = dm + H;
  const upv = io.view(up), bv = io.view(bUp), uv = io.view(u), siv = io.view(sir), sv = io.view(sr);
  for (let n = 0; n < N; n++) {
    const o = n * W;
    for (let j = 0; j < dm; j++) uv[n * dm + j] = upv[o + j] + bv[j];
    for (let j = 0; j < H; j++) {
      const r = upv[o + dm + j] + bv[dm + j];
      const s = sigmoid(r);
      sv[n * H + j] = s;
      siv[n * H + j] = r * s;
    }
  }
}

/** a_t = bias + sum_i w[i] u_{t-(k-1)+i} (zeros before the start); c = silu(a), sa = sigmoid(a). */
export function causalConvSilu(io: HostIO, R: Rows, u: Info, w: Info, bias: Info, c: Info, sa: Info): void {
  const { B, T, dm, k } = R;
  const uv = io.view(u), wv = io.view(w), bv = io.view(bias), cv = io.view(c), sv = io.view(sa);
  const acc = new Float64Array(dm);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * dm;
      for (let j = 0; j < dm; j++) acc[j] = bv[j];
      for (let i = Math.max(0, k - 1 - t); i < k; i++) {
        const src = o + (i - (k - 1)) * dm;
        const wo = i * dm;
        for (let j = 0; j < dm; j++) acc[j] += wv[wo + j] * uv[src + j];
      }
      for (let j = 0; j < dm; j++) {
        const a = acc[j];
        const s = sigmoid(a);
        sv[o + j] = s;
        cv[o + j] = a * s;
      }
    }
  }
}

/** cc [N, 3H + 2nh] (q, k, igate, fgate, skip) and uu [N, 2H] (v, ogate) with biases into their parts. */
export function splitProjections(
  io: HostIO,
  R: Rows,
  cc: Info,
  uu: Info,
  bC: Info,
  bU: Info,
  out: { q: Info; kk: Info; v: Info; gates: Info; skip: Info; so: Info },
): void {
  const { H, nh, dh } = R;
  const N = R.B * R.T;
  const Wc = 3 * H + 2 * nh;
  const ccv = io.view(cc), uuv = io.view(uu), bc = io.view(bC), bu = io.view(bU);
  const qv = io.view(out.q), kv = io.view(out.kk), vv = io.view(out.v), gv = io.view(out.gates), sk = io.view(out.skip), so = io.view(out.so);
  const scale = 1 / Math.sqrt(dh);
  for (let n = 0; n < N; n++) {
    const o = n * Wc;
    const p = n * 2 * H;
    const h = n * H;
    for (let j = 0; j < H; j++) {
      qv[h + j] = ccv[o + j] + bc[j];
      kv[h + j] = (ccv[o + H + j] + bc[H + j]) * scale; // the key is scaled after its bias
      sk[h + j] = ccv[o + 2 * H + 2 * nh + j];
      vv[h + j] = uuv[p + j] + bu[j];
      so[h + j] = sigmoid(uuv[p + H + j] + bu[H + j]);
    }
    for (let j = 0; j < 2 * nh; j++) gv[n * 2 * nh + j] = ccv[o + 2 * H + j] + bc[2 * H + j];
  }
}

/** hh = so * h~; GroupNorm per head -> hhat, rstd2; y = (hhat * w + b + skip) * silu(r). */
export function gatingForward(io: HostIO, R: Rows, t: Record<string, Info>, w: Info, b: Info, hhat: Info, rstd2: Info, y: Info): void {
  const { nh, dh, H } = R;
  const N = R.B * R.T;
  const htv = io.view(t.ht), so = io.view(t.so), sk = io.view(t.skip), sir = io.view(t.sir);
  const wv = io.view(w), bv = io.view(b), hv = io.view(hhat), rs = io.view(rstd2), yv = io.view(y);
  const hh = new Float64Array(dh);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < nh; j++) {
      const o = n * H + j * dh;
      let mean = 0;
      for (let e = 0; e < dh; e++) {
        const val = so[o + e] * htv[o + e];
        hh[e] = val;
        mean += val;
      }
      mean /= dh;
      let vr = 0;
      for (let e = 0; e < dh; e++) {
        const c = hh[e] - mean;
        vr += c * c;
      }
      const r = 1 / Math.sqrt(vr / dh + NORM_EPS);
      rs[n * nh + j] = r;
      for (let e = 0; e < dh; e++) {
        const ch = j * dh + e;
        const xh = (hh[e] - mean) * r;
        hv[o + e] = xh;
        yv[o + e] = (xh * wv[ch] + bv[ch] + sk[o + e]) * sir[o + e];
      }
    }
  }
}

/** y = (hhat * w + b + skip) * silu(r), gatingForward's output rebuilt from the trace t (with t.outW, t.outB). */
export function gatingOutput(io: HostIO, R: Rows, t: Record<string, Info>, y: Info): void {
  const { H } = R;
  const N = R.B * R.T;
  const hv = io.view(t.hhat), sv = io.view(t.skip), sir = io.view(t.sir), w = io.view(t.outW), b = io.view(t.outB), yv = io.view(y);
  for (let n = 0; n < N; n++) {
    const o = n * H;
    for (let ch = 0; ch < H; ch++) yv[o + ch] = (hv[o + ch] * w[ch] + b[ch] + sv[o + ch]) * sir[o + ch];
  }
}

/** xn = xhat * w + b, layerNormForward's output rebuilt from xhat. */
export function layerNormOutput(io: HostIO, R: Rows, xhat: Info, w: Info, b: Info, xn: Info): void {
  const { d } = R;
  const N = R.B * R.T;
  const xh = io.view(xhat), wv = io.view(w), bv = io.view(b), o = io.view(xn);
  for (let n = 0; n < N; n++) for (let c = 0; c < d; c++) o[n * d + c] = xh[n * d + c] * wv[c] + bv[c];
}

/** out = x + down + bias. */
export function residualOut(io: HostIO, R: Rows, x: Info, down: Info, bias: Info, out: Info): void {
  const { d } = R;
  const N = R.B * R.T;
  const xv = io.view(x), dv = io.view(down), bv = io.view(bias), ov = io.view(out);
  for (let n = 0; n < N; n++) {
    const o = n * d;
    for (let c = 0; c < d; c++) ov[o + c] = xv[o + c] + dv[o + c] + bv[c];
  }
}

/**
 * From dy [N, H] (the gradient of y): dr into dup[:, dm:], dskip into dcc's skip columns, dogate
 * into duu[:, H:], dh~ into dht, and the GroupNorm weight and bias gradients. With
 * y1 = GN + skip: dy1 = dy silu(r); dr = dy y1 silu'(r), silu'(r) = sr + silu(r) (1 - sr).
 */
export function gatingBackward(
  io: HostIO,
  R: Rows,
  t: Record<string, Info>,
  dy: Info,
  out: { dup: Info; dcc: Info; duu: Info; dht: Info; dOutW: Info; dOutB: Info },
): void {
  const { nh, dh, H, dm } = R;
  const N = R.B * R.T;
  const Wc = 3 * H + 2 * nh;
  const g = io.view(dy), hv = io.view(t.hhat), sk = io.view(t.skip), sir = io.view(t.sir), sr = io.view(t.sr);
  const wv = io.view(t.outW), bv = io.view(t.outB), rs = io.view(t.rstd2), so = io.view(t.so), htv = io.view(t.ht);
  const dup = io.view(out.dup), dcc = io.view(out.dcc), duu = io.view(out.duu), dht = io.view(out.dht);
  const accW = new Float64Array(H);
  const accB = new Float64Array(H);
  const dxh = new Float64Array(dh);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < nh; j++) {
      const o = n * H + j * dh;
      let m1 = 0;
      let m2 = 0;
      for (let e = 0; e < dh; e++) {
        const ch = j * dh + e;
        const i = o + e;
        const y1 = hv[i] * wv[ch] + bv[ch] + sk[i];
        const dy1 = g[i] * sir[i];
        dup[n * (dm + H) + dm + ch] = g[i] * y1 * (sr[i] + sir[i] * (1 - sr[i]));
        dcc[n * Wc + 2 * H + 2 * nh + ch] = dy1;
        accB[ch] += dy1;
        accW[ch] += dy1 * hv[i];
        const d1 = dy1 * wv[ch];
        dxh[e] = d1;
        m1 += d1;
        m2 += d1 * hv[i];
      }
      m1 /= dh;
      m2 /= dh;
      const r = rs[n * nh + j];
      for (let e = 0; e < dh; e++) {
        const i = o + e;
        const dhh = r * (dxh[e] - m1 - hv[i] * m2);
        const s = so[i];
        duu[n * 2 * H + H + j * dh + e] = dhh * htv[i] * s * (1 - s);
        dht[i] = dhh * s;
      }
    }
  }
  io.view(out.dOutW).set(accW);
  io.view(out.dOutB).set(accB);
}

/**
 * From dc [N, dm] (consumed: it becomes da = dc silu'(a), silu'(a) = sa + c (1 - sa)): the conv
 * weight and bias gradients, and du_s + sum_i w[i] da_{s + (k-1) - i} into dup's first dm columns
 * (du [N, dm] is consumed too, dup is [N, dm + H]).
 */
export function causalConvBackward(io: HostIO, R: Rows, dc: Info, c: Info, sa: Info, u: Info, w: Info, du: Info, dup: Info, dW: Info, dB: Info): void {
  const { B, T, dm, k, H } = R;
  const N = B * T;
  const da = io.view(dc), cv = io.view(c), sv = io.view(sa), uv = io.view(u), wv = io.view(w), duv = io.view(du);
  const accW = new Float64Array(k * dm);
  const accB = new Float64Array(dm);
  for (let n = 0; n < N; n++) {
    const o = n * dm;
    for (let j = 0; j < dm; j++) {
      const s = sv[o + j];
      const g = da[o + j] * (s + cv[o + j] * (1 - s));
      da[o + j] = g;
      accB[j] += g;
    }
  }
  // Tap i joins output row t to input row t - (k-1-i), within one sequence.
  for (let i = 0; i < k; i++) {
    const shift = k - 1 - i;
    const wo = i * dm;
    for (let b = 0; b < B; b++) {
      for (let t = shift; t < T; t++) {
        const o = (b * T + t) * dm;
        const src = o - shift * dm;
        for (let j = 0; j < dm; j++) {
          const g = da[o + j];
          accW[wo + j] += g * uv[src + j];
          duv[src + j] += wv[wo + j] * g;
        }
      }
    }
  }
  const dupv = io.view(dup);
  for (let n = 0; n < N; n++) dupv.set(duv.subarray(n * dm, (n + 1) * dm), n * (dm + H));
  io.view(dW).set(accW);
  io.view(dB).set(accB);
}

/**
 * LayerNorm backward from dxn [N, d]: dx = dres + rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
 * with dxhat = dxn * w (dres: the residual's gradient); and the norm's weight and bias gradients.
 */
export function layerNormBackward(io: HostIO, R: Rows, dxn: Info, xhat: Info, rstd: Info, w: Info, dres: Info, dx: Info, dW: Info, dB: Info): void {
  normBackward(io, R.B * R.T, R.d, dxn, xhat, rstd, w, dres, dx, dW, dB);
}

/**
 * The backward pass of a normalisation over `groups` runs of `len` values each (LayerNorm: rows; GroupNorm: heads),
 * whose weight w and bias repeat every w.shape[0] values: out = (dres +) rstd (dxhat - mean(dxhat) - xhat
 * mean(dxhat xhat)) per run, dxhat = dy * w; the weight and bias gradients summed over all runs in float64.
 */
export function normBackward(
  io: HostIO, groups: number, len: number, dy: Info, xhat: Info, rstd: Info, w: Info, dres: Info | null, dx: Info, dW: Info, dB: Info,
): void {
  const width = w.shape[0];
  const g = io.view(dy), xh = io.view(xhat), rs = io.view(rstd), wv = io.view(w), out = io.view(dx);
  const dr = dres ? io.view(dres) : null;
  const accW = new Float64Array(width);
  const accB = new Float64Array(width);
  const dxh = new Float64Array(len);
  for (let q = 0; q < groups; q++) {
    const o = q * len;
    const ch = o % width;
    let m1 = 0;
    let m2 = 0;
    for (let e = 0; e < len; e++) {
      const gi = g[o + e];
      accB[ch + e] += gi;
      accW[ch + e] += gi * xh[o + e];
      const d1 = gi * wv[ch + e];
      dxh[e] = d1;
      m1 += d1;
      m2 += d1 * xh[o + e];
    }
    m1 /= len;
    m2 /= len;
    const r = rs[q];
    if (dr) for (let e = 0; e < len; e++) out[o + e] = dr[o + e] + r * (dxh[e] - m1 - xh[o + e] * m2);
    else for (let e = 0; e < len; e++) out[o + e] = r * (dxh[e] - m1 - xh[o + e] * m2);
  }
  io.view(dW).set(accW);
  io.view(dB).set(accB);
}

/** The passes above as one set, so that the training kernels can take the SIMD set (block-passes-simd.ts) instead. */
export const blockPasses = {
  layerNormForward,
  splitUp,
  causalConvSilu,
  splitProjections,
  gatingForward,
  residualOut,
  gatingOutput,
  gatingBackward,
  causalConvBackward,
  layerNormOutput,
  layerNormBackward,
};

export type BlockPasses = typeof blockPasses;
