/**
 * One pass of the prefill through a range of blocks: a chunk of positions of every row, block by block, with the
 * position-wise work over the whole chunk and the recurrences (conv window, mLSTM and sLSTM cells) one row at a
 * time through the run forms of the decode step's SIMD kernels, which take a row's positions in order with the
 * step's sums. Both prefill threads run it, each in its own memory.
 */
import type { Dims } from '../config.ts';
import { addresses, slstmMlp, type Plan, type StepKernels } from './model-step.ts';
import { pad4, type Offsets } from './step-weights.ts';

/** What every block of a pass shares: the kernels, the memory's view, the buffers, the state rows and the pass's shape. */
export interface Pass {
  readonly k: StepKernels;
  readonly F: Float32Array;
  readonly dims: Dims;
  readonly a: Record<string, number>;
  /** rows, and positions per row in this pass (row r's position t is pass row r * Tc + t) */
  readonly B: number;
  readonly Tc: number;
  /**
   * byte address that block offsets (plan.stateBase) count from in row 0 of the state, and the byte stride of a
   * row: a thread may hold only its own blocks' part of each row, placed so that these addresses still hold
   */
  readonly state: number;
  readonly row: number;
}

/** Byte addresses of a pass's buffers: M = B * Tc positions, and per row a conv window run of taps + Tc inputs. */
export function carve(base: number, B: number, Tc: number, dims: Dims): Record<string, number> {
  const { d, dm, H, nh, P, k } = dims;
  const M = B * Tc;
  const taps = Math.max(0, k - 1);
  const C = Math.max(dm, d);
  const sizes: Record<string, number> = {
    x0: M * d, x1: M * d, xn: M * d, down: M * d,
    up: M * pad4(dm + H), u: M * dm, c: M * dm, cc: M * pad4(3 * H + 2 * nh), uu: M * 2 * H, y: M * H,
    cIn: M * d, g1: M * 2 * H, g2: M * 2 * H, upm: M * pad4(2 * P), z: M * pad4(P),
    seq: B * (taps + Tc) * C, gates: Tc * 3 * nh, work: 4 * H,
  };
  return addresses(base, sizes);
}

/**
 * Blocks from .. to - 1 over the pass: reads the chunk's hidden rows at x, returns the address holding the last
 * block's output (x or xNext: the two alternate). `W` is the byte address that the plan's weight offsets count from.
 */
export function runBlocks(p: Pass, plan: Plan, W: number, from: number, to: number, x: number, xNext: number): number {
  for (let i = from; i < to; i++) {
    const offsets = plan.weights.blocks[i];
    const w = (name: string) => W + 4 * offsets[name];
    const base = 4 * plan.stateBase[i];
    if (plan.dims.kinds[i] === 'm') mlstmBlock(p, w, x, xNext, base, plan.stateSeg.m);
    else slstmBlock(p, w, x, xNext, base, plan.stateSeg.s);
    [x, xNext] = [xNext, x];
  }
  return x;
}

/**
 * The causal conv of one block over row r's positions: the row's window run in `seq` is its conv state (taps
 * inputs, oldest first) followed by a place per position, so position t's window is the run's rows t ..
 * t + taps - 1; `conv(run)` fills it; the run's last taps rows become the new conv state. Returns the run.
 */
function convRow(p: Pass, C: number, base: number, conv: number, r: number, fill: (run: number) => void): number {
  const { F, Tc, a, dims } = p;
  const taps = dims.k - 1;
  const run = a.seq + 4 * r * (taps + Tc) * C;
  const st = (p.state + r * p.row + base) / 4 + conv;
  F.copyWithin(run >> 2, st, st + taps * C);
  fill(run);
  F.copyWithin(st, (run >> 2) + Tc * C, (run >> 2) + (Tc + taps) * C);
  return run;
}

function mlstmBlock(p: Pass, w: (name: string) => number, x: number, xNext: number, base: number, seg: Offsets): void {
  const { k: { mm, m }, F, dims, a, B, Tc } = p;
  const { d, dm, H, nh, dh } = dims;
  const M = B * Tc;
  const Wc = pad4(3 * H + 2 * nh);
  const Wup = pad4(dm + H);
  const [bC, bU, bUp, outW, outB] = [w('bC'), w('bU'), w('bUp'), w('outW'), w('outB')];
  m.norm(x, w('normW'), w('normB'), a.xn, M);
  mm.mm(a.xn, d, w('wUp'), a.up, Wup, d, Wup / 4, M);
  if (dims.k > 0) {
    const [convW, convB] = [w('convW'), w('convB')];
    for (let r = 0; r < B; r++) {
      // The conv kernel writes u = up + bUp for position t into the run, where later positions' windows read it.
      convRow(p, dm, base, seg.conv, r, (run) => m.convRun(a.up + 4 * r * Tc * Wup, bUp, convW, convB, run, a.c + 4 * r * Tc * dm, Tc));
    }
  } else {
    const b = bUp >> 2;
    for (let i = 0; i < M; i++) {
      const up = (a.up >> 2) + i * Wup, u = (a.u >> 2) + i * dm;
      for (let j = 0; j < dm; j++) F[u + j] = F[up + j] + F[b + j];
    }
  }
  // v and the o gate straight from xn (step-weights.ts valueMap).
  mm.mm(a.xn, d, w('wU'), a.uu, 2 * H, d, (2 * H) / 4, M);
  mm.mm(dims.k > 0 ? a.c : a.u, dm, w('wC'), a.cc, Wc, dm, Wc / 4, M);
  const scale = 1 / Math.sqrt(dh);
  for (let r = 0; r < B; r++) {
    const row = p.state + r * p.row + base;
    const [C, n, mAt] = [row + 4 * seg.C, row + 4 * seg.n, row + 4 * seg.m];
    m.cellRun(
      a.cc + 4 * r * Tc * Wc, a.uu + 8 * r * Tc * H, a.up + 4 * r * Tc * Wup, bC, bU, bUp, outW, outB,
      C, n, mAt, C, n, mAt, a.y + 4 * r * Tc * H, a.gates, Tc, scale,
    );
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
    const [convW, convB] = [w('convW'), w('convB')];
    for (let r = 0; r < B; r++) {
      convRow(p, d, base, seg.conv, r, (run) => {
        const xn = (a.xn >> 2) + r * Tc * d;
        F.copyWithin((run >> 2) + taps * d, xn, xn + Tc * d);
        s.convRun(run + 4 * taps * d, 0, convW, convB, run, a.cIn + 4 * r * Tc * d, Tc);
      });
    }
  }
  mm.mm(dims.k > 0 ? a.cIn : a.xn, d, w('wC'), a.g1, 2 * H, d, (2 * H) / 4, M);
  mm.mm(a.xn, d, w('wX'), a.g2, 2 * H, d, (2 * H) / 4, M);
  const [bG, Rt, outW, outB] = [w('bG'), w('Rt'), w('outW'), w('outB')];
  for (let r = 0; r < B; r++) {
    const row = p.state + r * p.row + base;
    const [c, n, h, m] = [row + 4 * seg.c, row + 4 * seg.n, row + 4 * seg.h, row + 4 * seg.m];
    s.cellRun(a.g1 + 8 * r * Tc * H, a.g2 + 8 * r * Tc * H, bG, Rt, c, n, h, m, c, n, h, m, outW, outB, a.y + 4 * r * Tc * H, a.work, Tc);
  }
  slstmMlp(p.k, F, dims, a, w, x, xNext, M);
}
