/**
 * The row-wise passes of the mLSTM training kernels (block-passes.ts) in WebAssembly SIMD over the wasm heap,
 * four float32 channels a vector, generated for one model's widths. Same equations as the JavaScript passes,
 * in float32 (the precision PyTorch trains in), except the weight and bias gradients: each is a sum over all
 * B*T rows, so its terms (float32 products) are added in float64 pairs (f64x2) into an accumulator in the heap
 * that the kernel zeroes first and rounds into the float32 gradient last. A float32 running sum over N = 1024+
 * rows may err by N 2^-24 of the terms' absolute sum, which is most of a gradient whose terms cancel; the f64
 * adds cost a few instructions per vector (the passes are memory-bound) and keep the JavaScript passes'
 * accuracy. Every pass covers rows n = b*T + t.
 */
import { residualFn } from '../host/simd/row-ops.ts';
import { highPair, joinPairs } from '../host/simd/wasm-more.ts';
import { VMath } from '../host/simd/vmath.ts';
import {
  add, bin, f32, f64x2Add, f64x2Promote, fadd, fdiv, fload, fsqrt, Fn, fstore, geS, get, i32, loop, mul, set,
  splat, sub, Ty, vadd, vconst, vload, vmul, vstore, vsub, when, type Code,
} from '../host/simd/wasm.ts';

const remU = bin(0x70);

export interface TrainPassWidths {
  readonly d: number;
  readonly nh: number;
  readonly dh: number;
  readonly dm: number;
  /** conv taps; 0 for no conv */
  readonly k: number;
}

/**
 * The kernels' functions for `w`, each exported under the name of the pass it stands for, with the pass's
 * tensors as byte addresses in its argument order, then the row count N (or B, T for the conv).
 */
export function trainPassFns(w: TrainPassWidths): Fn[] {
  const conv = w.k > 0 ? [convForwardFn(w), convBackwardFn(w)] : [];
  const H = w.nh * w.dh;
  return [
    normForwardFn(w.d), normOutputFn(w.d), normBackwardFn(w.d), splitUpFn(w), ...conv, splitProjectionsFn(w), gatingForwardFn(w),
    gatingOutputFn(H), gatingBackwardFn(w), residualFn(w.d),
  ];
}

/** A kernel's parameters (all i32 addresses or counts), their local indices by name. */
export function params<K extends string>(name: string, ...names: K[]): { f: Fn; p: Record<K, number> } {
  const f = new Fn(name, names.map(() => Ty.i32), []);
  return { f, p: Object.fromEntries(names.map((k, i) => [k, i])) as Record<K, number> };
}

/** base + row * (4 width): the byte address of a row of floats `width` wide. */
export const rowAt = (base: number, row: Code, width: number): Code => add(get(base), mul(row, i32(4 * width)));

/**
 * Adds the f32x4 in local v into the float64 accumulator of its four channels at acc + 2 o (o: the vector's byte
 * offset in a float32 row).
 */
export function accumulate(acc: number, o: number, v: number): Code {
  const at = (): Code => add(get(acc), add(get(o), get(o)));
  return [...vstore(at(), f64x2Add(vload(at()), f64x2Promote(get(v)))), ...vstore(at(), f64x2Add(vload(at(), 16), f64x2Promote(highPair(get(v)))), 16)];
}

/** out[o] = the accumulator of channels o..o+3 at acc rounded to float32, for `width` channels. */
export function roundOut(f: Fn, acc: number, out: number, width: number): Code {
  const o = f.local(Ty.i32);
  const at = (): Code => add(get(acc), add(get(o), get(o)));
  return loop(o, i32(0), i32(4 * width), 16, vstore(add(get(out), get(o)), joinPairs(vload(at()), vload(at(), 16))));
}

/** Zeroes `floats64` float64s at acc (a multiple of 2). */
export function zero(f: Fn, acc: number, floats64: number): Code {
  const o = f.local(Ty.i32);
  return loop(o, i32(0), i32(8 * floats64), 16, vstore(add(get(acc), get(o)), vconst(0)));
}

