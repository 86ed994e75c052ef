/**
 * The element-wise passes of the host mLSTM cell (host-cell.ts), one batch row and head at a time, in float64
 * JavaScript over the lower triangle only: the cpu backend's passes, the wasm backend's where WebAssembly SIMD
 * is missing, and the oracle of the generated SIMD passes (cell-passes-simd.ts). The per-time-step factors of
 * the decay and the gate gradients (T exps and sigmoids a head) are shared with the SIMD passes.
 *
 * Decay: with b = cumsum(logsigmoid(f)) and g_s = i_s - b_s, log D[t, s] - m_t = g_s - M_t where
 * M_t = max_{s <= t} g_s, so m_t = b_t + M_t and D[t, s] = exp(g_s - M_t).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';
import { logSigmoid } from '../host/math.ts';
import { sigmoid } from './block-passes.ts';
import { NORM_EXP_CAP } from './cell.ts';
import { TINY } from './cell-kernels.ts';

type Info = tf.TensorInfo;

export interface CellShape {
  readonly B: number;
  readonly T: number;
  readonly nh: number;
  readonly dh: number;
}

/** Where a gradient goes: columns from `col` of rows `stride` floats apart in `t`, times `scale`. */
export interface Columns {
  readonly t: Info;
  readonly stride: number;
  readonly col: number;
  readonly scale: number;
}

/**
 * The passes over one head (b, j) at a time; decay() sets up the head's decay weights for stabilise() and
 * decayGrad(), stabilise() its row sums r and normaliser z for normalise() and outputGrad(), outputGrad() the
 * dr that decayGrad() adds, and decayGrad() the sums that gateGrads() reads.
 */
export interface CellPasses {
  /** x [N, H]'s head j of batch row b into out [T, dh], or [dh, T] when transposed. */
  gather(x: Info, b: number, j: number, out: Info, transposed: boolean): void;
  decay(gates: Info, b: number, j: number): void;
  /** S = P * D in place over P [T, T] (zero above the diagonal), with r and z; S^T into ST when given. */
  stabilise(P: Info, ST: Info | null): void;
  /** h's head rows = num [T, dh] / z. */
  normalise(num: Info, h: Info, b: number, j: number): void;
  /** gz [T, dh] = dh~ / z and dr = -rowsum(dh~ h~) / z sign(r) where |r| > floor, from the head's rows. */
  outputGrad(dh: Info, h: Info, b: number, j: number, gz: Info): void;
  /** dP [T, T] = (dP + dr 1^T) * D in place (given gz v^T), dP^T into dPT; the sums of dlogD = dS * S. */
  decayGrad(dP: Info, S: Info, dPT: Info): void;
  /** from [T, dh] times to.scale into the head's columns of `to`. */
  put(from: Info, to: Columns, b: number, j: number): void;
  /** The input gate gradient colsum dlogD and the forget gate's (reverse cumsum db) sigmoid(-f). */
  gateGrads(gates: Info, to: Columns, b: number, j: number): void;
  /** Frees what the passes hold. */
  release(): void;
}

/**
 * A_t = exp(g_t - M_t), step_t = exp(M_{t-1} - M_t) and floor_t = exp(min(-m_t, 80)) for head j of batch
 * row b: D[t, s] = A_s prod_{u=s+1..t} step_u, both factors at most 1.
 */
export function decayFactors(gates: Float32Array, b: number, j: number, s: CellShape, A: Float64Array, step: Float64Array, floor: Float64Array): void {
  const { T, nh } = s;
  const stride = 2 * nh;
  let acc = 0;
  let M = -Infinity;
  for (let t = 0; t < T; t++) {
    const row = (b * T + t) * stride;
    acc += logSigmoid(gates[row + nh + j]);
    const g = gates[row + j] - acc;
    const prev = M;
    if (g > M) M = g;
    A[t] = Math.exp(g - M);
    step[t] = t === 0 ? 0 : Math.exp(prev - M);
    floor[t] = Math.exp(Math.min(-(acc + M), NORM_EXP_CAP));
  }
}

/** dgates of head j of batch row b from the row and column sums of dlogD (db = row - col). */
export function gateGradsFrom(gates: Float32Array, dg: Float32Array, to: Columns, b: number, j: number, s: CellShape, row: Float64Array, col: Float64Array): void {
  const { T, nh } = s;
  let acc = 0; // reverse cumulative sum of db
  for (let t = T - 1; t >= 0; t--) {
    const n = (b * T + t) * 2 * nh;
    const o = (b * T + t) * to.stride + to.col;
    acc += row[t] - col[t];
    dg[o + j] = col[t] * to.scale;
    dg[o + nh + j] = acc * sigmoid(-gates[n + nh + j]) * to.scale;
  }
}

