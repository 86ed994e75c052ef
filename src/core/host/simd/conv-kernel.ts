/** The causal depthwise conv step with silu in WebAssembly SIMD, four channels at a time, for B rows of width C. */
import { interleave, VMath } from './vmath.ts';
import { iand } from './wasm-more.ts';
import { add, Fn, get, i32, loop, mul, set, Ty, vadd, vload, vmul, vstore, type Code } from './wasm.ts';

export interface ConvShape {
  /** channels (a multiple of 4) */
  readonly C: number;
  /** k - 1 >= 1: the inputs the window keeps */
  readonly taps: number;
  /** floats from one row of the input to the next (the input may be the first C columns of a wider matrix) */
  readonly xStride: number;
  /** whether the input takes a bias first (and the biased input is written out, as u) */
  readonly bias: boolean;
}

/**
 * conv(x, xBias, w, wBias, hist, u, out, next, B): with u = x + xBias when `bias` (else x itself), out = silu(wBias
 * + w[taps] u + sum_t w[t] hist[t]) over the window hist [B, taps, C] (oldest first) and u; w is [taps + 1, C];
 * next = the window shifted by one (oldest out, u in last). Same sums, in float32, as math.ts convStepRows.
 */
export function convFn(shape: ConvShape): Fn {
  const f = new Fn('conv', Array(9).fill(Ty.i32), []);
  const [x, xBias, w, wBias, hist, u, out, next, B] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const { C, taps, xStride } = shape;
  const C4 = 4 * C;
  const p = convPointers(f);
  // Row r's [taps, C] block of `next` is its block of `hist` moved up one, then u.
  const body = (U: number): Code => {
    const { code, xv } = convBody(f, shape, p, w, xBias, wBias, U);
    for (let i = 0; i < U; i++) {
      const o = 16 * i;
      for (let t = 0; t + 1 < taps; t++) code.push(...vstore(add(get(p.nr), get(p.o)), vload(add(get(p.hr), get(p.o)), (t + 1) * C4 + o), t * C4 + o));
      code.push(...vstore(add(get(p.nr), get(p.o)), get(xv[i]), (taps - 1) * C4 + o));
    }
    return code;
  };
  f.body = loop(p.r, i32(0), get(B), 1, [
    ...set(p.xr, add(get(x), mul(get(p.r), i32(4 * xStride)))),
    ...set(p.hr, add(get(hist), mul(get(p.r), i32(taps * C4)))),
    ...set(p.nr, add(get(next), mul(get(p.r), i32(taps * C4)))),
    ...set(p.ur, add(get(u), mul(get(p.r), i32(C4)))),
    ...set(p.cr, add(get(out), mul(get(p.r), i32(C4)))),
    ...channels(p, C, body),
  ]);
  return f;
}

/**
 * convRun(x, xBias, w, wBias, seq, out, T): the conv over T positions of one row, with conv's sums: seq [taps + T,
 * C] holds the window (oldest first) then a place per position, where position t's u is written. Without `bias`
 * the inputs are already there: x = seq's row taps, and the shape's xStride is C. No window is shifted out: the
 * caller keeps seq's last taps rows.
 *
 * One vector of channels at a time over all positions, RUN positions a pass: the channel's weights and its window
 * stay in locals, each input is loaded once, and the sigmoids of RUN positions (whose sums do not depend on one
 * another's outputs) interleave. Position by position, every position reloaded its taps' weights and inputs.
 */
