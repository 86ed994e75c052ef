/**
 * A prompt's tokens through the whole model as ONE tfjs kernel on the wasm backend, layer by layer: per block,
 * the position-wise work (LayerNorms, projections, MLPs, residual sums) runs over all positions of all rows at
 * once, and only the recurrences (the causal conv window, the mLSTM and sLSTM cells) loop over time, calling the
 * decode step's own SIMD kernels (model-step.ts) one position at a time with the state updated in place.
 * Every kernel treats rows independently in the step's order of operations, so the logits and state equal those
 * of stepping the same tokens one by one, bit for bit, and a row's result does not depend on the batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { XlstmError } from '../../util/errors.ts';
import type { Dims } from '../config.ts';
import type { HostIO } from './io.ts';
import { addresses, gateRow, kernelsFor, planFor, planKey, registerPlanKernel, scratchAddr, slstmMlp, type Plan, type StepKernels } from './model-step.ts';
import { pad4, type Offsets } from './step-weights.ts';

const KERNEL = 'XlstmModelPrefill';

/**
 * Positions (over all rows) that one pass through the blocks covers: enough to keep the matMuls' weights hot,
 * few enough that the activations of a pass stay in cache-friendly megabytes whatever the prompt's length.
 */
const CHUNK_POSITIONS = 128;

/**
 * A prompt: tokens [B, T] int32, embedding [V, d], the step's weight buffer (hostStepWeights), state [B, S] ->
 * the final-normed hidden rows of the last position x [B, d] and the state after the prompt [B, S].
 */
export function hostModelPrefill(
  dims: Dims, tokens: tf.Tensor2D, embedding: tf.Tensor2D, weights: number, state: tf.Tensor2D,
): { x: tf.Tensor2D; state: tf.Tensor2D } {
  const S = planFor(dims).stateSize;
  const [B, T] = tokens.shape;
  if (state.shape[1] !== S || state.shape[0] !== B) {
    throw new XlstmError('INVALID_INPUT', `the packed prefill state expected shape [${B}, ${S}], but got [${state.shape}]. Hint: pass the state this model's initState, prefill or step returned.`);
  }
  if (T < 1) throw new XlstmError('INVALID_INPUT', `a prompt expected at least 1 token, but got ${T}. Hint: drop empty prompts before prefill.`);
  const [x, next] = tf.engine().runKernel(KERNEL, { tokens, embedding, state }, { plan: planKey(dims), weights }) as tf.Tensor[];
  return { x: x as tf.Tensor2D, state: next as tf.Tensor2D };
}

/** Positions per row in one pass for B rows of T tokens. */
export function chunkLength(B: number, T: number): number {
  return Math.max(1, Math.min(T, Math.floor(CHUNK_POSITIONS / B)));
}

/** Byte addresses of a pass's buffers: M = B * Tc positions, and per row a conv window run of taps + Tc inputs. */
function carve(base: number, B: number, Tc: number, dims: Dims): Record<string, number> {
  const { d, dm, H, nh, P, k } = dims;
  const M = B * Tc;
  const taps = Math.max(0, k - 1);
  const C = Math.max(dm, d);
  const sizes: Record<string, number> = {
    x0: M * d, x1: M * d, xn: M * d, down: M * d,
    up: M * pad4(dm + H), u: M * dm, c: M * dm, cc: M * pad4(3 * H + 2 * nh), uu: M * 2 * H, y: M * H,
    cIn: M * d, g1: M * 2 * H, g2: M * 2 * H, upm: M * pad4(2 * P), z: M * pad4(P),
    seq: B * (taps + Tc) * C, next: taps * C, gates: 3 * nh, work: 4 * H,
  };
  return addresses(base, sizes);
}

registerPlanKernel(KERNEL, 'the whole-model prefill', 'hostModelPrefill', prefillKernel);

/** What every block of a pass shares: the kernels, the heap view, the buffers, the state rows and the pass's shape. */
interface Pass {
  readonly k: StepKernels;
  readonly F: Float32Array;
  readonly dims: Dims;
  readonly a: Record<string, number>;
  /** rows, and positions per row in this pass (row r's position t is pass row r * Tc + t) */
  readonly B: number;
  readonly Tc: number;
  /** byte address of the (new) state's first row, and a row's byte length */
  readonly state: number;
  readonly row: number;
}

