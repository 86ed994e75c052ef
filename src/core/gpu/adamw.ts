/**
 * One AdamW update of one parameter as ONE WGSL dispatch on the webgpu backend (about fourteen
 * tfjs ops otherwise, so roughly 13,000 dispatches per step for the reference model's ~960
 * tensors). PyTorch's form, with the gradient scaled first (clipping):
 *   g' = s g; m' = b1 m + (1 - b1) g'; v' = b2 v + (1 - b2) g'^2
 *   p' = p (1 - lr wd) - (lr / bc1) m' / (sqrt(v') / sqrt(bc2) + eps)
 */
import * as tf from '@tensorflow/tfjs-core';
import { runProgram, type GpuProgram } from './device.ts';

const ADAMW = 'XlstmGpuAdamW';
const WG = 256;

const PROGRAM: GpuProgram = {
  key: 'adamw',
  code: /* wgsl */ `
struct U { n: i32, p0: i32, p1: i32, p2: i32, b1: f32, b2: f32, eps: f32, decay: f32, step: f32, sqrtBc2: f32, scale: f32, p3: f32 }
@group(0) @binding(0) var<storage, read_write> pOut: array<f32>;
@group(0) @binding(1) var<storage, read_write> mOut: array<f32>;
@group(0) @binding(2) var<storage, read_write> vOut: array<f32>;
@group(0) @binding(3) var<storage, read> p: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read> m: array<f32>;
@group(0) @binding(6) var<storage, read> v: array<f32>;
@group(0) @binding(7) var<uniform> u: U;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${WG}u;
  if (i >= u32(u.n)) { return; }
  let gi = g[i] * u.scale;
  let m1 = u.b1 * m[i] + (1.0 - u.b1) * gi;
  let v1 = u.b2 * v[i] + (1.0 - u.b2) * gi * gi;
  mOut[i] = m1;
  vOut[i] = v1;
  pOut[i] = p[i] * u.decay - u.step * m1 / (sqrt(v1) / u.sqrtBc2 + u.eps);
}
`,
};

/** Rows of workgroups: a grid folded in two dimensions stays far below the 65,535 per-dimension limit. */
const ROW = 1024;

function grid(n: number): [number, number, number] {
  const groups = Math.ceil(n / WG);
  return [Math.min(groups, ROW), Math.ceil(groups / ROW), 1];
}

tf.registerKernel({
  kernelName: ADAMW,
  backendName: 'webgpu',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { p, g, m, v } = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as AdamwHyper & { t: number };
    const n = p.shape.reduce((x, y) => x * y, 1);
    const floats = [a.b1, a.b2, a.eps, 1 - a.lr * a.weightDecay, a.lr / (1 - a.b1 ** a.t), Math.sqrt(1 - a.b2 ** a.t), a.gradScale, 0];
    return runProgram(backend, PROGRAM, [p, g, m, v], [{ shape: p.shape }, { shape: p.shape }, { shape: p.shape }], [n, 0, 0, 0], grid(n), floats);
  },
});

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

/**
 * The updated parameter and moments after update number `t` (1-based) on the webgpu backend:
 * p, g, m, v of one shape -> new p, m, v (the caller assigns them to its variables).
 */
export function adamwStepGpu(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, t: number, h: AdamwHyper): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  const [p1, m1, v1] = tf.engine().runKernel(ADAMW, { p, g, m, v }, { ...h, t } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { p: p1, m: m1, v: v1 };
}
