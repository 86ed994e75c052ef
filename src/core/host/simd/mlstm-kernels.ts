/**
 * The mLSTM decode step's per-row work in WebAssembly SIMD over the wasm backend's heap, four float32 channels
 * at a time, generated for one model's widths: the causal conv with silu, the cell update with GroupNorm, skip
 * and silu(r) gating, and the block's LayerNorm and residual sum. Same equations as the JavaScript loops of
 * mlstm-step.ts, in float32.
 */
import { convFn, convRunFn } from './conv-kernel.ts';
import { kernelsIn, type Kernels } from './instance.ts';
import { normFn, residualFn } from './row-ops.ts';
import { interleave, VMath } from './vmath.ts';
import {
  add, f32, f32x4Neg, fabs, fadd, fdiv, fload, fmax, Fn, fstore, fsqrt, get, i32, lane, loop, mul, replaceLane, set, shuffle, splat, Ty,
  vadd, vconst, vdiv, vload, vmax, vmin, vmul, vsqrt, vstore, vsub, type Code,
} from './wasm.ts';

/** The normaliser's floor is exp(min(-m, NORM_EXP_CAP)) (DESIGN: exp(min(-m_t, 80))). */
const NORM_EXP_CAP = 80;

/** Vectors whose sigmoids are computed side by side, their steps interleaved (as conv-kernel.ts). */
const UNROLL = 8;

export interface MlstmWidths {
  readonly d: number;
  readonly nh: number;
  readonly dh: number;
  readonly dm: number;
  /** conv taps; 0 for no conv */
  readonly k: number;
}

/** Whether the SIMD kernels cover these widths: whole groups of four channels in every row they touch. */
export function simdCovers(w: MlstmWidths): boolean {
  return w.d % 4 === 0 && w.dh % 4 === 0 && w.dm % 4 === 0;
}

/** The kernels for `w` in `heap`, compiled on first use; null where WebAssembly SIMD is unavailable. */
export function mlstmKernels(heap: WebAssembly.Memory, w: MlstmWidths): Kernels | null {
  const { d, nh, dh, dm, k } = w;
  const shape = { C: dm, taps: k - 1, xStride: dm + nh * dh, bias: true };
  const conv = () => (k > 0 ? [convFn(shape), convRunFn(shape)] : []);
  return kernelsIn(heap, `mlstm:${d},${nh},${dh},${dm},${k}`, () => [...conv(), cellFn(w, false), cellFn(w, true), normFn(d), residualFn(d)]);
}

/**
 * cell(cc, uu, up, bC, bU, bUp, outW, outB, C, n, m, Cn, nn, mn, y, gates, B, scale): for every row, the gates of
 * its heads (in float32, four heads a vector): m' = max(logsigmoid(f) + m, i) into mn, and i' = exp(i - m'), f' =
 * exp(logsigmoid(f) + m - m') and the normaliser's floor exp(min(-m', 80)) into `gates` [B, nh, 3]; then for every
 * head n' = f' n + i' k, C' = f' C + i' v k^T, h = o * (C' q) / max(|n'.q|, floor), and y = (GroupNorm(h) + skip)
 * * silu(r). The projections cc = c W_C, uu = u W_U and up = xn W_up come without their biases.
 *
 * cellRun (`run`), same arguments: B positions of ONE row in order, updating that row's C, n and m in place (C =
 * Cn, n = nn, m = mn): position t's inputs and outputs are rows t of cc, uu, up, gates and y.
 *
 * Three passes over the rows: the gates of every row, the memory update of every row (h into y), then GroupNorm
 * and gating in place. Only the middle pass carries a run's recurrence: done position by position, the gates' and
 * the norm's chains of dependent exps, divisions and square roots stalled every position, and apart they overlap
 * across rows. The norm takes four heads a vector but sums in one head's order, so every value is as before.
 */
