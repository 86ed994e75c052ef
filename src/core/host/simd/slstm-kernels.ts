/**
 * The sLSTM decode step's per-row work in WebAssembly SIMD over the wasm backend's heap, four float32 units at a
 * time, generated for one model's widths: the causal conv with silu, the recurrent cell with GroupNorm, and the
 * block's LayerNorm and residual sum. Same
 * equations as the JavaScript loops of slstm-step.ts (and slstm/scan.ts), in float32.
 */
import { convFn, convRunFn } from './conv-kernel.ts';
import { kernelsIn, type Kernels } from './instance.ts';
import { normFn, residualFn } from './row-ops.ts';
import { interleave, VMath } from './vmath.ts';
import {
  add, f32, fadd, fdiv, Fn, fsqrt, get, i32, loop, mul, set, splat, Ty, vadd, vdiv, vload, vloadSplat, vmax, vmul,
  vstore, vsub, type Code,
} from './wasm.ts';

/** Vectors of units whose activations are computed side by side in the cell. */
const UNROLL = 8;

export interface SlstmWidths {
  readonly nh: number;
  readonly dh: number;
  readonly d: number;
  /** the MLP's width */
  readonly P: number;
  /** conv taps; 0 for no conv */
  readonly k: number;
}

/** Whether the SIMD kernels cover these widths: whole groups of four units in every row they touch. */
export function slstmSimdCovers(w: SlstmWidths): boolean {
  return w.dh % 4 === 0 && w.d % 4 === 0;
}

/** The kernels for `w` in `heap`, compiled on first use; null where WebAssembly SIMD is unavailable. */
export function slstmKernels(heap: WebAssembly.Memory, w: SlstmWidths): Kernels | null {
  const { nh, dh, d, P, k } = w;
  const shape = { C: d, taps: k - 1, xStride: d, bias: false };
  const conv = () => (k > 0 ? [convFn(shape), convRunFn(shape)] : []);
  return kernelsIn(heap, `slstm:${nh},${dh},${d},${P},${k}`, () => [...conv(), cellFn(w, false), cellFn(w, true), mlpFn(P), normFn(d), residualFn(d)]);
}

/**
 * mlp(up, ups, bUp, z, zs, B): z = gelu(a) * b per row, where [a | b] = up + bUp ([B, 2P], rows ups floats apart),
 * for the first 4 floor(P/4) columns of z ([B, P], rows zs floats apart); the caller does the rest.
 */
function mlpFn(P: number): Fn {
  const f = new Fn('mlp', Array(6).fill(Ty.i32), []);
  const [up, ups, bUp, z, zs, B] = [0, 1, 2, 3, 4, 5];
  const r = f.local(Ty.i32);
  const o = f.local(Ty.i32);
  const ur = f.local(Ty.i32);
  const a = f.local(Ty.v128);
  const vm = new VMath(f);
  const at = (base: number) => add(get(base), get(o));
  f.body = loop(r, i32(0), get(B), 1, [
    ...set(ur, add(get(up), mul(get(r), mul(get(ups), i32(4))))),
    ...loop(o, i32(0), i32(16 * Math.floor(P / 4)), 16, [
      ...set(a, vadd(vload(at(ur)), vload(at(bUp)))),
      ...vstore(add(add(get(z), mul(get(r), mul(get(zs), i32(4)))), get(o)), vmul(vm.gelu(get(a)), vadd(vload(at(ur), 4 * P), vload(at(bUp), 4 * P)))),
    ]),
  ]);
  return f;
}

/**
 * cell(g1, g2, bG, Rt, c0, n0, h0, m0, c1, n1, h1, m1, outW, outB, y, work, B): per row, the pre-activations
 * p = [g1 | g2] + bG + R h0 in gate order i, f, z, o (Rt [4, nh, dh(in), dh(out)]: R with each block transposed,
 * so that four outputs are one vector), then m1 = max(logsigmoid(p_f) + m0, p_i), i' = exp(p_i - m1),
 * f' = exp(logsigmoid(p_f) + m0 - m1), c1 = f' c0 + i' tanh(p_z), n1 = f' n0 + i', h1 = sigmoid(p_o) c1 / n1,
 * and y = GroupNorm(h1). `work` holds one row's p [4H].
 *
 * cellRun (`run`), same arguments: B positions of ONE row in order, its state updated in place (c0 = c1 and so
 * on): position t's inputs and outputs are rows t of g1, g2 and y.
 */
