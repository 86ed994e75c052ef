/**
 * The mLSTM block in float64, line by line from DESIGN.md: the cell in its recurrent form (C, n, m) and
 * its parallel form (decay matrix), the block x + f(LN(x)) over a sequence, and a step with explicit state.
 */
import type { Dims } from '../../../src/core/config.ts';
import { causalConv, causalConvStep, groupNorm, layerNorm, linear, logsigmoid, map, sigmoid, silu } from './ops.ts';
import { maybe, need, type RefParams } from './weights.ts';

/** The mLSTM normaliser's lower bound is exp(min(-m, NORM_EXP_CAP)) (DESIGN "Conventions"). */
export const NORM_EXP_CAP = 80;

export type CellForm = 'recurrent' | 'parallel';

/** A block's state, the reference's layout without the batch axis. */
export interface MlstmState {
  /** [k-1][dm]: the last k-1 convolution inputs (u), oldest first; empty when ker_size is 0. */
  readonly conv: Float64Array[];
  /** [nh][dh][dh]: C[j][a][b] of head j accumulates v_a k_b, so that h~ = C q. */
  readonly C: Float64Array[][];
  /** [nh][dh]: the normaliser, a decayed sum of keys. */
  readonly n: Float64Array[];
  /** [nh]: the log-space stabiliser; -Infinity before the first step. */
  readonly m: Float64Array;
}

export function mlstmInitState(dims: Dims): MlstmState {
  const { dm, nh, dh, k } = dims;
  return {
    conv: Array.from({ length: Math.max(k - 1, 0) }, () => new Float64Array(dm)),
    C: Array.from({ length: nh }, () => Array.from({ length: dh }, () => new Float64Array(dh))),
    n: Array.from({ length: nh }, () => new Float64Array(dh)),
    m: new Float64Array(nh).fill(-Infinity),
  };
}

// ------------------------------------------------------------------------------------------------
// the cell, one head at a time: q, k, v [dh] per step (k already scaled), it and logf scalars

function dot(a: Float64Array, b: Float64Array): number {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc += a[i] * b[i];
  return acc;
}

/**
 * One recurrent step of one head (inputs untouched):
 *   m_t = max(logf + m, it);  i' = exp(it - m_t);  f' = exp(logf + m - m_t)
 *   C_t = f' C + i' v k^T;  n_t = f' n + i' k;  h~ = C_t q / max(|n_t . q|, exp(min(-m_t, 80)))
 * With m = -Infinity (the initial state) IEEE arithmetic gives f' = 0 and i' = 1.
 */
export function cellStepHead(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  it: number,
  logf: number,
  C: readonly Float64Array[],
  n: Float64Array,
  m: number,
): { h: Float64Array; C: Float64Array[]; n: Float64Array; m: number } {
  const dh = q.length;
  const mNew = Math.max(logf + m, it);
  const iGate = Math.exp(it - mNew);
  const fGate = Math.exp(logf + m - mNew);
  const Cnew = C.map((row, a) => {
    const out = new Float64Array(dh);
    for (let b = 0; b < dh; b++) out[b] = fGate * row[b] + iGate * v[a] * k[b];
    return out;
  });
  const nNew = new Float64Array(dh);
  for (let b = 0; b < dh; b++) nNew[b] = fGate * n[b] + iGate * k[b];
  const den = Math.max(Math.abs(dot(nNew, q)), Math.exp(Math.min(-mNew, NORM_EXP_CAP)));
  const h = new Float64Array(dh);
  for (let a = 0; a < dh; a++) h[a] = dot(Cnew[a], q) / den;
  return { h, C: Cnew, n: nNew, m: mNew };
}

/** The recurrent form over T steps of one head, from the initial state (C = 0, n = 0, m = -inf). */
export function cellRecurrentHead(
  qs: readonly Float64Array[],
  ks: readonly Float64Array[],
  vs: readonly Float64Array[],
  its: ArrayLike<number>,
  logfs: ArrayLike<number>,
): Float64Array[] {
  const dh = qs[0]?.length ?? 0;
  let C: Float64Array[] = Array.from({ length: dh }, () => new Float64Array(dh));
  let n: Float64Array = new Float64Array(dh);
  let m = -Infinity;
  return qs.map((q, t) => {
    const s = cellStepHead(q, ks[t], vs[t], its[t], logfs[t], C, n, m);
    ({ C, n, m } = s);
    return s.h;
  });
}

