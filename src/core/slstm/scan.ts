/**
 * The sLSTM time scan as ONE op: the recurrent products R h and the pointwise update run in a
 * plain loop over typed arrays (per-step tfjs ops would be mostly dispatch overhead), with a
 * hand-written backward pass (BPTT). Arithmetic is float64 inside, float32 at the boundary; the training
 * scan on the wasm backend runs the same equations in float32 SIMD (scan-simd.ts).
 *
 * Per unit u, with pre-activations p = gx_t + R h_{t-1} in gate order (i, f, z, o):
 *   m_t = max(logsigmoid(p_f) + m_{t-1}, p_i); i' = exp(p_i - m_t); f' = exp(logsigmoid(p_f) + m_{t-1} - m_t)
 *   c_t = f' c_{t-1} + i' tanh(p_z); n_t = f' n_{t-1} + i'; h_t = sigmoid(p_o) c_t / n_t
 * The stabiliser cancels between c and n, so the backward pass treats every m as a constant.
 */
import * as tf from '@tensorflow/tfjs-core';
import { scanBackwardSimd, scanForwardSimd } from './scan-simd.ts';

export interface ScanDims {
  readonly B: number;
  readonly T: number;
  readonly nh: number;
  readonly dh: number;
}

/** c, n, h, m: [B, H] each, as flat arrays. */
export interface ScanState {
  readonly c: Float32Array;
  readonly n: Float32Array;
  readonly h: Float32Array;
  readonly m: Float32Array;
}

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const logSigmoid = (x: number): number => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));

/** What the forward pass keeps for the backward pass: pre-activations and every state. */
interface Trace {
  readonly pre: Float64Array; // [B, T, 4H]
  readonly c: Float64Array; // [B, T+1, H], index 0 the initial state
  readonly n: Float64Array;
  readonly h: Float64Array;
  readonly m: Float64Array;
}

/** The forward pass in float64 JavaScript: the scan where the SIMD kernels do not run, and their test oracle. */
export function scanForward(gx: Float32Array, R: Float32Array, s0: ScanState, dims: ScanDims): { hs: Float32Array; trace: Trace } {
  const { B, T, nh, dh } = dims;
  const H = nh * dh;
  const hs = new Float32Array(B * T * H);
  const pre = new Float64Array(B * T * 4 * H);
  const c = new Float64Array(B * (T + 1) * H);
  const n = new Float64Array(B * (T + 1) * H);
  const h = new Float64Array(B * (T + 1) * H);
  const m = new Float64Array(B * (T + 1) * H);
  for (let b = 0; b < B; b++) {
    const s = b * (T + 1) * H;
    for (let u = 0; u < H; u++) {
      c[s + u] = s0.c[b * H + u];
      n[s + u] = s0.n[b * H + u];
      h[s + u] = s0.h[b * H + u];
      m[s + u] = s0.m[b * H + u];
    }
    for (let t = 0; t < T; t++) {
      const prev = s + t * H;
      const next = prev + H;
      const p = (b * T + t) * 4 * H;
      for (let g = 0; g < 4; g++) {
        for (let j = 0; j < nh; j++) {
          for (let o = 0; o < dh; o++) {
            let acc: number = gx[p + g * H + j * dh + o];
            const r = ((g * nh + j) * dh + o) * dh;
            const hb = prev + j * dh;
            for (let i = 0; i < dh; i++) acc += R[r + i] * h[hb + i];
            pre[p + g * H + j * dh + o] = acc;
          }
        }
      }
      for (let u = 0; u < H; u++) {
        const logf = logSigmoid(pre[p + H + u]);
        const pi = pre[p + u];
        const mNew = Math.max(logf + m[prev + u], pi);
        const iw = Math.exp(pi - mNew);
        const fw = Math.exp(logf + m[prev + u] - mNew);
        c[next + u] = fw * c[prev + u] + iw * Math.tanh(pre[p + 2 * H + u]);
        n[next + u] = fw * n[prev + u] + iw;
        h[next + u] = (sigmoid(pre[p + 3 * H + u]) * c[next + u]) / n[next + u];
        m[next + u] = mNew;
        hs[(b * T + t) * H + u] = h[next + u];
      }
    }
  }
  return { hs, trace: { pre, c, n, h, m } };
}

