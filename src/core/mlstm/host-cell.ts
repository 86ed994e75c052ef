/**
 * The parallel mLSTM cell from the zero state on host memory (cpu and wasm backends), forward and
 * backward, for the fused training block (train-block.ts). The same equations as parallel-op.ts,
 * one batch row and head at a time: the products run as plain 2-D matMuls on the backend's kernel
 * (on wasm a batched matMul takes a slow path, 10x slower than XNNPACK's 2-D one), the decay
 * weights and every [T, T] pointwise step run in float64 over the lower triangle only.
 *
 * Rows are n = b*T + t; q, k, v, h~ are [N, H] with head j in columns [j*dh, (j+1)*dh);
 * gates [N, 2nh] hold the input gate of head j in column j and its forget gate in column nh + j.
 * Decay: with b = cumsum(logsigmoid(f)) and g_s = i_s - b_s, log D[t, s] - m_t = g_s - M_t where
 * M_t = max_{s <= t} g_s, so m_t = b_t + M_t and D[t, s] = exp(g_s - M_t).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';
import { logSigmoid } from '../host/math.ts';
import { sigmoid } from './block-passes.ts';
import { NORM_EXP_CAP } from './cell.ts';

type Info = tf.TensorInfo;

export interface CellShape {
  readonly B: number;
  readonly T: number;
  readonly nh: number;
  readonly dh: number;
}

/** Per-head scratch in float64, reused across heads. */
interface HeadScratch {
  readonly A: Float64Array; // exp(g_s - M_s)
  readonly step: Float64Array; // exp(M_{s-1} - M_s)
  readonly floor: Float64Array; // exp(min(-m_t, 80))
  readonly D: Float64Array; // [T, T], lower triangle
  readonly z: Float64Array; // normaliser max(|r_t|, floor_t)
  readonly r: Float64Array; // row sums of S
}

let cached: HeadScratch | null = null;

/** The scratch for sequences of length T, kept between calls (kernels do not run concurrently). */
function headScratch(T: number): HeadScratch {
  if (cached && cached.r.length === T) return cached;
  cached = {
    A: new Float64Array(T),
    step: new Float64Array(T),
    floor: new Float64Array(T),
    D: new Float64Array(T * T),
    z: new Float64Array(T),
    r: new Float64Array(T),
  };
  return cached;
}

/** Below this a running product of decay factors is treated as zero (and denormals are never reached). */
const TINY = 1e-300;

/**
 * Decay weights of head j of batch row b. D[t, s] = exp(g_s - M_t) = A_s prod_{u=s+1..t} step_u,
 * both factors at most 1: two exps per time step instead of one per (t, s) pair.
 */
function decay(gates: Float32Array, b: number, j: number, s: CellShape, w: HeadScratch): void {
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
    w.A[t] = Math.exp(g - M);
    w.step[t] = t === 0 ? 0 : Math.exp(prev - M);
    w.floor[t] = Math.exp(Math.min(-(acc + M), NORM_EXP_CAP));
  }
  const { D, A, step } = w;
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
}

/** Copies head j of batch row b from x [N, H] into out [T, dh] (transposed: [dh, T]). */
function gather(x: Float32Array, b: number, j: number, s: CellShape, out: Float32Array, transposed: boolean): void {
  const { T, nh, dh } = s;
  const H = nh * dh;
  for (let t = 0; t < T; t++) {
    const src = (b * T + t) * H + j * dh;
    if (transposed) for (let e = 0; e < dh; e++) out[e * T + t] = x[src + e];
    else for (let e = 0; e < dh; e++) out[t * dh + e] = x[src + e];
  }
}

/**
 * S = (q k^T) * D in place over P [T, T] (zero above the diagonal), with the row sums r and the
 * normaliser z; S^T into ST when given (its lower part must be zero already).
 */
function stabilise(P: Float32Array, T: number, w: HeadScratch, ST: Float32Array | null): void {
  const D = w.D;
  for (let t = 0; t < T; t++) {
    const o = t * T;
    let r = 0;
    for (let u = 0; u <= t; u++) {
      const v = P[o + u] * D[o + u];
      P[o + u] = v;
      r += v;
    }
    for (let u = t + 1; u < T; u++) P[o + u] = 0;
    if (ST) for (let u = 0; u <= t; u++) ST[u * T + t] = P[o + u];
    w.r[t] = r;
    w.z[t] = Math.max(Math.abs(r), w.floor[t]);
  }
}

/** h~ [N, H] from q, k (already scaled), v [N, H] and gates [N, 2nh]: writes `h`. */
export function cellForward(io: HostIO, q: Info, k: Info, v: Info, gates: Info, h: Info, s: CellShape): void {
  const { B, T, nh, dh } = s;
  const H = nh * dh;
  const w = headScratch(T);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < nh; j++) {
      const Qh = io.alloc([T, dh]);
      const KT = io.alloc([dh, T]);
      const Vh = io.alloc([T, dh]);
      gather(io.view(q), b, j, s, io.view(Qh), false);
      gather(io.view(k), b, j, s, io.view(KT), true);
      gather(io.view(v), b, j, s, io.view(Vh), false);
      decay(io.view(gates), b, j, s, w);
      const P = io.matMul(Qh, KT); // [T, T]
      stabilise(io.view(P), T, w, null);
      const num = io.matMul(P, Vh); // [T, dh]
      const nv = io.view(num);
      const hv = io.view(h);
      for (let t = 0; t < T; t++) {
        const inv = 1 / w.z[t];
        const dst = (b * T + t) * H + j * dh;
        for (let e = 0; e < dh; e++) hv[dst + e] = nv[t * dh + e] * inv;
      }
      for (const x of [Qh, KT, Vh, P, num]) io.free(x);
    }
  }
}

