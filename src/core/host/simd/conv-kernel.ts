/** The causal depthwise conv step with silu in WebAssembly SIMD, four channels at a time, for B rows of width C. */
import { VMath } from './vmath.ts';
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
export function convFn({ C, taps, xStride, bias }: ConvShape): Fn {
  const f = new Fn('conv', Array(9).fill(Ty.i32), []);
  const [x, xBias, w, wBias, hist, u, out, next, B] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const r = f.local(Ty.i32);
  const o = f.local(Ty.i32);
  const xr = f.local(Ty.i32);
  const hr = f.local(Ty.i32);
  const nr = f.local(Ty.i32);
  const ur = f.local(Ty.i32);
  const cr = f.local(Ty.i32);
  const xv = f.local(Ty.v128);
  const acc = f.local(Ty.v128);
  const vm = new VMath(f);
  const C4 = 4 * C;
  const at = (base: number) => add(get(base), get(o));
  let sum: Code = vadd(vload(at(wBias)), vmul(vload(at(w), taps * C4), get(xv)));
  for (let t = 0; t < taps; t++) sum = vadd(sum, vmul(vload(at(w), t * C4), vload(at(hr), t * C4)));
  const body: Code = [
    ...set(xv, bias ? vadd(vload(at(xr)), vload(at(xBias))) : vload(at(xr))),
    ...(bias ? vstore(at(ur), get(xv)) : []),
    ...set(acc, sum),
    ...vstore(at(cr), vmul(get(acc), vm.sigmoid(get(acc)))),
  ];
  // Row r's [taps, C] block of `next` is its block of `hist` moved up one, then u.
  for (let t = 0; t + 1 < taps; t++) body.push(...vstore(at(nr), vload(at(hr), (t + 1) * C4), t * C4));
  body.push(...vstore(at(nr), get(xv), (taps - 1) * C4));
  f.body = loop(r, i32(0), get(B), 1, [
    ...set(xr, add(get(x), mul(get(r), i32(4 * xStride)))),
    ...set(hr, add(get(hist), mul(get(r), i32(taps * C4)))),
    ...set(nr, add(get(next), mul(get(r), i32(taps * C4)))),
    ...set(ur, add(get(u), mul(get(r), i32(C4)))),
    ...set(cr, add(get(out), mul(get(r), i32(C4)))),
    ...loop(o, i32(0), i32(C4), 16, body),
  ]);
  return f;
}