function cellFn({ nh, dh, dm }: MlstmWidths, run: boolean): Fn {
  const H = nh * dh;
  const W = 3 * H + 2 * nh;
  const d4 = dh / 4;
  const H4 = 4 * H;
  const D4 = 4 * dh;
  const f = new Fn(run ? 'cellRun' : 'cell', [...Array(17).fill(Ty.i32), Ty.f32], []);
  const [cc, uu, up, bC, bU, bUp, outW, outB, C, n, m, Cn, nn, mn, y, gates, B, scale] = Array.from({ length: 18 }, (_, i) => i);
  const locals = <K extends string>(t: Ty, ...names: K[]) => Object.fromEntries(names.map((k) => [k, f.local(t)])) as Record<K, number>;
  // Row and head pointers (bytes): p.cc is row r's cc at head j's channels, and so on; q4 the head's own.
  const p = locals(Ty.i32, 'r', 'j', 'rcc', 'ruu', 'rup', 'ry', 'cc', 'uu', 'y', 'bC', 'bU');
  const q4 = locals(Ty.i32, 'g', 'nb', 'crow', 'rm');
  const G = locals(Ty.v128, 'ig', 'lm', 'mx');
  const L = { ...locals(Ty.v128, 'iw', 'fw', 'sc', 'iv', 'acc', 't', 'u', 'mean', 'ginv', 'o'), inv: f.local(Ty.f32) };
  const q = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const kk = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const a = Array.from({ length: 4 }, () => f.local(Ty.v128));
  const vm = new VMath(f);
  // Side-by-side maths: the gates' three exps, and UNROLL sigmoids at a time in the norm pass.
  const sm = Array.from({ length: UNROLL }, () => new VMath(f));
  const sg = Array.from({ length: UNROLL }, () => f.local(Ty.v128));
  const sx = Array.from({ length: UNROLL }, () => f.local(Ty.v128));
  const at = (ptr: number, off: number) => add(get(ptr), get(off));
  const sumInto = (acc: number, first: boolean, v: Code) => set(acc, first ? v : vadd(get(acc), v));
  const rowPointers: Code = [
    ...set(p.rcc, add(get(cc), mul(get(p.r), i32(4 * W)))),
    ...set(p.ruu, add(get(uu), mul(get(p.r), i32(4 * 2 * H)))),
    ...set(p.rup, add(get(up), mul(get(p.r), i32(4 * (dm + H))))),
    ...set(p.ry, add(get(y), mul(get(p.r), i32(H4)))),
  ];

  // q, k (scaled after its bias), and n' with its dot against q.
  const qkn: Code = [];
  for (let e = 0; e < d4; e++) {
    qkn.push(
      ...set(q[e], vadd(vload(get(p.cc), 16 * e), vload(get(p.bC), 16 * e))),
      ...set(kk[e], vmul(vadd(vload(get(p.cc), H4 + 16 * e), vload(get(p.bC), H4 + 16 * e)), get(L.sc))),
      ...set(L.t, vadd(vmul(get(L.fw), vload(at(n, q4.nb), 16 * e)), vmul(get(L.iw), get(kk[e])))),
      ...vstore(at(nn, q4.nb), get(L.t), 16 * e),
      ...sumInto(L.acc, e === 0, vmul(get(L.t), get(q[e]))),
    );
  }

  // Rows 4 i .. 4 i + 3 of C' (one per value channel) and their dots with q: lanes of a[l] sum to row l's.
  const broadcast = (l: number) => Array.from({ length: 16 }, (_, b) => 4 * l + (b % 4));
  const rows4 = (i: number): Code => {
    const code: Code = [];
    for (let l = 0; l < 4; l++) {
      code.push(...set(L.u, shuffle(get(L.iv), get(L.iv), broadcast(l))));
      for (let e = 0; e < d4; e++) {
        const off = (4 * i + l) * D4 + 16 * e;
        code.push(
          ...set(L.t, vadd(vmul(get(L.fw), vload(at(C, q4.crow), off)), vmul(get(L.u), get(kk[e])))),
          ...vstore(at(Cn, q4.crow), get(L.t), off),
          ...sumInto(a[l], e === 0, vmul(get(L.t), get(q[e]))),
        );
      }
    }
    return code;
  };
  // [sum a0, sum a1, sum a2, sum a3] by two rounds of pairwise adds: each lane is hsum's (v0 + v1) + (v2 + v3).
  const even = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
  const odd = even.map((b) => b + 4);
  const pairSums = (x: Code, z: Code) => [...set(L.t, x), ...set(L.u, z), ...vadd(shuffle(get(L.t), get(L.u), even), shuffle(get(L.t), get(L.u), odd))];
  const sums4 = (): Code => [...set(a[0], pairSums(get(a[0]), get(a[1]))), ...set(a[2], pairSums(get(a[2]), get(a[3]))), ...pairSums(get(a[0]), get(a[2]))];
  // The head's value channels four at a time, unrolled: offsets are constants and the rounds' chains overlap.
  const values: Code = [...set(q4.crow, mul(get(q4.nb), i32(dh)))];
  for (let i = 0; i < d4; i++) {
    values.push(
      ...set(L.iv, vmul(get(L.iw), vadd(vload(get(p.uu), 16 * i), vload(get(p.bU), 16 * i)))),
      ...rows4(i),
      // num / norm into y; the norm pass multiplies by o.
      ...vstore(get(p.y), vmul(sums4(), splat(get(L.inv))), 16 * i),
    );
  }

  const headPtr = (ptr: number, base: number) => set(ptr, add(get(base), mul(get(p.j), i32(D4))));
  const head: Code = [
    ...headPtr(p.cc, p.rcc), ...headPtr(p.uu, p.ruu), ...headPtr(p.y, p.ry), ...headPtr(p.bC, bC), ...headPtr(p.bU, bU),
    ...set(q4.g, add(get(gates), mul(add(mul(get(p.r), i32(nh)), get(p.j)), i32(12)))),
    ...set(L.iw, splat(fload(get(q4.g)))),
    ...set(L.fw, splat(fload(get(q4.g), 4))),
    ...set(q4.nb, mul(run ? get(p.j) : add(mul(get(p.r), i32(nh)), get(p.j)), i32(D4))),
    ...qkn,
    ...set(L.inv, fdiv(f32(1), fmax(fabs(vm.hsum(get(L.acc))), fload(get(q4.g), 8)))),
    ...values,
  ];

  // The row's gates, up to four heads a vector (lanes past nh stay 0 and are not stored): as mlstm-step.ts's
  // cellRows, in float32. logsigmoid(f), which needs no state, goes first for every row, parked in the f' slot of
  // `gates`; then m, which a run's positions share (each reads it and then replaces it), and the exps.
  const logCode: Code = [];
  const gateCode: Code = [...set(q4.rm, run ? i32(0) : mul(get(p.r), i32(4 * nh)))];
  for (let g0 = 0; g0 < nh; g0 += 4) {
    const lanes = Math.min(4, nh - g0);
    const gather = (at: (l: number) => Code): Code => {
      let v: Code = vconst(0);
      for (let l = 0; l < lanes; l++) v = replaceLane(v, l, at(l));
      return v;
    };
    const pre = (col: number) => gather((l) => fadd(fload(get(p.rcc), 4 * (col + g0 + l)), fload(get(bC), 4 * (col + g0 + l))));
    const slot = (l: number) => add(get(gates), mul(add(mul(get(p.r), i32(nh)), i32(g0 + l)), i32(12)));
    logCode.push(...set(G.lm, vm.logSigmoid(pre(2 * H + nh))));
    for (let l = 0; l < lanes; l++) logCode.push(...fstore(slot(l), lane(get(G.lm), l), 4));
    gateCode.push(
      ...set(G.ig, pre(2 * H)),
      ...set(G.lm, vadd(gather((l) => fload(slot(l), 4)), gather((l) => fload(add(get(m), get(q4.rm)), 4 * (g0 + l))))),
      ...set(G.mx, vmax(get(G.lm), get(G.ig))),
      // Both exponents are <= 0 by the choice of m'.
      ...interleave([
        sm[0].expSteps(vsub(get(G.ig), get(G.mx)), L.iw),
        sm[1].expSteps(vsub(get(G.lm), get(G.mx)), L.fw),
        sm[2].expSteps(vmin(f32x4Neg(get(G.mx)), vconst(NORM_EXP_CAP)), L.t),
      ]),
    );
    for (let l = 0; l < lanes; l++) {
      const g = add(get(gates), mul(add(mul(get(p.r), i32(nh)), i32(g0 + l)), i32(12)));
      gateCode.push(
        ...fstore(g, lane(get(L.iw), l)),
        ...fstore(g, lane(get(L.fw), l), 4),
        ...fstore(g, lane(get(L.t), l), 8),
        ...fstore(add(get(mn), get(q4.rm)), lane(get(G.mx), l), 4 * (g0 + l)),
      );
    }
  }

  // h = o * y, GroupNorm of up to four heads a vector (lane l is head g0 + l; lanes past nh sum zeros and are not
  // used), skip, and silu(r) gating, in place in y. The vector of head sums is built as pairSums of per-head sums.
  // The sigmoids go UNROLL vectors at a time with their steps interleaved (vmath.ts interleave).
  const yAt = (hd: number, e: number) => vload(get(p.ry), 4 * hd * dh + 16 * e);
  const headSums = (g0: number, term: (hd: number, e: number) => Code): Code => {
    const code: Code = [];
    for (let l = 0; l < 4; l++) {
      if (g0 + l >= nh) {
        code.push(...set(a[l], vconst(0)));
        continue;
      }
      for (let e = 0; e < d4; e++) code.push(...sumInto(a[l], e === 0, term(g0 + l, e)));
    }
    return [...code, ...sums4()];
  };
  /** For every vector (by its byte offset in a row of H): sx = arg(c), sg = sigmoid(sx), then `use`, UNROLL at a time. */
  const sigmoids = (offsets: number[], arg: (c: number) => Code, use: (c: number, x: number, s: number) => Code): Code => {
    const code: Code = [];
    for (let i0 = 0; i0 < offsets.length; i0 += UNROLL) {
      const part = offsets.slice(i0, i0 + UNROLL);
      part.forEach((c, i) => code.push(...set(sx[i], arg(c))));
      code.push(...interleave(part.map((_, i) => sm[i].sigmoidSteps(get(sx[i]), sg[i]))));
      part.forEach((c, i) => code.push(...use(c, sx[i], sg[i])));
    }
    return code;
  };
  const vectors = (g0: number) => {
    const cs: number[] = [];
    for (let hd = g0; hd < Math.min(nh, g0 + 4); hd++) for (let e = 0; e < d4; e++) cs.push(4 * hd * dh + 16 * e);
    return cs;
  };
  const norm: Code = [
    ...sigmoids(
      Array.from({ length: H / 4 }, (_, i) => 16 * i),
      (c) => vadd(vload(get(p.ruu), H4 + c), vload(get(bU), H4 + c)),
      (c, _x, s) => vstore(get(p.ry), vmul(vload(get(p.ry), c), get(s)), c),
    ),
  ];
  for (let g0 = 0; g0 < nh; g0 += 4) {
    const meanOf = (hd: number) => shuffle(get(L.mean), get(L.mean), broadcast(hd - g0));
    const ginvOf = (hd: number) => shuffle(get(L.ginv), get(L.ginv), broadcast(hd - g0));
    const headOf = (c: number) => Math.floor(c / (4 * dh));
    norm.push(
      ...set(L.mean, vdiv(headSums(g0, yAt), vconst(dh))),
      ...set(L.ginv, headSums(g0, (hd, e) => [...set(L.o, vsub(yAt(hd, e), meanOf(hd))), ...vmul(get(L.o), get(L.o))])),
      ...set(L.ginv, vdiv(vconst(1), vsqrt(vadd(vdiv(get(L.ginv), vconst(dh)), vconst(1e-5))))),
      ...sigmoids(vectors(g0), (c) => vadd(vload(get(p.rup), 4 * dm + c), vload(get(bUp), 4 * dm + c)), (c, x, s) => {
        const hd = headOf(c);
        const normed = vadd(vmul(vmul(vsub(vload(get(p.ry), c), meanOf(hd)), ginvOf(hd)), vload(get(outW), c)), vload(get(outB), c));
        return vstore(get(p.ry), vmul(vmul(vadd(normed, vload(get(p.rcc), 4 * (2 * H + 2 * nh) + c)), get(x)), get(s)), c);
      }),
    );
  }

  f.body = [
    ...set(L.sc, splat(get(scale))),
    ...loop(p.r, i32(0), get(B), 1, [...rowPointers, ...logCode]),
    ...loop(p.r, i32(0), get(B), 1, [...rowPointers, ...gateCode]),
    ...loop(p.r, i32(0), get(B), 1, [...rowPointers, ...loop(p.j, i32(0), i32(nh), 1, head)]),
    ...loop(p.r, i32(0), get(B), 1, [...rowPointers, ...norm]),
  ];
  return f;
}