/** The backward pass over scanForward's trace, in float64. */
export function scanBackward(dy: Float32Array, R: Float32Array, tr: Trace, dims: ScanDims): { dgx: Float32Array; dR: Float32Array } {
  const { B, T, nh, dh } = dims;
  const H = nh * dh;
  const dgx = new Float32Array(B * T * 4 * H);
  const dR = new Float64Array(4 * nh * dh * dh);
  const dp = new Float64Array(4 * H);
  for (let b = 0; b < B; b++) {
    const dhRec = new Float64Array(H);
    const dc = new Float64Array(H);
    const dn = new Float64Array(H);
    for (let t = T - 1; t >= 0; t--) {
      const prev = (b * (T + 1) + t) * H;
      const cur = prev + H;
      const p = (b * T + t) * 4 * H;
      for (let u = 0; u < H; u++) {
        const pi = tr.pre[p + u];
        const pf = tr.pre[p + H + u];
        const pz = tr.pre[p + 2 * H + u];
        const po = tr.pre[p + 3 * H + u];
        const mNew = tr.m[cur + u];
        const iw = Math.exp(pi - mNew);
        const fw = Math.exp(logSigmoid(pf) + tr.m[prev + u] - mNew);
        const tz = Math.tanh(pz);
        const so = sigmoid(po);
        const q = tr.c[cur + u] / tr.n[cur + u];
        const dh_ = dy[(b * T + t) * H + u] + dhRec[u];
        dp[3 * H + u] = dh_ * q * so * (1 - so);
        const dq = dh_ * so;
        const dcu = dc[u] + dq / tr.n[cur + u];
        const dnu = dn[u] - (dq * q) / tr.n[cur + u];
        const dfw = dcu * tr.c[prev + u] + dnu * tr.n[prev + u];
        const diw = dcu * tz + dnu;
        dp[2 * H + u] = dcu * iw * (1 - tz * tz);
        dp[u] = diw * iw;
        // f' = 0 on the first step (m_prev = -inf): no gradient reaches the forget gate there.
        dp[H + u] = fw === 0 ? 0 : dfw * fw * sigmoid(-pf);
        dc[u] = dcu * fw;
        dn[u] = dnu * fw;
      }
      dhRec.fill(0);
      for (let g = 0; g < 4; g++) {
        for (let j = 0; j < nh; j++) {
          for (let o = 0; o < dh; o++) {
            const g_ = dp[g * H + j * dh + o];
            dgx[p + g * H + j * dh + o] = g_;
            const r = ((g * nh + j) * dh + o) * dh;
            const hb = prev + j * dh;
            for (let i = 0; i < dh; i++) {
              dR[r + i] += g_ * tr.h[hb + i];
              dhRec[j * dh + i] += R[r + i] * g_;
            }
          }
        }
      }
    }
  }
  return { dgx, dR: Float32Array.from(dR) };
}

function finalState(tr: Trace, dims: ScanDims): ScanState {
  const { B, T, nh, dh } = dims;
  const H = nh * dh;
  const pick = (a: Float64Array) => {
    const out = new Float32Array(B * H);
    for (let b = 0; b < B; b++) for (let u = 0; u < H; u++) out[b * H + u] = a[(b * (T + 1) + T) * H + u];
    return out;
  };
  return { c: pick(tr.c), n: pick(tr.n), h: pick(tr.h), m: pick(tr.m) };
}

/** The initial state: c = n = h = 0, m = -inf (so the first step has i' = 1, f' = 0). */
export function zeroScanState(B: number, H: number): ScanState {
  return { c: new Float32Array(B * H), n: new Float32Array(B * H), h: new Float32Array(B * H), m: new Float32Array(B * H).fill(-Infinity) };
}

/**
 * Differentiable scan for training from the zero state: gx [B, T, 4H], R [4, nh, dh, dh] -> hs [B, T, H].
 * Gradients flow to gx and R. On the wasm backend it runs on the float32 SIMD kernels (scan-simd.ts) where they
 * cover the widths; the cpu backend keeps the float64 loops, a reference for the others.
 */
export const slstmScanTrain: (gx: tf.Tensor3D, R: tf.Tensor4D) => tf.Tensor3D = tf.customGrad((...args) => {
  const gx = args[0] as tf.Tensor3D;
  const R = args[1] as tf.Tensor4D;
  const [B, T] = gx.shape;
  const [, nh, dh] = R.shape;
  const dims = { B, T, nh, dh };
  const Rdata = R.dataSync() as Float32Array; // sync: the scan runs on the host
  const gxData = gx.dataSync() as Float32Array;
  const simd = tf.getBackend() === 'wasm' ? scanForwardSimd(gxData, Rdata, dims) : null;
  if (simd) {
    return {
      value: tf.tensor3d(simd.hs, [B, T, nh * dh]),
      gradFunc: (dy: tf.Tensor3D) => {
        const { dgx, dR } = scanBackwardSimd(dy.dataSync() as Float32Array, Rdata, simd.trace, dims);
        return [tf.tensor3d(dgx, gx.shape), tf.tensor4d(dR, R.shape)];
      },
    };
  }
  const { hs, trace } = scanForward(gxData, Rdata, zeroScanState(B, nh * dh), dims);
  return {
    value: tf.tensor3d(hs, [B, T, nh * dh]),
    gradFunc: (dy: tf.Tensor3D) => {
      const { dgx, dR } = scanBackward(dy.dataSync() as Float32Array, Rdata, trace, dims);
      return [tf.tensor3d(dgx, gx.shape), tf.tensor4d(dR, R.shape)];
    },
  };
});

/** Non-differentiable scan from a given state (prefill and decode): hs [B, T, H] and the state after it. */
export function slstmScanFrom(gx: Float32Array, R: Float32Array, s0: ScanState, dims: ScanDims): { hs: Float32Array; state: ScanState } {
  const { hs, trace } = scanForward(gx, R, s0, dims);
  return { hs, state: finalState(trace, dims) };
}