/**
 * The parallel form of one head. With b_t = sum_{j<=t} logf_j:
 *   log D[t, s] = b_t - b_s + it_s (s <= t);  m_t = max_s log D[t, s]  (row-wise stabiliser)
 *   S[t, s] = (q_t . k_s) exp(log D[t, s] - m_t)
 *   h~_t = sum_s S[t, s] v_s / max(|sum_s S[t, s]|, exp(min(-m_t, 80)))
 * Unrolling the recurrence gives m_t = max_s (it_s + sum_{s<j<=t} logf_j), the same row maximum, so
 * both forms agree to rounding, the normaliser's lower bound included.
 */
export function cellParallelHead(
  qs: readonly Float64Array[],
  ks: readonly Float64Array[],
  vs: readonly Float64Array[],
  its: ArrayLike<number>,
  logfs: ArrayLike<number>,
): Float64Array[] {
  const T = qs.length;
  const b = new Float64Array(T);
  for (let t = 0; t < T; t++) b[t] = (t > 0 ? b[t - 1] : 0) + logfs[t];
  const logD = new Float64Array(T);
  return qs.map((q, t) => {
    let mt = -Infinity;
    for (let s = 0; s <= t; s++) {
      logD[s] = b[t] - b[s] + its[s];
      mt = Math.max(mt, logD[s]);
    }
    const dh = q.length;
    const num = new Float64Array(dh);
    let den = 0;
    for (let s = 0; s <= t; s++) {
      const S = dot(q, ks[s]) * Math.exp(logD[s] - mt);
      for (let a = 0; a < dh; a++) num[a] += S * vs[s][a];
      den += S;
    }
    const bound = Math.max(Math.abs(den), Math.exp(Math.min(-mt, NORM_EXP_CAP)));
    return map(num, (x) => x / bound);
  });
}

// ------------------------------------------------------------------------------------------------
// the block

function weights(params: RefParams, i: number) {
  const p = (name: string) => need(params, `blocks.${i}.${name}`);
  return {
    normW: p('norm.weight'), normB: p('norm.bias'),
    upLW: p('up_l.weight'), upLB: p('up_l.bias'),
    upRW: p('up_r.weight'), upRB: p('up_r.bias'),
    convW: maybe(params, `blocks.${i}.conv.weight`), convB: maybe(params, `blocks.${i}.conv.bias`),
    qW: p('q.weight'), qB: p('q.bias'),
    kW: p('k.weight'), kB: p('k.bias'),
    vW: p('v.weight'), vB: p('v.bias'),
    iW: p('igate.weight'), iB: p('igate.bias'),
    fW: p('fgate.weight'), fB: p('fgate.bias'),
    oW: p('ogate.weight'), oB: p('ogate.bias'),
    skipW: p('skip.weight'),
    outW: p('outnorm.weight'), outB: p('outnorm.bias'),
    downW: p('down.weight'), downB: p('down.bias'),
  };
}
type Weights = ReturnType<typeof weights>;

/** Head j's view of an H-wide vector: channels [j*dh, (j+1)*dh). */
function heads(x: Float64Array, dims: Dims): Float64Array[] {
  return Array.from({ length: dims.nh }, (_, j) => x.subarray(j * dims.dh, (j + 1) * dims.dh));
}

/** Everything between the convolution and the cell for one time step. */
interface CellInputs {
  q: Float64Array[];
  k: Float64Array[];
  v: Float64Array[];
  it: Float64Array;
  logf: Float64Array;
  o: Float64Array;
}

function cellInputs(dims: Dims, w: Weights, u: Float64Array, c: Float64Array): CellInputs {
  const { H, nh, dh } = dims;
  const q = linear(c, w.qW, w.qB, H);
  const k = map(linear(c, w.kW, w.kB, H), (x) => x / Math.sqrt(dh)); // the bias is scaled too
  const v = linear(u, w.vW, w.vB, H);
  return {
    q: heads(q, dims),
    k: heads(k, dims),
    v: heads(v, dims),
    it: linear(c, w.iW, w.iB, nh),
    logf: map(linear(c, w.fW, w.fB, nh), logsigmoid),
    o: map(linear(u, w.oW, w.oB, H), sigmoid),
  };
}