function prefillKernel(io: HostIO, plan: Plan, inp: Record<string, tf.TensorInfo>, W: number): tf.TensorInfo[] {
  const heap = io.heap as WebAssembly.Memory;
  const { dims } = plan;
  const { d, V } = dims;
  const [B, T] = inp.tokens.shape;
  const S = plan.stateSize;
  const tokens = new Int32Array(heap.buffer, io.addr(inp.tokens), B * T).slice();
  for (const t of tokens) {
    if (!(t >= 0 && t < V)) throw new XlstmError('INVALID_INPUT', `token ids expected integers in [0, ${V}), but got ${t}. Hint: encode with this model's tokenizer.`);
  }
  const Tc0 = chunkLength(B, T);
  // Every allocation comes first: growing the heap would detach the views below.
  const xOut = io.alloc([B, d]);
  const sOut = io.alloc([B, S]);
  const a = carve(scratchAddr(io, carve(0, B, Tc0, dims).end / 4), B, Tc0, dims);
  const k = kernelsFor(heap, dims) as StepKernels;
  const F = new Float32Array(heap.buffer);
  const stateAt = io.addr(sOut);
  // The cells update the state in place (each reads a value before it writes it), so the new state starts as the old.
  F.copyWithin(stateAt >> 2, io.addr(inp.state) >> 2, (io.addr(inp.state) >> 2) + B * S);
  const emb = io.addr(inp.embedding) >> 2;
  for (let t0 = 0; t0 < T; t0 += Tc0) {
    const Tc = Math.min(Tc0, T - t0);
    const pass: Pass = { k, F, dims, a, B, Tc, state: stateAt, row: 4 * S };
    for (let r = 0; r < B; r++) {
      for (let t = 0; t < Tc; t++) {
        const id = tokens[r * T + t0 + t];
        F.copyWithin((a.x0 >> 2) + (r * Tc + t) * d, emb + id * d, emb + (id + 1) * d);
      }
    }
    let x = a.x0;
    let xNext = a.x1;
    dims.kinds.forEach((kind, i) => {
      const w = (name: string) => W + 4 * plan.weights.blocks[i][name];
      const base = 4 * plan.stateBase[i];
      if (kind === 'm') mlstmBlock(pass, w, x, xNext, base, plan.stateSeg.m);
      else slstmBlock(pass, w, x, xNext, base, plan.stateSeg.s);
      [x, xNext] = [xNext, x];
    });
    if (t0 + Tc === T) {
      const { normW, normB } = plan.weights.final;
      for (let r = 0; r < B; r++) k.m.norm(x + 4 * (r * Tc + Tc - 1) * d, W + 4 * normW, W + 4 * normB, io.addr(xOut) + 4 * r * d, 1);
    }
  }
  return [xOut, sOut];
}

/**
 * The causal conv of one block over the pass, row by row and position by position with the step's conv kernel:
 * row r's window run in `seq` is its conv state (taps inputs, oldest first) followed by this pass's inputs, so
 * position t's window is the run's rows t .. t + taps - 1. `step(r, t, hist, run)` calls the kernel; the run's
 * last taps rows become the new conv state.
 */
function convOverTime(p: Pass, C: number, base: number, conv: number, step: (r: number, t: number, hist: number, run: number) => void): void {
  const { F, B, Tc, a, dims } = p;
  const taps = dims.k - 1;
  for (let r = 0; r < B; r++) {
    const run = a.seq + 4 * r * (taps + Tc) * C;
    const st = (p.state + r * p.row + base) / 4 + conv;
    F.copyWithin(run >> 2, st, st + taps * C);
    for (let t = 0; t < Tc; t++) step(r, t, run + 4 * t * C, run);
    F.copyWithin(st, (run >> 2) + Tc * C, (run >> 2) + (Tc + taps) * C);
  }
}