export function convRunFn(shape: ConvShape): Fn {
  const f = new Fn('convRun', Array(7).fill(Ty.i32), []);
  const [x, xBias, w, wBias, seq, out, T] = [0, 1, 2, 3, 4, 5, 6];
  const { C, taps, xStride, bias } = shape;
  const C4 = 4 * C;
  const [o, t, xp, up, op] = Array.from({ length: 5 }, () => f.local(Ty.i32));
  const wv = Array.from({ length: taps + 1 }, () => f.local(Ty.v128));
  const [wb, xb] = [f.local(Ty.v128), f.local(Ty.v128)];
  const win = Array.from({ length: taps }, () => f.local(Ty.v128));
  const xv = Array.from({ length: RUN }, () => f.local(Ty.v128));
  const acc = Array.from({ length: RUN }, () => f.local(Ty.v128));
  const sig = Array.from({ length: RUN }, () => f.local(Ty.v128));
  const vm = Array.from({ length: RUN }, () => new VMath(f));
  // U positions from up: window input s(k) is win[k] for k < taps, else this pass's input k - taps.
  const positions = (U: number): Code => {
    const s = (k: number) => (k < taps ? win[k] : xv[k - taps]);
    const code: Code = [];
    for (let i = 0; i < U; i++) {
      const input = vload(get(xp), i * 4 * xStride);
      code.push(...set(xv[i], bias ? vadd(input, get(xb)) : input), ...(bias ? vstore(get(up), get(xv[i]), i * C4) : []));
    }
    for (let i = 0; i < U; i++) {
      let sum: Code = vadd(get(wb), vmul(get(wv[taps]), get(xv[i])));
      for (let j = 0; j < taps; j++) sum = vadd(sum, vmul(get(wv[j]), get(s(i + j))));
      code.push(...set(acc[i], sum));
    }
    code.push(...interleave(acc.slice(0, U).map((a, i) => vm[i].sigmoidSteps(get(a), sig[i]))));
    for (let i = 0; i < U; i++) code.push(...vstore(get(op), vmul(get(acc[i]), get(sig[i])), i * C4));
    // In increasing j, s(U + j) is read before anything overwrites it.
    for (let j = 0; j < taps; j++) code.push(...set(win[j], get(s(U + j))));
    code.push(...set(xp, add(get(xp), i32(U * 4 * xStride))), ...set(up, add(get(up), i32(U * C4))), ...set(op, add(get(op), i32(U * C4))));
    return code;
  };
  const at = (base: number) => add(get(base), get(o));
  f.body = loop(o, i32(0), i32(C4), 16, [
    ...wv.flatMap((v, j) => set(v, vload(at(w), j * C4))),
    ...set(wb, vload(at(wBias))),
    ...(bias ? set(xb, vload(at(xBias))) : []),
    ...win.flatMap((v, j) => set(v, vload(at(seq), j * C4))),
    ...set(xp, at(x)),
    ...set(up, add(at(seq), i32(taps * C4))),
    ...set(op, at(out)),
    ...loop(t, i32(0), iand(get(T), i32(-RUN)), RUN, positions(RUN)),
    ...loop(t, iand(get(T), i32(-RUN)), get(T), 1, positions(1)),
  ]);
  return f;
}

/** Positions per pass of convRun: a power of two. */
const RUN = 8;

/** Vectors of channels per pass of the channel loop: the silu chains of this many vectors interleave. */
const UNROLL = 4;

/** The channel loop over o (bytes): UNROLL vectors a pass, then one at a time for the rest. */
function channels(p: ReturnType<typeof convPointers>, C: number, body: (U: number) => Code): Code {
  const whole = Math.floor(C / (4 * UNROLL)) * 16 * UNROLL;
  return [...loop(p.o, i32(0), i32(whole), 16 * UNROLL, body(UNROLL)), ...loop(p.o, i32(whole), i32(4 * C), 16, body(1))];
}

function convPointers(f: Fn) {
  return { r: f.local(Ty.i32), o: f.local(Ty.i32), xr: f.local(Ty.i32), hr: f.local(Ty.i32), nr: f.local(Ty.i32), ur: f.local(Ty.i32), cr: f.local(Ty.i32) };
}

/** U vectors of channels from o at one position: u (stored when biased) and out from the window at hr; xv holds u. */
function convBody(f: Fn, { C, taps, bias }: ConvShape, p: ReturnType<typeof convPointers>, w: number, xBias: number, wBias: number, U: number): { code: Code; xv: number[] } {
  const C4 = 4 * C;
  const at = (base: number) => add(get(base), get(p.o));
  const xv = Array.from({ length: U }, () => f.local(Ty.v128));
  const acc = Array.from({ length: U }, () => f.local(Ty.v128));
  const sig = Array.from({ length: U }, () => f.local(Ty.v128));
  const code: Code = [];
  for (let i = 0; i < U; i++) {
    const o = 16 * i;
    let sum: Code = vadd(vload(at(wBias), o), vmul(vload(at(w), taps * C4 + o), get(xv[i])));
    for (let t = 0; t < taps; t++) sum = vadd(sum, vmul(vload(at(w), t * C4 + o), vload(at(p.hr), t * C4 + o)));
    code.push(
      ...set(xv[i], bias ? vadd(vload(at(p.xr), o), vload(at(xBias), o)) : vload(at(p.xr), o)),
      ...(bias ? vstore(at(p.ur), get(xv[i]), o) : []),
      ...set(acc[i], sum),
    );
  }
  code.push(...interleave(acc.map((a, i) => new VMath(f).sigmoidSteps(get(a), sig[i]))));
  for (let i = 0; i < U; i++) code.push(...vstore(at(p.cr), vmul(get(acc[i]), get(sig[i])), 16 * i));
  return { code, xv };
}