/** The float64 JavaScript passes for shape s on io. */
export function jsCellPasses(io: HostIO, s: CellShape): CellPasses {
  const { T, nh, dh } = s;
  const H = nh * dh;
  const f64 = (): Float64Array => new Float64Array(T);
  const [A, step, floor, z, r, dr, row, col] = [f64(), f64(), f64(), f64(), f64(), f64(), f64(), f64()];
  const D = new Float64Array(T * T); // lower triangle
  return {
    gather(x, b, j, out, transposed) {
      const xv = io.view(x);
      const ov = io.view(out);
      for (let t = 0; t < T; t++) {
        const src = (b * T + t) * H + j * dh;
        if (transposed) for (let e = 0; e < dh; e++) ov[e * T + t] = xv[src + e];
        else for (let e = 0; e < dh; e++) ov[t * dh + e] = xv[src + e];
      }
    },
    decay(gates, b, j) {
      decayFactors(io.view(gates), b, j, s, A, step, floor);
      for (let t = 0; t < T; t++) {
        const o = t * T;
        let p = 1;
        let u = t;
        for (; u >= 0 && p > TINY; u--) {
          D[o + u] = A[u] * p;
          p *= step[u];
        }
        for (; u >= 0; u--) D[o + u] = 0;
      }
    },
    stabilise(P, ST) {
      const Pv = io.view(P);
      const STv = ST && io.view(ST);
      STv?.fill(0);
      for (let t = 0; t < T; t++) {
        const o = t * T;
        let sum = 0;
        for (let u = 0; u <= t; u++) {
          const v = Pv[o + u] * D[o + u];
          Pv[o + u] = v;
          sum += v;
        }
        for (let u = t + 1; u < T; u++) Pv[o + u] = 0;
        if (STv) for (let u = 0; u <= t; u++) STv[u * T + t] = Pv[o + u];
        r[t] = sum;
        z[t] = Math.max(Math.abs(sum), floor[t]);
      }
    },
    normalise(num, h, b, j) {
      const nv = io.view(num);
      const hv = io.view(h);
      for (let t = 0; t < T; t++) {
        const inv = 1 / z[t];
        const dst = (b * T + t) * H + j * dh;
        for (let e = 0; e < dh; e++) hv[dst + e] = nv[t * dh + e] * inv;
      }
    },
    outputGrad(dh_, h, b, j, gz) {
      const g = io.view(dh_);
      const hv = io.view(h);
      const gzv = io.view(gz);
      for (let t = 0; t < T; t++) {
        const src = (b * T + t) * H + j * dh;
        let gh = 0;
        for (let e = 0; e < dh; e++) {
          const ge = g[src + e];
          gh += ge * hv[src + e];
          gzv[t * dh + e] = ge / z[t];
        }
        // The floor holds the normaliser where |r| is below it: r then has no influence.
        dr[t] = Math.abs(r[t]) > floor[t] ? (-gh / z[t]) * Math.sign(r[t]) : 0;
      }
    },
    decayGrad(dP, S, dPT) {
      const dPv = io.view(dP);
      const Sv = io.view(S);
      const dPTv = io.view(dPT);
      dPTv.fill(0);
      col.fill(0);
      for (let t = 0; t < T; t++) {
        const o = t * T;
        let rs = 0;
        for (let u = 0; u <= t; u++) {
          const dS = dPv[o + u] + dr[t];
          const l = dS * Sv[o + u];
          rs += l;
          col[u] += l;
          const g = dS * D[o + u];
          dPv[o + u] = g;
          dPTv[u * T + t] = g;
        }
        for (let u = t + 1; u < T; u++) dPv[o + u] = 0;
        row[t] = rs;
      }
    },
    put(from, to, b, j) {
      const fv = io.view(from);
      const dst = io.view(to.t);
      for (let t = 0; t < T; t++) {
        const o = (b * T + t) * to.stride + to.col + j * dh;
        for (let e = 0; e < dh; e++) dst[o + e] = fv[t * dh + e] * to.scale;
      }
    },
    gateGrads(gates, to, b, j) {
      gateGradsFrom(io.view(gates), io.view(to.t), to, b, j, s, row, col);
    },
    release() {},
  };
}