/** h = o * h~;  y = GroupNorm_nh(h) + W_s c;  y = y * silu(r);  returns x + W_d y. */
function blockOutput(dims: Dims, w: Weights, x: Float64Array, hTilde: Float64Array, o: Float64Array, c: Float64Array, r: Float64Array): Float64Array {
  const { H, nh, d } = dims;
  const h = new Float64Array(H);
  for (let a = 0; a < H; a++) h[a] = o[a] * hTilde[a];
  const normed = groupNorm(h, w.outW, w.outB, nh);
  const skip = linear(c, w.skipW, null, H);
  const y = new Float64Array(H);
  for (let a = 0; a < H; a++) y[a] = (normed[a] + skip[a]) * silu(r[a]);
  const f = linear(y, w.downW, w.downB, d);
  const out = new Float64Array(d);
  for (let a = 0; a < d; a++) out[a] = x[a] + f[a];
  return out;
}

/** Block i over a whole sequence xs [T][d] from the initial state; returns x + f(LN(x)) per step. */
export function mlstmForward(dims: Dims, params: RefParams, i: number, xs: readonly Float64Array[], form: CellForm): Float64Array[] {
  const { dm, H, nh, dh, k } = dims;
  const w = weights(params, i);
  const xn = xs.map((x) => layerNorm(x, w.normW, w.normB));
  const u = xn.map((x) => linear(x, w.upLW, w.upLB, dm));
  const r = xn.map((x) => linear(x, w.upRW, w.upRB, H));
  // ker_size 0: no convolution and no silu, c = u
  const c = w.convW && w.convB ? causalConv(u, w.convW, w.convB, k).map((y) => map(y, silu)) : u;
  const inputs = u.map((ut, t) => cellInputs(dims, w, ut, c[t]));
  const hTilde = xs.map(() => new Float64Array(H));
  const cell = form === 'recurrent' ? cellRecurrentHead : cellParallelHead;
  for (let j = 0; j < nh; j++) {
    const hj = cell(
      inputs.map((p) => p.q[j]),
      inputs.map((p) => p.k[j]),
      inputs.map((p) => p.v[j]),
      inputs.map((p) => p.it[j]),
      inputs.map((p) => p.logf[j]),
    );
    hj.forEach((h, t) => hTilde[t].set(h, j * dh));
  }
  return xs.map((x, t) => blockOutput(dims, w, x, hTilde[t], inputs[t].o, c[t], r[t]));
}

/** One step of block i: x [d] -> x + f(LN(x)) and the next state (the given state is untouched). */
export function mlstmStep(dims: Dims, params: RefParams, i: number, x: Float64Array, state: MlstmState): { y: Float64Array; state: MlstmState } {
  const { dm, H, nh, dh, k } = dims;
  const w = weights(params, i);
  const xn = layerNorm(x, w.normW, w.normB);
  const u = linear(xn, w.upLW, w.upLB, dm);
  const r = linear(xn, w.upRW, w.upRB, H);
  let c = u;
  let conv: Float64Array[] = [];
  if (w.convW && w.convB) {
    const step = causalConvStep(u, state.conv, w.convW, w.convB, k);
    c = map(step.y, silu);
    conv = step.state;
  }
  const p = cellInputs(dims, w, u, c);
  const hTilde = new Float64Array(H);
  const C: Float64Array[][] = [];
  const n: Float64Array[] = [];
  const m = new Float64Array(nh);
  for (let j = 0; j < nh; j++) {
    const s = cellStepHead(p.q[j], p.k[j], p.v[j], p.it[j], p.logf[j], state.C[j], state.n[j], state.m[j]);
    hTilde.set(s.h, j * dh);
    C.push(s.C);
    n.push(s.n);
    m[j] = s.m;
  }
  return { y: blockOutput(dims, w, x, hTilde, p.o, c, r), state: { conv, C, n, m } };
}