/** layerNormForward(x, w, b, xhat, rstd, xn, N), rows of d channels. */
function normForwardFn(d: number): Fn {
  const { f, p } = params('layerNormForward', 'x', 'w', 'b', 'xhat', 'rstd', 'xn', 'N');
  const L = { n: f.local(Ty.i32), o: f.local(Ty.i32), xr: f.local(Ty.i32), acc: f.local(Ty.v128), mean: f.local(Ty.v128), t: f.local(Ty.v128), r: f.local(Ty.f32) };
  const vm = new VMath(f);
  const xo = (): Code => add(get(L.xr), get(L.o));
  const rowO = (base: number): Code => add(rowAt(base, get(L.n), d), get(L.o));
  f.body = loop(L.n, i32(0), get(p.N), 1, [
    ...set(L.xr, rowAt(p.x, get(L.n), d)),
    ...set(L.acc, vconst(0)),
    ...loop(L.o, i32(0), i32(4 * d), 16, set(L.acc, vadd(get(L.acc), vload(xo())))),
    ...set(L.mean, splat(fdiv(vm.hsum(get(L.acc)), f32(d)))),
    ...set(L.acc, vconst(0)),
    ...loop(L.o, i32(0), i32(4 * d), 16, [...set(L.t, vsub(vload(xo()), get(L.mean))), ...set(L.acc, vadd(get(L.acc), vmul(get(L.t), get(L.t))))]),
    ...set(L.r, fdiv(f32(1), fsqrt(fadd(fdiv(vm.hsum(get(L.acc)), f32(d)), f32(1e-5))))),
    ...fstore(rowAt(p.rstd, get(L.n), 1), get(L.r)),
    ...loop(L.o, i32(0), i32(4 * d), 16, [
      ...set(L.t, vmul(vsub(vload(xo()), get(L.mean)), splat(get(L.r)))),
      ...vstore(rowO(p.xhat), get(L.t)),
      ...vstore(rowO(p.xn), vadd(vmul(get(L.t), vload(add(get(p.w), get(L.o)))), vload(add(get(p.b), get(L.o))))),
    ]),
  ]);
  return f;
}

/** layerNormOutput(xhat, w, b, xn, N). */
function normOutputFn(d: number): Fn {
  const { f, p } = params('layerNormOutput', 'xhat', 'w', 'b', 'xn', 'N');
  const L = { n: f.local(Ty.i32), o: f.local(Ty.i32) };
  const rowO = (base: number): Code => add(rowAt(base, get(L.n), d), get(L.o));
  const ch = (base: number): Code => vload(add(get(base), get(L.o)));
  f.body = loop(L.n, i32(0), get(p.N), 1, loop(L.o, i32(0), i32(4 * d), 16, vstore(rowO(p.xn), vadd(vmul(vload(rowO(p.xhat)), ch(p.w)), ch(p.b)))));
  return f;
}