/** Where a gradient goes: columns from `col` of rows `stride` floats apart in `t`, times `scale`. */
export interface Columns {
  readonly t: Info;
  readonly stride: number;
  readonly col: number;
  readonly scale: number;
}

/**
 * Destinations of the cell's gradients: dq, dk (with respect to the scaled key), dv with H columns
 * each; dgates with 2nh (input gates, then forget gates, as in `gates`).
 */
export interface CellGrads {
  readonly dq: Columns;
  readonly dk: Columns;
  readonly dv: Columns;
  readonly dgates: Columns;
}

/**
 * Gradients of the cell from dh [N, H], given its inputs and its output h~ (m a constant: it
 * cancels between numerator and normaliser). Per head, with gz = dh / z:
 *   dr = -rowsum(dh * h~) / z * sign(r) [|r| > floor];  dS = gz v^T + dr 1^T
 *   dv = S^T gz;  dP = dS * D;  dq = dP k;  dk = dP^T q
 *   dlogD = dS * S;  di = colsum dlogD;  db = rowsum dlogD - colsum dlogD
 *   df = (reverse cumsum db) * sigmoid(-f)
 */
export function cellBackward(io: HostIO, q: Info, k: Info, v: Info, gates: Info, h: Info, dh_: Info, s: CellShape, out: CellGrads): void {
  const { B, T, nh, dh } = s;
  const H = nh * dh;
  const w = headScratch(T);
  const dr = new Float64Array(T);
  const row = new Float64Array(T);
  const col = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < nh; j++) {
      // Every [T, T] matrix is the left operand: the right one is packed by XNNPACK on each call,
      // so it is kept to the small [T, dh] and [dh, T] ones. S^T and dP^T are written beside S, dP.
      const Qh = io.alloc([T, dh]);
      const Kh = io.alloc([T, dh]);
      const KT = io.alloc([dh, T]);
      const VT = io.alloc([dh, T]);
      const gz = io.alloc([T, dh]);
      const ST = io.alloc([T, T]);
      const dPT = io.alloc([T, T]);
      {
        const qv = io.view(q);
        const kv = io.view(k);
        gather(qv, b, j, s, io.view(Qh), false);
        gather(kv, b, j, s, io.view(Kh), false);
        gather(kv, b, j, s, io.view(KT), true);
        gather(io.view(v), b, j, s, io.view(VT), true);
      }
      decay(io.view(gates), b, j, s, w);
      const P = io.matMul(Qh, KT); // becomes S
      const STv = io.view(ST);
      STv.fill(0);
      stabilise(io.view(P), T, w, STv);
      {
        const g = io.view(dh_);
        const hv = io.view(h);
        const gzv = io.view(gz);
        for (let t = 0; t < T; t++) {
          const src = (b * T + t) * H + j * dh;
          const z = w.z[t];
          let gh = 0;
          for (let e = 0; e < dh; e++) {
            const ge = g[src + e];
            gh += ge * hv[src + e];
            gzv[t * dh + e] = ge / z;
          }
          const r = w.r[t];
          // The floor holds the normaliser where |r| is below it: r then has no influence.
          dr[t] = Math.abs(r) > w.floor[t] ? (-gh / z) * Math.sign(r) : 0;
        }
      }
      const dSv = io.matMul(gz, VT); // [T, T] -> dP in place
      {
        const dP = io.view(dSv);
        const S = io.view(P);
        const D = w.D;
        const dPTv = io.view(dPT);
        dPTv.fill(0);
        row.fill(0);
        col.fill(0);
        for (let t = 0; t < T; t++) {
          const o = t * T;
          const drt = dr[t];
          let rs = 0;
          for (let u = 0; u <= t; u++) {
            const dS = dP[o + u] + drt;
            const l = dS * S[o + u];
            rs += l;
            col[u] += l;
            const g = dS * D[o + u];
            dP[o + u] = g;
            dPTv[u * T + t] = g;
          }
          for (let u = t + 1; u < T; u++) dP[o + u] = 0;
          row[t] = rs;
        }
      }
      const dqh = io.matMul(dSv, Kh); // dP k: [T, dh]
      const dkh = io.matMul(dPT, Qh); // dP^T q: [T, dh]
      const dvh = io.matMul(ST, gz); // S^T gz: [T, dh]
      for (const [src, to] of [
        [dqh, out.dq],
        [dkh, out.dk],
        [dvh, out.dv],
      ] as const) {
        const from = io.view(src);
        const dst = io.view(to.t);
        for (let t = 0; t < T; t++) {
          const o = (b * T + t) * to.stride + to.col + j * dh;
          for (let e = 0; e < dh; e++) dst[o + e] = from[t * dh + e] * to.scale;
        }
      }
      {
        const gv = io.view(gates);
        const g = out.dgates;
        const dg = io.view(g.t);
        let acc = 0; // reverse cumulative sum of db
        for (let t = T - 1; t >= 0; t--) {
          const n = (b * T + t) * 2 * nh;
          const o = (b * T + t) * g.stride + g.col;
          acc += row[t] - col[t];
          dg[o + j] = col[t] * g.scale;
          dg[o + nh + j] = acc * sigmoid(-gv[n + nh + j]) * g.scale;
        }
      }
      for (const x of [Qh, Kh, KT, VT, gz, ST, dPT, P, dSv, dqh, dkh, dvh]) io.free(x);
    }
  }
}
