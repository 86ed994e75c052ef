/**
 * The sLSTM training passes of train-passes.ts in WebAssembly SIMD over the wasm heap, four float32 channels a
 * vector, generated for one model's widths; same signatures, so that the training kernels take either set. As in
 * the mLSTM's SIMD passes (mlstm/train-pass-kernels.ts), the weight and bias gradients, sums over all B*T rows,
 * are added in float64 in a heap accumulator.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';
import { kernelsIn, type Kernels } from '../host/simd/instance.ts';
import { VMath } from '../host/simd/vmath.ts';
import { accumulate, params, roundOut, rowAt, zero } from '../mlstm/train-pass-kernels.ts';
import {
  add, bin, f32, fadd, fdiv, fload, fsqrt, fstore, get, i32, loop, mul, set, splat, Ty, vadd, vconst, vload, vmul, vstore,
  vsub, type Code, type Fn,
} from '../host/simd/wasm.ts';
import type { SlstmPasses } from './train-passes.ts';

type Info = tf.TensorInfo;

const remU = bin(0x70);

interface Widths {
  readonly nh: number;
  readonly dh: number;
  readonly P: number;
}

/** Whether the kernels cover these widths: whole vectors in every head, and an MLP at least a vector wide. */
function covers(w: Widths): boolean {
  return w.dh % 4 === 0 && w.P >= 4;
}

/** The SIMD passes for these widths over io's heap; null on a backend without a heap, or without WebAssembly SIMD. */
export function simdSlstmPasses(io: HostIO, w: Widths): SlstmPasses | null {
  if (!io.heap || !covers(w)) return null;
  const k = kernelsIn(io.heap, `slstm-train:${w.nh},${w.dh},${w.P}`, () => [gatesFn(w), normForwardFn(w), normBackwardFn(w), geluForwardFn(w.P), geluBackwardFn(w.P)]);
  return k && passesOver(k, w);
}

const rowsOf = (t: Info): number => t.shape.reduce((a, b) => a * b, 1) / t.shape[t.shape.length - 1];

function passesOver(k: Kernels, w: Widths): SlstmPasses {
  const a = (io: HostIO, ...ts: Info[]): number[] => ts.map((t) => io.addr(t));
  return {
    gatePreActivations: (io, ic, zo, bG, gx) => k.gates(...a(io, ic, zo, bG, gx), rowsOf(ic)),
    groupNormForward: (io, _nh, hs, gw, gb, hhat, rstd, y) => k.groupNormForward(...a(io, hs, gw, gb, hhat, rstd, y), rowsOf(hhat)),
    groupNormBackward: (io, _nh, dy, hhat, rstd, gw, dhs, dW, dB) => {
      const acc = io.alloc([4 * w.nh * w.dh]); // 2H float64s
      k.groupNormBackward(...a(io, dy, hhat, rstd, gw, dhs, dW, dB, acc), rowsOf(hhat));
      io.free(acc);
    },
    geluGateForward: (io, up, bUp, z) => k.geluGateForward(...a(io, up, bUp, z), rowsOf(z)),
    geluGateBackward: (io, up, bUp, dz, dup, z) => k.geluGateBackward(...a(io, up, bUp, dz, dup, z), rowsOf(z)),
  };
}

/** gates(ic, zo, bG, gx, N): gx [N, 4H] = [ic | zo] ([N, 2H] each) + bG. */
function gatesFn({ nh, dh }: Widths): Fn {
  const H2 = 2 * nh * dh;
  const { f, p } = params('gates', 'ic', 'zo', 'bG', 'gx', 'N');
  const L = { n: f.local(Ty.i32), o: f.local(Ty.i32), out: f.local(Ty.i32) };
  const at = (base: number): Code => add(rowAt(base, get(L.n), H2), get(L.o));
  const bias = (offset: number): Code => vload(add(get(p.bG), get(L.o)), offset);
  f.body = loop(L.n, i32(0), get(p.N), 1, [
    ...set(L.out, rowAt(p.gx, get(L.n), 2 * H2)),
    ...loop(L.o, i32(0), i32(4 * H2), 16, [
      ...vstore(add(get(L.out), get(L.o)), vadd(vload(at(p.ic)), bias(0))),
      ...vstore(add(get(L.out), get(L.o)), vadd(vload(at(p.zo)), bias(4 * H2)), 4 * H2),
    ]),
  ]);
  return f;
}