/** layerNormBackward(dxn, xhat, rstd, w, dres, dx, dW, dB, acc, N); acc holds 2d float64s. */
function normBackwardFn(d: number): Fn {
  const { f, p } = params('layerNormBackward', 'dxn', 'xhat', 'rstd', 'w', 'dres', 'dx', 'dW', 'dB', 'acc', 'N');
  const L = {
    n: f.local(Ty.i32), o: f.local(Ty.i32), g: f.local(Ty.v128), xh: f.local(Ty.v128), t: f.local(Ty.v128),
    m1: f.local(Ty.v128), m2: f.local(Ty.v128), accB: f.local(Ty.i32),
  };
  const vm = new VMath(f);
  const rowO = (base: number): Code => add(rowAt(base, get(L.n), d), get(L.o));
  const wo = (): Code => vload(add(get(p.w), get(L.o)));
  f.body = [
    ...zero(f, p.acc, 2 * d),
    ...set(L.accB, add(get(p.acc), i32(8 * d))),
    ...loop(L.n, i32(0), get(p.N), 1, [
      ...set(L.m1, vconst(0)),
      ...set(L.m2, vconst(0)),
      ...loop(L.o, i32(0), i32(4 * d), 16, [
        ...set(L.g, vload(rowO(p.dxn))),
        ...set(L.xh, vload(rowO(p.xhat))),
        ...accumulate(L.accB, L.o, L.g),
        ...set(L.t, vmul(get(L.g), get(L.xh))),
        ...accumulate(p.acc, L.o, L.t),
        ...set(L.t, vmul(get(L.g), wo())),
        ...set(L.m1, vadd(get(L.m1), get(L.t))),
        ...set(L.m2, vadd(get(L.m2), vmul(get(L.t), get(L.xh)))),
      ]),
      ...set(L.m1, splat(fdiv(vm.hsum(get(L.m1)), f32(d)))),
      ...set(L.m2, splat(fdiv(vm.hsum(get(L.m2)), f32(d)))),
      ...set(L.t, splat(fload(rowAt(p.rstd, get(L.n), 1)))),
      ...loop(L.o, i32(0), i32(4 * d), 16, [
        ...set(L.xh, vload(rowO(p.xhat))),
        ...vstore(
          rowO(p.dx),
          vadd(vload(rowO(p.dres)), vmul(get(L.t), vsub(vsub(vmul(vload(rowO(p.dxn)), wo()), get(L.m1)), vmul(get(L.xh), get(L.m2))))),
        ),
      ]),
    ]),
    ...roundOut(f, p.acc, p.dW, d),
    ...roundOut(f, L.accB, p.dB, d),
  ];
  return f;
}

/** splitUp(up, bUp, u, sir, sr, N), up [N, dm + H]. */
function splitUpFn({ nh, dh, dm }: TrainPassWidths): Fn {
  const H = nh * dh;
  const { f, p } = params('splitUp', 'up', 'bUp', 'u', 'sir', 'sr', 'N');
  const L = { n: f.local(Ty.i32), o: f.local(Ty.i32), r: f.local(Ty.v128), s: f.local(Ty.v128) };
  const vm = new VMath(f);
  const upO = (offset: number): Code => vload(add(rowAt(p.up, get(L.n), dm + H), get(L.o)), offset);
  const rowO = (base: number, width: number): Code => add(rowAt(base, get(L.n), width), get(L.o));
  f.body = loop(L.n, i32(0), get(p.N), 1, [
    ...loop(L.o, i32(0), i32(4 * dm), 16, vstore(rowO(p.u, dm), vadd(upO(0), vload(add(get(p.bUp), get(L.o)))))),
    ...loop(L.o, i32(0), i32(4 * H), 16, [
      ...set(L.r, vadd(upO(4 * dm), vload(add(get(p.bUp), get(L.o)), 4 * dm))),
      ...set(L.s, vm.sigmoid(get(L.r))),
      ...vstore(rowO(p.sr, H), get(L.s)),
      ...vstore(rowO(p.sir, H), vmul(get(L.r), get(L.s))),
    ]),
  ]);
  return f;
}

/**
 * The conv's rows of one sequence of T: `head(t, m)` for each t < k - 1 (and < T), whose taps i < m = k-1-t fall
 * before the start, then `main` for t = k-1 .. T-1 (all taps); row index n = b T + t in local n.
 */
function perSequence(f: Fn, T: number, B: number, k: number, n: number, head: (t: number, m: number) => Code, main: Code): Code {
  const b = f.local(Ty.i32);
  const t = f.local(Ty.i32);
  const heads: Code = [];
  for (let h = 0; h < k - 1; h++) heads.push(...when(geS(get(T), i32(h + 1)), [...set(n, add(mul(get(b), get(T)), i32(h))), ...head(h, k - 1 - h)]));
  return loop(b, i32(0), get(B), 1, [...heads, ...loop(t, i32(k - 1), get(T), 1, [...set(n, add(mul(get(b), get(T)), get(t))), ...main])]);
}

/**
 * causalConvSilu(u, w, bias, c, sa, B, T). For an output row n, local src points at input row
 * n - (k-1) + m, the first whose tap (m) is in the sequence.
 */
