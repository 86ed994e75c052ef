/**
 * AdamW updates of parameters as WGSL dispatches on the webgpu backend, two parameters per dispatch
 * (a step of the reference model's ~900 tensors is then ~450 dispatches, not 900, and not the ~13,000
 * of fourteen tfjs ops each; two is what a dispatch can bind: 7 buffers each plus the uniforms, of 16).
 * PyTorch's form, with the gradient scaled first (clipping):
 *   g' = s g; m' = b1 m + (1 - b1) g'; v' = b2 v + (1 - b2) g'^2
 *   p' = p (1 - lr wd) - (lr / bc1) m' / (sqrt(v') / sqrt(bc2) + eps)
 */
import * as tf from '@tensorflow/tfjs-core';
import { runProgram, type GpuProgram } from './device.ts';

const ADAMW = ['XlstmGpuAdamW', 'XlstmGpuAdamW2'] as const;
const WG = 256;

/** The update of `k` parameters (1 or 2): outputs p', m', v' per parameter, then inputs p, g, m, v per parameter. */
function program(k: 1 | 2): GpuProgram {
  const out = (j: number) => ['p', 'm', 'v'].map((x, i) => `@group(0) @binding(${3 * j + i}) var<storage, read_write> ${x}Out${j}: array<f32>;`).join('\n');
  const inp = (j: number) => ['p', 'g', 'm', 'v'].map((x, i) => `@group(0) @binding(${3 * k + 4 * j + i}) var<storage, read> ${x}${j}: array<f32>;`).join('\n');
  const update = (j: number) => `
  if (i < u32(u.n${j})) {
    let gi = g${j}[i] * u.scale;
    let m1 = u.b1 * m${j}[i] + (1.0 - u.b1) * gi;
    let v1 = u.b2 * v${j}[i] + (1.0 - u.b2) * gi * gi;
    mOut${j}[i] = m1;
    vOut${j}[i] = v1;
    pOut${j}[i] = p${j}[i] * u.decay${j} - u.step * m1 / (sqrt(v1) / u.sqrtBc2 + u.eps);
  }`;
  const js = k === 1 ? [0] : [0, 1];
  return {
    key: `adamw-${k}`,
    code: /* wgsl */ `
struct U { n0: i32, n1: i32, p0: i32, p1: i32, b1: f32, b2: f32, eps: f32, decay0: f32, decay1: f32, step: f32, sqrtBc2: f32, scale: f32 }
${js.map(out).join('\n')}
${js.map(inp).join('\n')}
@group(0) @binding(${7 * k}) var<uniform> u: U;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${WG}u;
  ${js.map(update).join('\n')}
}
`,
  };
}

const PROGRAMS = { 1: program(1), 2: program(2) } as const;

/** Rows of workgroups: a grid folded in two dimensions stays far below the 65,535 per-dimension limit. */
const ROW = 1024;

function grid(n: number): [number, number, number] {
  const groups = Math.ceil(n / WG);
  return [Math.min(groups, ROW), Math.ceil(groups / ROW), 1];
}

const size = (t: tf.TensorInfo) => t.shape.reduce((x, y) => x * y, 1);

for (const k of [1, 2] as const) {
  tf.registerKernel({
    kernelName: ADAMW[k - 1],
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const inp = inputs as Record<string, tf.TensorInfo>;
      const a = attrs as unknown as AdamwHyper & { t: number; decay1: number };
      const ps = k === 1 ? [inp.p0] : [inp.p0, inp.p1];
      const n = ps.map(size);
      const floats = [a.b1, a.b2, a.eps, 1 - a.lr * a.weightDecay, 1 - a.lr * (k === 2 ? a.decay1 : 0), a.lr / (1 - a.b1 ** a.t), Math.sqrt(1 - a.b2 ** a.t), a.gradScale];
      const ins = ps.flatMap((_, j) => [inp[`p${j}`], inp[`g${j}`], inp[`m${j}`], inp[`v${j}`]]);
      const outs = ps.flatMap((p) => [{ shape: p.shape }, { shape: p.shape }, { shape: p.shape }]);
      return runProgram(backend, PROGRAMS[k], ins, outs, [n[0], n[1] ?? 0, 0, 0], grid(Math.max(...n)), floats);
    },
  });
}

export interface AdamwHyper {
  readonly lr: number;
  readonly b1: number;
  readonly b2: number;
  readonly eps: number;
  /** 0 for parameters without weight decay. */
  readonly weightDecay: number;
  /** Multiplies the gradient first (clipping); 1 for none. */
  readonly gradScale: number;
}

export interface AdamwSlot {
  readonly p: tf.Tensor;
  readonly g: tf.Tensor;
  readonly m: tf.Tensor;
  readonly v: tf.Tensor;
  /** This parameter's decay, overriding the hyperparameters' (0: none). */
  readonly weightDecay?: number;
}

/**
 * The updated parameters and moments after update number `t` (1-based) on the webgpu backend, in the order of
 * `slots` (the caller assigns them to its variables); two parameters per dispatch.
 */
export function adamwStepsGpu(slots: readonly AdamwSlot[], t: number, h: AdamwHyper): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor }[] {
  const out: { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor }[] = [];
  for (let j = 0; j < slots.length; j += 2) {
    const pair = slots.slice(j, j + 2);
    const inputs: tf.NamedTensorMap = {};
    pair.forEach((s, i) => Object.assign(inputs, { [`p${i}`]: s.p, [`g${i}`]: s.g, [`m${i}`]: s.m, [`v${i}`]: s.v }));
    const attrs = { ...h, t, weightDecay: pair[0].weightDecay ?? h.weightDecay, decay1: pair[1]?.weightDecay ?? h.weightDecay };
    const r = tf.engine().runKernel(ADAMW[pair.length - 1], inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    pair.forEach((_, i) => out.push({ p: r[3 * i], m: r[3 * i + 1], v: r[3 * i + 2] }));
  }
  return out;
}