/** groupNormForward(hs, w, b, hhat, rstd, y, N): one head (dh channels) at a time, rows [N nh, dh]. */
function normForwardFn({ nh, dh }: Widths): Fn {
  const D4 = 4 * dh;
  const { f, p } = params('groupNormForward', 'hs', 'w', 'b', 'hhat', 'rstd', 'y', 'N');
  const L = { g: f.local(Ty.i32), e: f.local(Ty.i32), o: f.local(Ty.i32), ch: f.local(Ty.i32), acc: f.local(Ty.v128), mean: f.local(Ty.v128), t: f.local(Ty.v128), r: f.local(Ty.f32) };
  const vm = new VMath(f);
  const at = (base: number): Code => add(get(base), get(L.o));
  const perHead = (body: Code): Code => loop(L.e, i32(0), i32(D4), 16, [...set(L.o, add(mul(get(L.g), i32(D4)), get(L.e))), ...body]);
  f.body = loop(L.g, i32(0), mul(get(p.N), i32(nh)), 1, [
    ...set(L.ch, mul(remU(get(L.g), i32(nh)), i32(D4))),
    ...set(L.acc, vconst(0)),
    ...perHead(set(L.acc, vadd(get(L.acc), vload(at(p.hs))))),
    ...set(L.mean, splat(fdiv(vm.hsum(get(L.acc)), f32(dh)))),
    ...set(L.acc, vconst(0)),
    ...perHead([...set(L.t, vsub(vload(at(p.hs)), get(L.mean))), ...set(L.acc, vadd(get(L.acc), vmul(get(L.t), get(L.t))))]),
    ...set(L.r, fdiv(f32(1), fsqrt(fadd(fdiv(vm.hsum(get(L.acc)), f32(dh)), f32(1e-5))))),
    ...fstore(rowAt(p.rstd, get(L.g), 1), get(L.r)),
    ...perHead([
      ...set(L.t, vmul(vsub(vload(at(p.hs)), get(L.mean)), splat(get(L.r)))),
      ...vstore(at(p.hhat), get(L.t)),
      ...vstore(at(p.y), vadd(vmul(get(L.t), vload(add(add(get(p.w), get(L.ch)), get(L.e)))), vload(add(add(get(p.b), get(L.ch)), get(L.e))))),
    ]),
  ]);
  return f;
}

/** groupNormBackward(dy, hhat, rstd, w, dhs, dW, dB, acc, N); acc holds 2H float64s. */
function normBackwardFn({ nh, dh }: Widths): Fn {
  const H = nh * dh;
  const D4 = 4 * dh;
  const { f, p } = params('groupNormBackward', 'dy', 'hhat', 'rstd', 'w', 'dhs', 'dW', 'dB', 'acc', 'N');
  const L = {
    g: f.local(Ty.i32), e: f.local(Ty.i32), o: f.local(Ty.i32), ch: f.local(Ty.i32), accB: f.local(Ty.i32),
    dy: f.local(Ty.v128), hv: f.local(Ty.v128), t: f.local(Ty.v128), m1: f.local(Ty.v128), m2: f.local(Ty.v128), r: f.local(Ty.v128),
  };
  const vm = new VMath(f);
  const at = (base: number): Code => add(get(base), get(L.o));
  const wch = (): Code => vload(add(get(p.w), get(L.ch)));
  // Head g's vector e at byte g D4 + e (local o); its channel at (g mod nh) D4 + e (local ch).
  const perHead = (body: Code): Code =>
    loop(L.e, i32(0), i32(D4), 16, [...set(L.o, add(mul(get(L.g), i32(D4)), get(L.e))), ...set(L.ch, add(mul(remU(get(L.g), i32(nh)), i32(D4)), get(L.e))), ...body]);
  f.body = [
    ...zero(f, p.acc, 2 * H),
    ...set(L.accB, add(get(p.acc), i32(8 * H))),
    ...loop(L.g, i32(0), mul(get(p.N), i32(nh)), 1, [
      ...set(L.m1, vconst(0)),
      ...set(L.m2, vconst(0)),
      ...perHead([
        ...set(L.dy, vload(at(p.dy))),
        ...set(L.hv, vload(at(p.hhat))),
        ...accumulate(L.accB, L.ch, L.dy),
        ...set(L.t, vmul(get(L.dy), get(L.hv))),
        ...accumulate(p.acc, L.ch, L.t),
        ...set(L.t, vmul(get(L.dy), wch())),
        ...set(L.m1, vadd(get(L.m1), get(L.t))),
        ...set(L.m2, vadd(get(L.m2), vmul(get(L.t), get(L.hv)))),
      ]),
      ...set(L.m1, splat(fdiv(vm.hsum(get(L.m1)), f32(dh)))),
      ...set(L.m2, splat(fdiv(vm.hsum(get(L.m2)), f32(dh)))),
      ...set(L.r, splat(fload(rowAt(p.rstd, get(L.g), 1)))),
      ...perHead(vstore(at(p.dhs), vmul(get(L.r), vsub(vsub(vmul(vload(at(p.dy)), wch()), get(L.m1)), vmul(vload(at(p.hhat)), get(L.m2)))))),
    ]),
    ...roundOut(f, p.acc, p.dW, H),
    ...roundOut(f, L.accB, p.dB, H),
  ];
  return f;
}