function convForwardFn({ dm, k }: TrainPassWidths): Fn {
  const { f, p } = params('causalConvSilu', 'u', 'w', 'bias', 'c', 'sa', 'B', 'T');
  const L = { n: f.local(Ty.i32), o: f.local(Ty.i32), src: f.local(Ty.i32), a: f.local(Ty.v128), s: f.local(Ty.v128) };
  const vm = new VMath(f);
  const C4 = 4 * dm;
  const at = (base: number): Code => add(get(base), get(L.o));
  const rowO = (base: number): Code => add(rowAt(base, get(L.n), dm), get(L.o));
  const row = (m: number): Code => {
    let sum = vload(at(p.bias));
    for (let i = m; i < k; i++) sum = vadd(sum, vmul(vload(at(p.w), i * C4), vload(at(L.src), (i - m) * C4)));
    return loop(L.o, i32(0), i32(C4), 16, [
      ...set(L.a, sum),
      ...set(L.s, vm.sigmoid(get(L.a))),
      ...vstore(rowO(p.sa), get(L.s)),
      ...vstore(rowO(p.c), vmul(get(L.a), get(L.s))),
    ]);
  };
  const srcAt = (back: number): Code => set(L.src, rowAt(p.u, sub(get(L.n), i32(back)), dm));
  f.body = perSequence(f, p.T, p.B, k, L.n, (t, m) => [...srcAt(t), ...row(m)], [...srcAt(k - 1), ...row(0)]);
  return f;
}

/**
 * causalConvBackward(dc, c, sa, u, w, du, dup, dW, dB, acc, B, T), with du [N, dm] plus the conv's share
 * written into dup's first dm columns ([N, dm + H]); acc holds (k + 1) dm float64s (dW's taps, then dB).
 * First da = dc silu'(a) over all rows (in place); then per input row s, du_s + sum_i w[i] da_{s+(k-1)-i} over
 * the taps whose output row is in the sequence (gathered, so that each row of dup is written once): the last
 * k - 1 rows of a sequence miss taps as the forward's first k - 1 rows do.
 */
function convBackwardFn({ dm, nh, dh, k }: TrainPassWidths): Fn {
  const { f, p } = params('causalConvBackward', 'dc', 'c', 'sa', 'u', 'w', 'du', 'dup', 'dW', 'dB', 'acc', 'B', 'T');
  const L = {
    n: f.local(Ty.i32), o: f.local(Ty.i32), s: f.local(Ty.v128), g: f.local(Ty.v128), uv: f.local(Ty.v128),
    sum: f.local(Ty.v128), accB: f.local(Ty.i32), accI: f.local(Ty.i32), da: f.local(Ty.i32),
  };
  const C4 = 4 * dm;
  const at = (base: number): Code => add(get(base), get(L.o));
  const rowO = (base: number, width = dm): Code => add(rowAt(base, get(L.n), width), get(L.o));
  const silu = loop(L.n, i32(0), mul(get(p.B), get(p.T)), 1, loop(L.o, i32(0), i32(C4), 16, [
    ...set(L.s, vload(rowO(p.sa))),
    ...set(L.g, vmul(vload(rowO(p.dc)), vadd(get(L.s), vmul(vload(rowO(p.c)), vsub(vconst(1), get(L.s)))))),
    ...vstore(rowO(p.dc), get(L.g)),
    ...accumulate(L.accB, L.o, L.g),
  ]));
  // Input row n: tap i reads da of row n + (k-1) - i, at offset (k-1-i) rows from da's row n.
  const row = (m: number): Code => {
    const taps: Code = [];
    for (let i = m; i < k; i++) {
      taps.push(
        ...set(L.g, vload(at(L.da), (k - 1 - i) * C4)),
        ...set(L.sum, vadd(get(L.sum), vmul(vload(at(p.w), i * C4), get(L.g)))),
        ...set(L.accI, add(get(p.acc), i32(i * 2 * C4))),
        ...set(L.s, vmul(get(L.g), get(L.uv))),
        ...accumulate(L.accI, L.o, L.s),
      );
    }
    return [
      ...set(L.da, rowAt(p.dc, get(L.n), dm)),
      ...loop(L.o, i32(0), i32(C4), 16, [...set(L.uv, vload(rowO(p.u))), ...set(L.sum, vload(rowO(p.du))), ...taps, ...vstore(rowO(p.dup, dm + nh * dh), get(L.sum))]),
    ];
  };
  const b = f.local(Ty.i32);
  const s = f.local(Ty.i32);
  const tails: Code = [];
  for (let j = k - 2; j >= 0; j--) {
    tails.push(...when(geS(get(p.T), i32(j + 1)), [...set(L.n, add(mul(get(b), get(p.T)), sub(get(p.T), i32(j + 1)))), ...row(k - 1 - j)]));
  }
  f.body = [
    ...zero(f, p.acc, (k + 1) * dm),
    ...set(L.accB, add(get(p.acc), i32(k * 2 * C4))),
    ...silu,
    ...loop(b, i32(0), get(p.B), 1, [...loop(s, i32(0), sub(get(p.T), i32(k - 1)), 1, [...set(L.n, add(mul(get(b), get(p.T)), get(s))), ...row(0)]), ...tails]),
    ...roundOut(f, p.acc, p.dW, k * dm),
    ...roundOut(f, L.accB, p.dB, dm),
  ];
  return f;
}

