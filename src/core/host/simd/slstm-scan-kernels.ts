/**
 * The sLSTM training scan (slstm/scan.ts) in WebAssembly SIMD, one batch row per call, four float32 units at a
 * time, generated for one model's head widths: the forward pass keeps its trace (pre-activations and every
 * state) and the backward pass reads it back. Same equations as scan.ts's JavaScript, in float32.
 */
import { kernelsIn, type Kernels } from './instance.ts';
import { VMath } from './vmath.ts';
import {
  add, f32x4Neg, Fn, get, i32, loop, mul, set, sub, Ty, vadd, vconst, vdiv, vload, vloadSplat, vmax, vmul, vstore, vsub, type Code,
} from './wasm.ts';
import { vand, vgt } from './wasm-more.ts';

export interface ScanWidths {
  readonly nh: number;
  readonly dh: number;
}

/** Whether the kernels cover these widths: a head's units are whole vectors. */
export const scanSimdCovers = (w: ScanWidths): boolean => w.dh % 4 === 0;

/**
 * forwardRow(gx, Rt, pre, c, n, h, m, T): one batch row over T steps. gx and pre are the row's [T, 4H] (gate order
 * i, f, z, o), c, n, h, m its [T + 1, H] states with step 0 the initial one; Rt is R [4, nh, dh, dh] with each
 * head's block transposed ([input, output]), so that four outputs are one vector. Per step, pre = gx + R h_{t-1},
 * then m_t = max(logsigmoid(p_f) + m_{t-1}, p_i), i' = e^(p_i - m_t), f' = e^(logsigmoid(p_f) + m_{t-1} - m_t)
 * (0 where m_{t-1} = -Infinity, as the JavaScript's exp gives), c_t = f' c + i' tanh(p_z), n_t = f' n + i',
 * h_t = sigmoid(p_o) c_t / n_t.
 */
function forwardRow({ nh, dh }: ScanWidths): Fn {
  const H = nh * dh;
  const d4 = dh / 4;
  const f = new Fn('forwardRow', Array(8).fill(Ty.i32), []);
  const [gx, Rt, pre, c, n, h, m, T] = [0, 1, 2, 3, 4, 5, 6, 7];
  const t = f.local(Ty.i32);
  const j = f.local(Ty.i32);
  const i = f.local(Ty.i32);
  const o = f.local(Ty.i32);
  const so = f.local(Ty.i32); // the step's state offset (bytes): t H floats
  const po = f.local(Ty.i32); // its pre-activation offset: t 4H floats
  const hj = f.local(Ty.i32);
  const rp = f.local(Ty.i32);
  const hp = f.local(Ty.i32);
  const hv = f.local(Ty.v128);
  const lm = f.local(Ty.v128);
  const mn = f.local(Ty.v128);
  const pi = f.local(Ty.v128);
  const iw = f.local(Ty.v128);
  const fw = f.local(Ty.v128);
  const cv = f.local(Ty.v128);
  const nv = f.local(Ty.v128);
  const acc = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const vm = new VMath(f);
  const at = (base: number, off: number, inner: number): Code => add(add(get(base), get(off)), get(inner));

  // One gate of head j: dh pre-activations as d4 vectors, R h accumulated over the head's dh inputs.
  const gate = (g: number): Code => [
    ...acc.flatMap((a, p) => set(a, vload(at(gx, po, hj), 4 * g * H + 16 * p))),
    ...set(rp, add(get(Rt), mul(add(i32(g * nh), get(j)), i32(4 * dh * dh)))),
    ...set(hp, at(h, so, hj)),
    ...loop(i, i32(0), i32(dh), 1, [
      ...set(hv, vloadSplat(get(hp))),
      ...acc.flatMap((a, p) => set(a, vadd(get(a), vmul(vload(get(rp), 16 * p), get(hv))))),
      ...set(rp, add(get(rp), i32(4 * dh))),
      ...set(hp, add(get(hp), i32(4))),
    ]),
    ...acc.flatMap((a, p) => vstore(at(pre, po, hj), get(a), 4 * g * H + 16 * p)),
  ];

  const next = 4 * H; // from step t's state to step t + 1's (bytes)
  const unit: Code = [
    ...set(pi, vload(at(pre, po, o))),
    ...set(lm, vadd(vm.logSigmoid(vload(at(pre, po, o), 4 * H)), vload(at(m, so, o)))),
    ...set(mn, vmax(get(lm), get(pi))),
    ...set(iw, vm.exp(vsub(get(pi), get(mn)))),
    ...set(fw, vand(vm.exp(vsub(get(lm), get(mn))), vgt(get(lm), vconst(-Infinity)))),
    ...set(cv, vadd(vmul(get(fw), vload(at(c, so, o))), vmul(get(iw), vm.tanh(vload(at(pre, po, o), 8 * H))))),
    ...set(nv, vadd(vmul(get(fw), vload(at(n, so, o))), get(iw))),
    ...vstore(at(c, so, o), get(cv), next),
    ...vstore(at(n, so, o), get(nv), next),
    ...vstore(at(m, so, o), get(mn), next),
    ...vstore(at(h, so, o), vdiv(vmul(vm.sigmoid(vload(at(pre, po, o), 12 * H)), get(cv)), get(nv)), next),
  ];

  f.body = loop(t, i32(0), get(T), 1, [
    ...set(so, mul(get(t), i32(4 * H))),
    ...set(po, mul(get(t), i32(16 * H))),
    ...loop(j, i32(0), i32(nh), 1, [...set(hj, mul(get(j), i32(4 * dh))), ...gate(0), ...gate(1), ...gate(2), ...gate(3)]),
    ...loop(o, i32(0), i32(4 * H), 16, unit),
  ]);
  return f;
}

