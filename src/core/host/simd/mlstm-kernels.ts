/**
 * The mLSTM decode step's per-row work in WebAssembly SIMD over the wasm backend's heap, four float32 channels
 * at a time, generated for one model's widths: the causal conv with silu, the cell update with GroupNorm, skip
 * and silu(r) gating, and the block's LayerNorm and residual sum. Same equations as the JavaScript loops of
 * mlstm-step.ts, in float32.
 */
import { convFn, convRunFn } from './conv-kernel.ts';
import { kernelsIn, type Kernels } from './instance.ts';
import { normFn, residualFn } from './row-ops.ts';
import { VMath } from './vmath.ts';
import {
  add, f32, f32x4Neg, fabs, fadd, fdiv, fload, fmax, Fn, fstore, fsqrt, get, i32, lane, loop, mul, replaceLane, set, shuffle, splat, Ty,
  vadd, vconst, vload, vmax, vmin, vmul, vstore, vsub, type Code,
} from './wasm.ts';

/** The normaliser's floor is exp(min(-m, NORM_EXP_CAP)) (DESIGN: exp(min(-m_t, 80))). */
const NORM_EXP_CAP = 80;

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
 * cell(cc, uu, up, bC, bU, bUp, outW, outB, C, n, m, Cn, nn, mn, y, gates, work, B, scale): for every row, the
 * gates of its heads (in float32, four heads a vector): m' = max(logsigmoid(f) + m, i) into mn, and i' =
 * exp(i - m'), f' = exp(logsigmoid(f) + m - m') and the normaliser's floor exp(min(-m', 80)) into `gates`
 * [B, nh, 3]; then for every head n' = f' n + i' k, C' = f' C + i' v k^T, h = o * (C' q) / max(|n'.q|, floor),
 * and y = (GroupNorm(h) + skip) * silu(r). The projections cc = c W_C, uu = u W_U and up = xn W_up come without
 * their biases. `work` holds one head's h [dh].
 *
 * cellRun (`run`), same arguments: B positions of ONE row in order, updating that row's C, n and m in place (C =
 * Cn, n = nn, m = mn): position t's inputs and outputs are rows t of cc, uu, up, gates and y.
 */
function cellFn({ nh, dh, dm }: MlstmWidths, run: boolean): Fn {
  const H = nh * dh;
  const W = 3 * H + 2 * nh;
  const d4 = dh / 4;
  const H4 = 4 * H;
  const D4 = 4 * dh;
  const f = new Fn(run ? 'cellRun' : 'cell', [...Array(18).fill(Ty.i32), Ty.f32], []);
  const [cc, uu, up, bC, bU, bUp, outW, outB, C, n, m, Cn, nn, mn, y, gates, work, B, scale] = Array.from({ length: 19 }, (_, i) => i);
  const locals = <K extends string>(t: Ty, ...names: K[]) => Object.fromEntries(names.map((k) => [k, f.local(t)])) as Record<K, number>;
  // Row and head pointers (bytes): p.cc is row r's cc at head j's channels, and so on; q4 the head's own.
  const p = locals(Ty.i32, 'r', 'j', 'i4', 'rcc', 'ruu', 'rup', 'ry', 'cc', 'uu', 'up', 'y', 'bC', 'bU', 'bUp', 'outW', 'outB');
  const q4 = locals(Ty.i32, 'g', 'nb', 'crow', 'v4', 'rm');
  const G = locals(Ty.v128, 'ig', 'lm', 'mx');
  const L = { ...locals(Ty.v128, 'iw', 'fw', 'sc', 'iv', 'acc', 't', 'u', 'mean', 'ginv', 'o'), inv: f.local(Ty.f32) };
  const q = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const kk = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const h = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const a = Array.from({ length: 4 }, () => f.local(Ty.v128));
  const vm = new VMath(f);
  const at = (ptr: number, off: number) => add(get(ptr), get(off));
  const sumInto = (acc: number, first: boolean, v: Code) => set(acc, first ? v : vadd(get(acc), v));

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

  // Rows 4 i4 .. 4 i4 + 3 of C' (one per value channel) and their dots with q: lanes of a[l] sum to row l's.
  const broadcast = (l: number) => Array.from({ length: 16 }, (_, b) => 4 * l + (b % 4));
  const rows4: Code = [];
  for (let l = 0; l < 4; l++) {
    rows4.push(...set(L.u, shuffle(get(L.iv), get(L.iv), broadcast(l))));
    for (let e = 0; e < d4; e++) {
      const off = l * D4 + 16 * e;
      rows4.push(
        ...set(L.t, vadd(vmul(get(L.fw), vload(at(C, q4.crow), off)), vmul(get(L.u), get(kk[e])))),
        ...vstore(at(Cn, q4.crow), get(L.t), off),
        ...sumInto(a[l], e === 0, vmul(get(L.t), get(q[e]))),
      );
    }
  }
  // [sum a0, sum a1, sum a2, sum a3] by two rounds of pairwise adds.
  const even = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
  const odd = even.map((b) => b + 4);
  const pairSums = (x: number, z: number) => vadd(shuffle(get(x), get(z), even), shuffle(get(x), get(z), odd));
  const i4Body: Code = [
    ...set(q4.v4, mul(get(p.i4), i32(16))),
    ...set(L.iv, vmul(get(L.iw), vadd(vload(at(p.uu, q4.v4)), vload(at(p.bU, q4.v4))))),
    ...set(q4.crow, add(mul(get(q4.nb), i32(dh)), mul(get(p.i4), i32(4 * D4)))),
    ...rows4,
    ...set(a[0], pairSums(a[0], a[1])),
    ...set(a[2], pairSums(a[2], a[3])),
    ...set(L.t, pairSums(a[0], a[2])),
    // h = o * num / norm, four channels at once.
    ...set(L.o, vadd(vload(at(p.uu, q4.v4), H4), vload(at(p.bU, q4.v4), H4))),
    ...vstore(at(work, q4.v4), vmul(vmul(get(L.t), splat(get(L.inv))), vm.sigmoid(get(L.o)))),
  ];

  // GroupNorm of the head (two passes), skip, and silu(r) gating.
  const norm: Code = [];
  for (let e = 0; e < d4; e++) norm.push(...set(h[e], vload(get(work), 16 * e)), ...sumInto(L.acc, e === 0, get(h[e])));
  norm.push(...set(L.mean, splat(fdiv(vm.hsum(get(L.acc)), f32(dh)))));
  for (let e = 0; e < d4; e++) norm.push(...set(L.t, vsub(get(h[e]), get(L.mean))), ...sumInto(L.acc, e === 0, vmul(get(L.t), get(L.t))));
  norm.push(...set(L.ginv, splat(fdiv(f32(1), fsqrt(fadd(fdiv(vm.hsum(get(L.acc)), f32(dh)), f32(1e-5)))))));
  for (let e = 0; e < d4; e++) {
    norm.push(
      ...set(L.t, vadd(vmul(vmul(vsub(get(h[e]), get(L.mean)), get(L.ginv)), vload(get(p.outW), 16 * e)), vload(get(p.outB), 16 * e))),
      ...set(L.o, vadd(vload(get(p.up), 4 * dm + 16 * e), vload(get(p.bUp), 4 * dm + 16 * e))),
      ...vstore(get(p.y), vmul(vmul(vadd(get(L.t), vload(get(p.cc), 4 * (2 * H + 2 * nh) + 16 * e)), get(L.o)), vm.sigmoid(get(L.o))), 16 * e),
    );
  }

  const headPtr = (ptr: number, base: number) => set(ptr, add(get(base), mul(get(p.j), i32(D4))));
  const head: Code = [
    ...headPtr(p.cc, p.rcc), ...headPtr(p.uu, p.ruu), ...headPtr(p.up, p.rup), ...headPtr(p.y, p.ry),
    ...headPtr(p.bC, bC), ...headPtr(p.bU, bU), ...headPtr(p.bUp, bUp), ...headPtr(p.outW, outW), ...headPtr(p.outB, outB),
    ...set(q4.g, add(get(gates), mul(add(mul(get(p.r), i32(nh)), get(p.j)), i32(12)))),
    ...set(L.iw, splat(fload(get(q4.g)))),
    ...set(L.fw, splat(fload(get(q4.g), 4))),
    ...set(q4.nb, mul(run ? get(p.j) : add(mul(get(p.r), i32(nh)), get(p.j)), i32(D4))),
    ...qkn,
    ...set(L.inv, fdiv(f32(1), fmax(fabs(vm.hsum(get(L.acc))), fload(get(q4.g), 8)))),
    ...loop(p.i4, i32(0), i32(d4), 1, i4Body),
    ...norm,
  ];

  // The row's gates, up to four heads a vector (lanes past nh stay 0 and are not stored): as mlstm-step.ts's
  // cellRows, in float32. A run's positions share the row's m, which each position reads and then replaces.
  const gateCode: Code = [...set(q4.rm, run ? i32(0) : mul(get(p.r), i32(4 * nh)))];
  for (let g0 = 0; g0 < nh; g0 += 4) {
    const lanes = Math.min(4, nh - g0);
    const gather = (at: (l: number) => Code): Code => {
      let v: Code = vconst(0);
      for (let l = 0; l < lanes; l++) v = replaceLane(v, l, at(l));
      return v;
    };
    const pre = (col: number) => gather((l) => fadd(fload(get(p.rcc), 4 * (col + g0 + l)), fload(get(bC), 4 * (col + g0 + l))));
    gateCode.push(
      ...set(G.ig, pre(2 * H)),
      ...set(G.lm, vadd(vm.logSigmoid(pre(2 * H + nh)), gather((l) => fload(add(get(m), get(q4.rm)), 4 * (g0 + l))))),
      ...set(G.mx, vmax(get(G.lm), get(G.ig))),
      // Both exponents are <= 0 by the choice of m'.
      ...set(L.iw, vm.exp(vsub(get(G.ig), get(G.mx)))),
      ...set(L.fw, vm.exp(vsub(get(G.lm), get(G.mx)))),
      ...set(L.t, vm.exp(vmin(f32x4Neg(get(G.mx)), vconst(NORM_EXP_CAP)))),
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

  f.body = [
    ...set(L.sc, splat(get(scale))),
    ...loop(p.r, i32(0), get(B), 1, [
      ...set(p.rcc, add(get(cc), mul(get(p.r), i32(4 * W)))),
      ...set(p.ruu, add(get(uu), mul(get(p.r), i32(4 * 2 * H)))),
      ...set(p.rup, add(get(up), mul(get(p.r), i32(4 * (dm + H))))),
      ...set(p.ry, add(get(y), mul(get(p.r), i32(H4)))),
      ...gateCode,
      ...loop(p.j, i32(0), i32(nh), 1, head),
    ]),
  ];
  return f;
}