function mlstmBlock(p: Pass, w: (name: string) => number, x: number, xNext: number, base: number, seg: Offsets): void {
  const { k: { mm, m }, F, dims, a, B, Tc } = p;
  const { d, dm, H, nh, dh } = dims;
  const M = B * Tc;
  const taps = dims.k - 1;
  const Wc = pad4(3 * H + 2 * nh);
  const Wup = pad4(dm + H);
  m.norm(x, w('normW'), w('normB'), a.xn, M);
  mm.mm(a.xn, d, w('wUp'), a.up, Wup, d, Wup / 4, M);
  if (dims.k > 0) {
    // The conv kernel writes u = up + bUp for position t into the run, where later positions' windows read it.
    convOverTime(p, dm, base, seg.conv, (r, t, hist, run) => {
      const i = r * Tc + t;
      m.conv(a.up + 4 * i * Wup, w('bUp'), w('convW'), w('convB'), hist, run + 4 * (t + taps) * dm, a.c + 4 * i * dm, a.next, 1);
    });
    for (let r = 0; r < B; r++) {
      const run = a.seq + 4 * r * (taps + Tc) * dm;
      mm.mm(run + 4 * taps * dm, dm, w('wU'), a.uu + 8 * r * Tc * H, 2 * H, dm, (2 * H) / 4, Tc);
    }
  } else {
    const bUp = w('bUp') >> 2;
    for (let i = 0; i < M; i++) {
      const up = (a.up >> 2) + i * Wup, u = (a.u >> 2) + i * dm;
      for (let j = 0; j < dm; j++) F[u + j] = F[up + j] + F[bUp + j];
    }
    mm.mm(a.u, dm, w('wU'), a.uu, 2 * H, dm, (2 * H) / 4, M);
  }
  mm.mm(dims.k > 0 ? a.c : a.u, dm, w('wC'), a.cc, Wc, dm, Wc / 4, M);
  const scale = 1 / Math.sqrt(dh);
  for (let r = 0; r < B; r++) {
    const row = p.state + r * p.row + base;
    for (let t = 0; t < Tc; t++) {
      const i = r * Tc + t;
      gateRow(F, (a.cc >> 2) + i * Wc, w('bC') >> 2, (row >> 2) + seg.m, (row >> 2) + seg.m, a.gates >> 2, nh, H);
      m.cell(
        a.cc + 4 * i * Wc, a.uu + 8 * i * H, a.up + 4 * i * Wup, w('bC'), w('bU'), w('bUp'), w('outW'), w('outB'),
        row + 4 * seg.C, row + 4 * seg.n, a.gates, row + 4 * seg.C, row + 4 * seg.n, a.y + 4 * i * H, a.work, 1, scale,
      );
    }
  }
  mm.mm(a.y, H, w('wDown'), a.down, d, H, d / 4, M);
  m.residual(x, a.down, w('bDown'), xNext, M);
}

function slstmBlock(p: Pass, w: (name: string) => number, x: number, xNext: number, base: number, seg: Offsets): void {
  const { k: { mm, s }, F, dims, a, B, Tc } = p;
  const { d, H } = dims;
  const M = B * Tc;
  const taps = dims.k - 1;
  s.norm(x, w('normW'), w('normB'), a.xn, M);
  if (dims.k > 0) {
    convOverTime(p, d, base, seg.conv, (r, t, hist, run) => {
      const i = r * Tc + t;
      const at = run + 4 * (t + taps) * d;
      F.copyWithin(at >> 2, (a.xn >> 2) + i * d, (a.xn >> 2) + (i + 1) * d);
      s.conv(at, 0, w('convW'), w('convB'), hist, 0, a.cIn + 4 * i * d, a.next, 1);
    });
  }
  mm.mm(dims.k > 0 ? a.cIn : a.xn, d, w('wC'), a.g1, 2 * H, d, (2 * H) / 4, M);
  mm.mm(a.xn, d, w('wX'), a.g2, 2 * H, d, (2 * H) / 4, M);
  for (let r = 0; r < B; r++) {
    const row = p.state + r * p.row + base;
    const [c, n, h, m] = [row + 4 * seg.c, row + 4 * seg.n, row + 4 * seg.h, row + 4 * seg.m];
    for (let t = 0; t < Tc; t++) {
      const i = r * Tc + t;
      s.cell(a.g1 + 8 * i * H, a.g2 + 8 * i * H, w('bG'), w('Rt'), c, n, h, m, c, n, h, m, w('outW'), w('outB'), a.y + 4 * i * H, a.work, 1);
    }
  }
  slstmMlp(p.k, F, dims, a, w, x, xNext, M);
}