/**
 * backwardRow(dy, R, pre, c, n, h, m, dgx, dR, work, T): BPTT over one batch row's trace from forwardRow (the
 * stabiliser m held constant, as in scan.ts). dy [T, H] is the upstream gradient of h; dgx [T, 4H] receives
 * dloss/dpre; dR [4, nh, dh, dh] (R's layout) is set to this row's sum of dpre h_{t-1}^T; work holds the
 * gradients carried to the step before, dh_rec, dc and dn ([H] each), and is zeroed first.
 */
function backwardRow({ nh, dh }: ScanWidths): Fn {
  const H = nh * dh;
  const d4 = dh / 4;
  const f = new Fn('backwardRow', Array(11).fill(Ty.i32), []);
  const [dy, R, pre, c, n, h, m, dgx, dR, work, T] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const tt = f.local(Ty.i32);
  const o = f.local(Ty.i32);
  const j = f.local(Ty.i32);
  const k = f.local(Ty.i32);
  const so = f.local(Ty.i32);
  const po = f.local(Ty.i32);
  const hj = f.local(Ty.i32);
  const ro = f.local(Ty.i32);
  const gp = f.local(Ty.i32);
  const [pi, pf, pz, lm, iw, fw, tz, sg, nc, q, dhv, dq, dcu, dnu, s] = Array.from({ length: 15 }, () => f.local(Ty.v128));
  const acc = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const hv = Array.from({ length: d4 }, () => f.local(Ty.v128));
  const vm = new VMath(f);
  const at = (base: number, off: number, inner: number): Code => add(add(get(base), get(off)), get(inner));
  const one = vconst(1);
  const cur = 4 * H; // from step t - 1's state to step t's (bytes)
  const [dhRec, dc, dn] = [0, 4 * H, 8 * H]; // offsets in work

  const unit: Code = [
    ...set(pi, vload(at(pre, po, o))),
    ...set(pf, vload(at(pre, po, o), 4 * H)),
    ...set(pz, vload(at(pre, po, o), 8 * H)),
    ...set(lm, vadd(vm.logSigmoid(get(pf)), vload(at(m, so, o)))),
    ...set(iw, vm.exp(vsub(get(pi), vload(at(m, so, o), cur)))),
    // f' = 0 where m_{t-1} = -Infinity (the first step): no gradient reaches the forget gate there.
    ...set(fw, vand(vm.exp(vsub(get(lm), vload(at(m, so, o), cur))), vgt(get(lm), vconst(-Infinity)))),
    ...set(tz, vm.tanh(get(pz))),
    ...set(sg, vm.sigmoid(vload(at(pre, po, o), 12 * H))),
    ...set(nc, vload(at(n, so, o), cur)),
    ...set(q, vdiv(vload(at(c, so, o), cur), get(nc))),
    ...set(dhv, vadd(vload(at(dy, so, o)), vload(add(get(work), get(o)), dhRec))),
    ...vstore(at(dgx, po, o), vmul(vmul(vmul(get(dhv), get(q)), get(sg)), vsub(one, get(sg))), 12 * H),
    ...set(dq, vmul(get(dhv), get(sg))),
    ...set(dcu, vadd(vload(add(get(work), get(o)), dc), vdiv(get(dq), get(nc)))),
    ...set(dnu, vsub(vload(add(get(work), get(o)), dn), vdiv(vmul(get(dq), get(q)), get(nc)))),
    ...vstore(at(dgx, po, o), vmul(vmul(get(dcu), get(iw)), vsub(one, vmul(get(tz), get(tz)))), 8 * H),
    ...vstore(at(dgx, po, o), vmul(vadd(vmul(get(dcu), get(tz)), get(dnu)), get(iw))),
    // dfw sigmoid(-p_f) f', zero with f' even where dfw is not finite.
    ...set(s, vadd(vmul(get(dcu), vload(at(c, so, o))), vmul(get(dnu), vload(at(n, so, o))))),
    ...vstore(at(dgx, po, o), vand(vmul(vmul(get(s), get(fw)), vm.sigmoid(f32x4Neg(get(pf)))), vgt(get(fw), vconst(0))), 4 * H),
    ...vstore(add(get(work), get(o)), vmul(get(dcu), get(fw)), dc),
    ...vstore(add(get(work), get(o)), vmul(get(dnu), get(fw)), dn),
  ];

  // Head j: dh_rec = R^T dpre over its dh outputs of each gate, and dR += dpre h_{t-1}^T; both four inputs per vector.
  const gate = (g: number): Code => [
    ...set(gp, add(at(dgx, po, hj), i32(4 * g * H))),
    ...set(ro, mul(add(i32(g * nh), get(j)), i32(4 * dh * dh))),
    ...loop(k, i32(0), i32(dh), 1, [
      ...set(s, vloadSplat(get(gp))),
      ...acc.flatMap((a, p) => set(a, vadd(get(a), vmul(vload(add(get(R), get(ro)), 16 * p), get(s))))),
      ...hv.flatMap((x, p) => vstore(add(get(dR), get(ro)), vadd(vload(add(get(dR), get(ro)), 16 * p), vmul(get(s), get(x))), 16 * p)),
      ...set(gp, add(get(gp), i32(4))),
      ...set(ro, add(get(ro), i32(4 * dh))),
    ]),
  ];
  const head: Code = [
    ...set(hj, mul(get(j), i32(4 * dh))),
    ...acc.flatMap((a) => set(a, vconst(0))),
    ...hv.flatMap((x, p) => set(x, vload(at(h, so, hj), 16 * p))),
    ...gate(0),
    ...gate(1),
    ...gate(2),
    ...gate(3),
    ...acc.flatMap((a, p) => vstore(add(get(work), get(hj)), get(a), dhRec + 16 * p)),
  ];

  f.body = [
    ...loop(o, i32(0), i32(16 * H * dh), 16, vstore(add(get(dR), get(o)), vconst(0))),
    ...loop(o, i32(0), i32(12 * H), 16, vstore(add(get(work), get(o)), vconst(0))),
    ...loop(tt, i32(1), add(get(T), i32(1)), 1, [
      // t = T - tt, from the last step down
      ...set(so, mul(sub(get(T), get(tt)), i32(4 * H))),
      ...set(po, mul(sub(get(T), get(tt)), i32(16 * H))),
      ...loop(o, i32(0), i32(4 * H), 16, unit),
      ...loop(j, i32(0), i32(nh), 1, head),
    ]),
  ];
  return f;
}

/** The scan kernels for these widths in `memory`, compiled on first use; null where WebAssembly SIMD is unavailable. */
export function scanKernels(memory: WebAssembly.Memory, w: ScanWidths): Kernels | null {
  return kernelsIn(memory, `slstmScan:${w.nh},${w.dh}`, () => [forwardRow(w), backwardRow(w)]);
}