/** splitProjections(cc, uu, bC, bU, q, kk, v, gates, skip, so, N), cc [N, 3H + 2nh], uu [N, 2H]. */
function splitProjectionsFn({ nh, dh }: TrainPassWidths): Fn {
  const H = nh * dh;
  const Wc = 3 * H + 2 * nh;
  const { f, p } = params('splitProjections', 'cc', 'uu', 'bC', 'bU', 'q', 'kk', 'v', 'gates', 'skip', 'so', 'N');
  const L = { n: f.local(Ty.i32), o: f.local(Ty.i32), ccr: f.local(Ty.i32), uur: f.local(Ty.i32) };
  const vm = new VMath(f);
  const at = (base: number): Code => add(get(base), get(L.o));
  const rowO = (base: number, width = H): Code => add(rowAt(base, get(L.n), width), get(L.o));
  f.body = loop(L.n, i32(0), get(p.N), 1, [
    ...set(L.ccr, rowAt(p.cc, get(L.n), Wc)),
    ...set(L.uur, rowAt(p.uu, get(L.n), 2 * H)),
    ...loop(L.o, i32(0), i32(4 * H), 16, [
      ...vstore(rowO(p.q), vadd(vload(at(L.ccr)), vload(at(p.bC)))),
      // The key is scaled after its bias.
      ...vstore(rowO(p.kk), vmul(vadd(vload(at(L.ccr), 4 * H), vload(at(p.bC), 4 * H)), vconst(1 / Math.sqrt(dh)))),
      ...vstore(rowO(p.skip), vload(at(L.ccr), 4 * (2 * H + 2 * nh))),
      ...vstore(rowO(p.v), vadd(vload(at(L.uur)), vload(at(p.bU)))),
      ...vstore(rowO(p.so), vm.sigmoid(vadd(vload(at(L.uur), 4 * H), vload(at(p.bU), 4 * H)))),
    ]),
    // 2nh gate columns need not make whole vectors: one float at a time.
    ...loop(L.o, i32(0), i32(4 * 2 * nh), 4, fstore(rowO(p.gates, 2 * nh), fadd(fload(at(L.ccr), 4 * 2 * H), fload(at(p.bC), 4 * 2 * H)))),
  ]);
  return f;
}