function cellFn({ nh, dh }: SlstmWidths, run: boolean): Fn {
  const H = nh * dh;
  const H4 = 4 * H;
  const D4 = 4 * dh;
  const d4 = dh / 4;
  const f = new Fn(run ? 'cellRun' : 'cell', Array(17).fill(Ty.i32), []);
  const [g1, g2, bG, Rt, c0, n0, h0, m0, c1, n1, h1, m1, outW, outB, y, work, B] = Array.from({ length: 17 }, (_, i) => i);
  const L = {
    r: f.local(Ty.i32), j: f.local(Ty.i32), i: f.local(Ty.i32), o: f.local(Ty.i32),
    rs: f.local(Ty.i32), ss: f.local(Ty.i32), hj: f.local(Ty.i32), rp: f.local(Ty.i32), hp: f.local(Ty.i32),
    hv: f.local(Ty.v128), cv: f.local(Ty.v128), nv: f.local(Ty.v128), sum: f.local(Ty.v128),
    mean: f.local(Ty.v128), ginv: f.local(Ty.v128),
  };
  const acc = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const vm = new VMath(f);
  const at = (base: number, off: number) => add(get(base), get(off));

  // One gate of one head: dh pre-activations as d4 vectors, R h accumulated over the head's dh inputs.
  const gate = (g: number): Code => {
    const src = g < 2 ? g1 : g2;
    const code: Code = [];
    for (let p = 0; p < d4; p++) {
      const gx = vload(add(add(get(src), mul(get(L.r), i32(2 * H4))), get(L.hj)), (g % 2) * H4 + 16 * p);
      code.push(...set(acc[p], vadd(gx, vload(at(bG, L.hj), g * H4 + 16 * p))));
    }
    const step: Code = [...set(L.hv, vloadSplat(get(L.hp)))];
    for (let p = 0; p < d4; p++) step.push(...set(acc[p], vadd(get(acc[p]), vmul(vload(get(L.rp), 16 * p), get(L.hv)))));
    step.push(...set(L.rp, add(get(L.rp), i32(D4))), ...set(L.hp, add(get(L.hp), i32(4))));
    code.push(
      ...set(L.rp, add(get(Rt), mul(add(i32(g * nh), get(L.j)), i32(dh * D4)))),
      ...set(L.hp, add(add(get(h0), get(L.ss)), get(L.hj))),
      ...loop(L.i, i32(0), i32(dh), 1, step),
    );
    for (let p = 0; p < d4; p++) code.push(...vstore(at(work, L.hj), get(acc[p]), g * H4 + 16 * p));
    return code;
  };

  // The activations in passes over all units, each pass one function UNROLL vectors at a time with their steps
  // interleaved (vmath.ts interleave), in place in `work`: logsigmoid of f, tanh of z, sigmoid of o. Mixed in one
  // pass, the three functions' temporaries outnumbered the registers, and logsigmoid's long chain set the pace.
  const sms = Array.from({ length: 2 * UNROLL }, () => new VMath(f));
  const V = (n: number) => Array.from({ length: n }, () => f.local(Ty.v128));
  const [out, it, lm, mn, iw, fw] = Array.from({ length: 6 }, () => V(UNROLL));
  const w = (g: number, i: number) => vload(at(work, L.o), g * H4 + 16 * i);
  const activation = (g: number, steps: (vm: VMath, x: Code, out: number) => Code[]) => (U: number): Code => [
    ...interleave(Array.from({ length: U }, (_, i) => steps(sms[i], w(g, i), out[i]))),
    ...Array.from({ length: U }, (_, i) => vstore(at(work, L.o), get(out[i]), g * H4 + 16 * i)).flat(),
  ];
  // The state update from the activated gates, U vectors of units from o.
  const units = (U: number): Code => {
    const state = (base: number, i: number) => add(at(base, L.ss), add(get(L.o), i32(16 * i)));
    const code: Code = [];
    for (let i = 0; i < U; i++) {
      code.push(...set(it[i], w(0, i)), ...set(lm[i], vadd(w(1, i), vload(state(m0, i)))), ...set(mn[i], vmax(get(lm[i]), get(it[i]))));
    }
    // Both exponents are <= 0 by the choice of mn.
    code.push(...interleave(Array.from({ length: U }, (_, i) => [
      sms[2 * i].expSteps(vsub(get(it[i]), get(mn[i])), iw[i]), sms[2 * i + 1].expSteps(vsub(get(lm[i]), get(mn[i])), fw[i]),
    ]).flat()));
    for (let i = 0; i < U; i++) {
      code.push(
        ...set(L.cv, vadd(vmul(get(fw[i]), vload(state(c0, i))), vmul(get(iw[i]), w(2, i)))),
        ...set(L.nv, vadd(vmul(get(fw[i]), vload(state(n0, i))), get(iw[i]))),
        ...vstore(state(c1, i), get(L.cv)),
        ...vstore(state(n1, i), get(L.nv)),
        ...vstore(state(m1, i), get(mn[i])),
        ...vstore(state(h1, i), vdiv(vmul(w(3, i), get(L.cv)), get(L.nv))),
      );
    }
    return code;
  };
  const whole = Math.floor(H / (4 * UNROLL)) * 16 * UNROLL;
  const overUnits = (body: (U: number) => Code): Code => [
    ...loop(L.o, i32(0), i32(whole), 16 * UNROLL, body(UNROLL)),
    ...loop(L.o, i32(whole), i32(H4), 16, body(1)),
  ];

  // GroupNorm of one head of h1 (as stored, float32) into y.
  const hAt = () => add(at(h1, L.ss), get(L.hj));
  const norm: Code = [];
  for (let p = 0; p < d4; p++) norm.push(...set(L.sum, p === 0 ? vload(hAt()) : vadd(get(L.sum), vload(hAt(), 16 * p))));
  norm.push(...set(L.mean, splat(fdiv(vm.hsum(get(L.sum)), f32(dh)))));
  for (let p = 0; p < d4; p++) {
    const c = vsub(vload(hAt(), 16 * p), get(L.mean));
    norm.push(...set(L.hv, c), ...set(L.sum, p === 0 ? vmul(get(L.hv), get(L.hv)) : vadd(get(L.sum), vmul(get(L.hv), get(L.hv)))));
  }
  norm.push(...set(L.ginv, splat(fdiv(f32(1), fsqrt(fadd(fdiv(vm.hsum(get(L.sum)), f32(dh)), f32(1e-5)))))));
  for (let p = 0; p < d4; p++) {
    const gn = vadd(vmul(vmul(vsub(vload(hAt(), 16 * p), get(L.mean)), get(L.ginv)), vload(at(outW, L.hj), 16 * p)), vload(at(outB, L.hj), 16 * p));
    norm.push(...vstore(add(at(y, L.rs), get(L.hj)), gn, 16 * p));
  }

  f.body = loop(L.r, i32(0), get(B), 1, [
    ...set(L.rs, mul(get(L.r), i32(H4))),
    // A run's positions share one state row.
    ...set(L.ss, run ? i32(0) : get(L.rs)),
    ...loop(L.j, i32(0), i32(nh), 1, [...set(L.hj, mul(get(L.j), i32(D4))), ...gate(0), ...gate(1), ...gate(2), ...gate(3)]),
    ...overUnits(activation(1, (vm, x, o) => vm.logSigmoidSteps(x, o))),
    ...overUnits(activation(2, (vm, x, o) => vm.tanhSteps(x, o))),
    ...overUnits(activation(3, (vm, x, o) => vm.sigmoidSteps(x, o))),
    ...overUnits(units),
    ...loop(L.j, i32(0), i32(nh), 1, [...set(L.hj, mul(get(L.j), i32(D4))), ...norm]),
  ]);
  return f;
}