/**
 * The columns of an MLP row of P floats a vector at a time (byte offset in local o): whole vectors, then, when P is
 * not a multiple of four, the last four columns again. Each column's outputs depend only on that column's inputs,
 * so computing a few twice writes the same values.
 */
function columns(o: number, P: number, body: Code): Code {
  const tail = P % 4 === 0 ? [] : [...set(o, i32(4 * (P - 4))), ...body];
  return [...loop(o, i32(0), i32(16 * Math.floor(P / 4)), 16, body), ...tail];
}

/** geluGateForward(up, bUp, z, N): z [N, P] = gelu(a) * b, [a | b] = up + bUp ([N, 2P]). */
function geluForwardFn(P: number): Fn {
  const { f, p } = params('geluGateForward', 'up', 'bUp', 'z', 'N');
  const L = { n: f.local(Ty.i32), o: f.local(Ty.i32), ur: f.local(Ty.i32), a: f.local(Ty.v128) };
  const vm = new VMath(f);
  const at = (base: number): Code => add(get(base), get(L.o));
  f.body = loop(L.n, i32(0), get(p.N), 1, [
    ...set(L.ur, rowAt(p.up, get(L.n), 2 * P)),
    ...columns(L.o, P, [
      ...set(L.a, vadd(vload(at(L.ur)), vload(at(p.bUp)))),
      ...vstore(add(rowAt(p.z, get(L.n), P), get(L.o)), vmul(vm.gelu(get(L.a)), vadd(vload(at(L.ur), 4 * P), vload(at(p.bUp), 4 * P)))),
    ]),
  ]);
  return f;
}

/**
 * geluGateBackward(up, bUp, dz, dup, z, N): dup [N, 2P] = [dz b gelu'(a) | dz gelu(a)] with
 * gelu'(a) = Phi(a) + a phi(a), and z = gelu(a) b rebuilt.
 */
function geluBackwardFn(P: number): Fn {
  const { f, p } = params('geluGateBackward', 'up', 'bUp', 'dz', 'dup', 'z', 'N');
  const L = {
    n: f.local(Ty.i32), o: f.local(Ty.i32), ur: f.local(Ty.i32), dr: f.local(Ty.i32),
    a: f.local(Ty.v128), b: f.local(Ty.v128), cdf: f.local(Ty.v128), pdf: f.local(Ty.v128), g: f.local(Ty.v128),
  };
  const vm = new VMath(f);
  const at = (base: number): Code => add(get(base), get(L.o));
  const row = (base: number): Code => add(rowAt(base, get(L.n), P), get(L.o));
  f.body = loop(L.n, i32(0), get(p.N), 1, [
    ...set(L.ur, rowAt(p.up, get(L.n), 2 * P)),
    ...set(L.dr, rowAt(p.dup, get(L.n), 2 * P)),
    ...columns(L.o, P, [
      ...set(L.a, vadd(vload(at(L.ur)), vload(at(p.bUp)))),
      ...set(L.b, vadd(vload(at(L.ur), 4 * P), vload(at(p.bUp), 4 * P))),
      ...set(L.cdf, vm.normalCdf(get(L.a))),
      // phi(a) = exp(-a^2 / 2) / sqrt(2 pi)
      ...set(L.pdf, vmul(vm.exp(vmul(vmul(get(L.a), get(L.a)), vconst(-0.5))), vconst(1 / Math.sqrt(2 * Math.PI)))),
      ...set(L.g, vload(row(p.dz))),
      ...vstore(at(L.dr), vmul(vmul(get(L.g), get(L.b)), vadd(get(L.cdf), vmul(get(L.a), get(L.pdf))))),
      ...set(L.a, vmul(get(L.a), get(L.cdf))),
      ...vstore(at(L.dr), vmul(get(L.g), get(L.a)), 4 * P),
      ...vstore(row(p.z), vmul(get(L.a), get(L.b))),
    ]),
  ]);
  return f;
}