/** gatingForward(ht, so, skip, sir, w, b, hhat, rstd2, y, N), one head (dh channels) at a time. */
function gatingForwardFn({ nh, dh }: TrainPassWidths): Fn {
  const D4 = 4 * dh;
  const { f, p } = params('gatingForward', 'ht', 'so', 'skip', 'sir', 'w', 'b', 'hhat', 'rstd2', 'y', 'N');
  const L = {
    g: f.local(Ty.i32), j: f.local(Ty.i32), e: f.local(Ty.i32), o: f.local(Ty.i32), ch: f.local(Ty.i32),
    acc: f.local(Ty.v128), mean: f.local(Ty.v128), t: f.local(Ty.v128), r: f.local(Ty.f32),
  };
  const vm = new VMath(f);
  // Rows [N, H] are heads [N nh, dh]: head g's vector e at byte g D4 + e (in local o); its channels at j D4 + e.
  const hh = (): Code => vmul(vload(add(get(p.so), get(L.o))), vload(add(get(p.ht), get(L.o))));
  const at = (base: number): Code => add(get(base), get(L.o));
  const perHead = (body: Code): Code => loop(L.e, i32(0), i32(D4), 16, [...set(L.o, add(mul(get(L.g), i32(D4)), get(L.e))), ...set(L.ch, add(mul(get(L.j), i32(D4)), get(L.e))), ...body]);
  f.body = loop(L.g, i32(0), mul(get(p.N), i32(nh)), 1, [
    ...set(L.j, remU(get(L.g), i32(nh))),
    ...set(L.acc, vconst(0)),
    ...perHead(set(L.acc, vadd(get(L.acc), hh()))),
    ...set(L.mean, splat(fdiv(vm.hsum(get(L.acc)), f32(dh)))),
    ...set(L.acc, vconst(0)),
    ...perHead([...set(L.t, vsub(hh(), get(L.mean))), ...set(L.acc, vadd(get(L.acc), vmul(get(L.t), get(L.t))))]),
    ...set(L.r, fdiv(f32(1), fsqrt(fadd(fdiv(vm.hsum(get(L.acc)), f32(dh)), f32(1e-5))))),
    ...fstore(rowAt(p.rstd2, get(L.g), 1), get(L.r)),
    ...perHead([
      ...set(L.t, vmul(vsub(hh(), get(L.mean)), splat(get(L.r)))),
      ...vstore(at(p.hhat), get(L.t)),
      ...vstore(at(p.y), vmul(vadd(vadd(vmul(get(L.t), vload(add(get(p.w), get(L.ch)))), vload(add(get(p.b), get(L.ch)))), vload(at(p.skip))), vload(at(p.sir)))),
    ]),
  ]);
  return f;
}

/** gatingOutput(hhat, skip, sir, w, b, y, N), rows of H channels. */
function gatingOutputFn(H: number): Fn {
  const { f, p } = params('gatingOutput', 'hhat', 'skip', 'sir', 'w', 'b', 'y', 'N');
  const L = { n: f.local(Ty.i32), o: f.local(Ty.i32) };
  const rowO = (base: number): Code => add(rowAt(base, get(L.n), H), get(L.o));
  const ch = (base: number): Code => vload(add(get(base), get(L.o)));
  f.body = loop(L.n, i32(0), get(p.N), 1, loop(L.o, i32(0), i32(4 * H), 16, vstore(rowO(p.y), vmul(vadd(vadd(vmul(vload(rowO(p.hhat)), ch(p.w)), ch(p.b)), vload(rowO(p.skip))), vload(rowO(p.sir))))));
  return f;
}

/**
 * gatingBackward(dy, hhat, skip, sir, sr, w, b, rstd2, so, ht, dup, dcc, duu, dht, dW, dB, acc, N); acc holds 2H
 * float64s.
 */
