/**
 * The sLSTM block in float64, line by line from DESIGN.md. It is recurrent only: the sequence
 * forward is the step applied in order, from the initial state c = n = h = 0, m = -inf.
 */
import type { Dims } from '../../../src/core/config.ts';
import { causalConv, causalConvStep, gelu, groupNorm, layerNorm, linear, logsigmoid, map, sigmoid, silu } from './ops.ts';
import { maybe, need, type RefParams } from './weights.ts';

/** A block's state, the reference's layout without the batch axis. */
export interface SlstmState {
  /** [k-1][d]: the last k-1 convolution inputs (xn), oldest first; empty when ker_size is 0. */
  readonly conv: Float64Array[];
  /** [H] each; m is the per-unit stabiliser, -Infinity before the first step. */
  readonly c: Float64Array;
  readonly n: Float64Array;
  readonly h: Float64Array;
  readonly m: Float64Array;
}

export function slstmInitState(dims: Dims): SlstmState {
  const { d, H, k } = dims;
  return {
    conv: Array.from({ length: Math.max(k - 1, 0) }, () => new Float64Array(d)),
    c: new Float64Array(H),
    n: new Float64Array(H),
    h: new Float64Array(H),
    m: new Float64Array(H).fill(-Infinity),
  };
}

/**
 * Block-diagonal recurrence: (R h)[j*dh + o] = sum_i R[j, o, i] h[j*dh + i], R [nh, dh, dh] stored as
 * [head, out, in]. Memory mixes within a head, never across heads.
 */
export function headwise(R: Float64Array, h: Float64Array, nh: number, dh: number): Float64Array {
  const y = new Float64Array(nh * dh);
  for (let j = 0; j < nh; j++) {
    for (let o = 0; o < dh; o++) {
      let acc = 0;
      for (let i = 0; i < dh; i++) acc += R[(j * dh + o) * dh + i] * h[j * dh + i];
      y[j * dh + o] = acc;
    }
  }
  return y;
}

function weights(params: RefParams, i: number) {
  const p = (name: string) => need(params, `blocks.${i}.${name}`);
  return {
    normW: p('norm.weight'), normB: p('norm.bias'),
    convW: maybe(params, `blocks.${i}.conv.weight`), convB: maybe(params, `blocks.${i}.conv.bias`),
    WiW: p('W_i.weight'), WiB: p('W_i.bias'),
    WfW: p('W_f.weight'), WfB: p('W_f.bias'),
    WzW: p('W_z.weight'), WzB: p('W_z.bias'),
    WoW: p('W_o.weight'), WoB: p('W_o.bias'),
    Ri: p('R_i.weight'), Rf: p('R_f.weight'), Rz: p('R_z.weight'), Ro: p('R_o.weight'),
    outW: p('outnorm.weight'), outB: p('outnorm.bias'),
    upW: p('up.weight'), upB: p('up.bias'),
    downW: p('down.weight'), downB: p('down.bias'),
  };
}
type Weights = ReturnType<typeof weights>;

/** W x + b + R h, the pre-activation of one gate. */
function gate(W: Float64Array, b: Float64Array, x: Float64Array, R: Float64Array, h: Float64Array, dims: Dims): Float64Array {
  const wx = linear(x, W, b, dims.H);
  const rh = headwise(R, h, dims.nh, dims.dh);
  for (let a = 0; a < dims.H; a++) wx[a] += rh[a];
  return wx;
}

type Memory = Omit<SlstmState, 'conv'>;

/**
 * The cell and the output MLP for one step, given xn = LN(x) and c (the convolved xn, or xn):
 *   i~ = W_i c + R_i h + b_i;  f~ = W_f c + R_f h + b_f;  z~ = W_z xn + R_z h + b_z;  o~ = W_o xn + R_o h + b_o
 *   m_t = max(logsigmoid(f~) + m, i~);  i' = exp(i~ - m_t);  f' = exp(logsigmoid(f~) + m - m_t)
 *   c_t = f' c + i' tanh(z~);  n_t = f' n + i';  h_t = sigmoid(o~) c_t / n_t
 *   y = GroupNorm_nh(h_t);  a, b = first and last P outputs of W_u y;  returns x + W_d (gelu(a) * b)
 */
function cellAndOutput(dims: Dims, w: Weights, x: Float64Array, xn: Float64Array, c: Float64Array, state: Memory): { y: Float64Array; memory: Memory } {
  const { d, H, nh, P } = dims;
  const iPre = gate(w.WiW, w.WiB, c, w.Ri, state.h, dims);
  const fPre = gate(w.WfW, w.WfB, c, w.Rf, state.h, dims);
  const zPre = gate(w.WzW, w.WzB, xn, w.Rz, state.h, dims);
  const oPre = gate(w.WoW, w.WoB, xn, w.Ro, state.h, dims);
  const cNew = new Float64Array(H);
  const nNew = new Float64Array(H);
  const hNew = new Float64Array(H);
  const mNew = new Float64Array(H);
  for (let a = 0; a < H; a++) {
    const logf = logsigmoid(fPre[a]);
    mNew[a] = Math.max(logf + state.m[a], iPre[a]);
    const iGate = Math.exp(iPre[a] - mNew[a]);
    const fGate = Math.exp(logf + state.m[a] - mNew[a]); // 0 on the first step (m = -inf)
    cNew[a] = fGate * state.c[a] + iGate * Math.tanh(zPre[a]);
    nNew[a] = fGate * state.n[a] + iGate; // >= 1 from the first step on: the division is safe
    hNew[a] = (sigmoid(oPre[a]) * cNew[a]) / nNew[a];
  }
  const yNorm = groupNorm(hNew, w.outW, w.outB, nh);
  const up = linear(yNorm, w.upW, w.upB, 2 * P);
  const inner = new Float64Array(P);
  for (let a = 0; a < P; a++) inner[a] = gelu(up[a]) * up[P + a];
  const f = linear(inner, w.downW, w.downB, d);
  const out = new Float64Array(d);
  for (let a = 0; a < d; a++) out[a] = x[a] + f[a];
  return { y: out, memory: { c: cNew, n: nNew, h: hNew, m: mNew } };
}

/** One step of block i: x [d] -> x + f(LN(x)) and the next state (the given state is untouched). */
export function slstmStep(dims: Dims, params: RefParams, i: number, x: Float64Array, state: SlstmState): { y: Float64Array; state: SlstmState } {
  const w = weights(params, i);
  const xn = layerNorm(x, w.normW, w.normB);
  let c = xn;
  let conv: Float64Array[] = [];
  if (w.convW && w.convB) {
    const step = causalConvStep(xn, state.conv, w.convW, w.convB, dims.k);
    c = map(step.y, silu);
    conv = step.state;
  }
  const { y, memory } = cellAndOutput(dims, w, x, xn, c, state);
  return { y, state: { conv, ...memory } };
}

/** Block i over a whole sequence xs [T][d] from the initial state. */
export function slstmForward(dims: Dims, params: RefParams, i: number, xs: readonly Float64Array[]): Float64Array[] {
  const w = weights(params, i);
  const xn = xs.map((x) => layerNorm(x, w.normW, w.normB));
  // the whole-sequence convolution (zero left padding), not the stepping one: the step test compares them
  const c = w.convW && w.convB ? causalConv(xn, w.convW, w.convB, dims.k).map((y) => map(y, silu)) : xn;
  let memory: Memory = slstmInitState(dims);
  return xs.map((x, t) => {
    const s = cellAndOutput(dims, w, x, xn[t], c[t], memory);
    memory = s.memory;
    return s.y;
  });
}