function gatingBackwardFn({ nh, dh, dm }: TrainPassWidths): Fn {
  const H = nh * dh;
  const D4 = 4 * dh;
  const Wc = 3 * H + 2 * nh;
  const { f, p } = params('gatingBackward', 'dy', 'hhat', 'skip', 'sir', 'sr', 'w', 'b', 'rstd2', 'so', 'ht', 'dup', 'dcc', 'duu', 'dht', 'dW', 'dB', 'acc', 'N');
  const L = {
    n: f.local(Ty.i32), j: f.local(Ty.i32), e: f.local(Ty.i32), o: f.local(Ty.i32), ch: f.local(Ty.i32), accB: f.local(Ty.i32),
    g: f.local(Ty.v128), hv: f.local(Ty.v128), sir: f.local(Ty.v128), dy1: f.local(Ty.v128), t: f.local(Ty.v128),
    m1: f.local(Ty.v128), m2: f.local(Ty.v128), r: f.local(Ty.v128), s: f.local(Ty.v128),
  };
  const vm = new VMath(f);
  const at = (base: number): Code => add(get(base), get(L.o));
  const wch = (base: number): Code => vload(add(get(base), get(L.ch)));
  /** Channel ch of row n in a matrix `width` wide, from column `col`. */
  const wide = (base: number, width: number, col: number): Code => add(rowAt(base, get(L.n), width), add(get(L.ch), i32(4 * col)));
  const perHead = (body: Code): Code => loop(L.e, i32(0), i32(D4), 16, [...set(L.ch, add(mul(get(L.j), i32(D4)), get(L.e))), ...set(L.o, add(mul(get(L.n), i32(4 * H)), get(L.ch))), ...body]);
  const head: Code = [
    ...set(L.m1, vconst(0)),
    ...set(L.m2, vconst(0)),
    ...perHead([
      ...set(L.g, vload(at(p.dy))),
      ...set(L.hv, vload(at(p.hhat))),
      ...set(L.sir, vload(at(p.sir))),
      ...set(L.s, vload(at(p.sr))),
      // dr = dy y1 silu'(r), silu'(r) = sr + silu(r) (1 - sr)
      ...vstore(wide(p.dup, dm + H, dm), vmul(vmul(get(L.g), vadd(vadd(vmul(get(L.hv), wch(p.w)), wch(p.b)), vload(at(p.skip)))), vadd(get(L.s), vmul(get(L.sir), vsub(vconst(1), get(L.s)))))),
      ...set(L.dy1, vmul(get(L.g), get(L.sir))),
      ...vstore(wide(p.dcc, Wc, 2 * H + 2 * nh), get(L.dy1)),
      ...accumulate(L.accB, L.ch, L.dy1),
      ...set(L.t, vmul(get(L.dy1), get(L.hv))),
      ...accumulate(p.acc, L.ch, L.t),
      ...set(L.t, vmul(get(L.dy1), wch(p.w))),
      ...set(L.m1, vadd(get(L.m1), get(L.t))),
      ...set(L.m2, vadd(get(L.m2), vmul(get(L.t), get(L.hv)))),
    ]),
    ...set(L.m1, splat(fdiv(vm.hsum(get(L.m1)), f32(dh)))),
    ...set(L.m2, splat(fdiv(vm.hsum(get(L.m2)), f32(dh)))),
    ...set(L.r, splat(fload(rowAt(p.rstd2, add(mul(get(L.n), i32(nh)), get(L.j)), 1)))),
    ...perHead([
      ...set(L.t, vmul(vmul(vload(at(p.dy)), vload(at(p.sir))), wch(p.w))),
      ...set(L.t, vmul(get(L.r), vsub(vsub(get(L.t), get(L.m1)), vmul(vload(at(p.hhat)), get(L.m2))))),
      ...set(L.s, vload(at(p.so))),
      ...vstore(wide(p.duu, 2 * H, H), vmul(vmul(get(L.t), vload(at(p.ht))), vmul(get(L.s), vsub(vconst(1), get(L.s))))),
      ...vstore(at(p.dht), vmul(get(L.t), get(L.s))),
    ]),
  ];
  f.body = [
    ...zero(f, p.acc, 2 * H),
    ...set(L.accB, add(get(p.acc), i32(8 * H))),
    ...loop(L.n, i32(0), get(p.N), 1, loop(L.j, i32(0), i32(nh), 1, head)),
    ...roundOut(f, p.acc, p.dW, H),
    ...roundOut(f, L.accB, p.dB, H),
  ];
  return f;
}
