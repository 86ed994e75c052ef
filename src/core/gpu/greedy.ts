/**
 * Greedy choice on the device: per row of logits [B, V], the argmax (lowest id among equal
 * maxima, as sampleToken) and its log-probability, in one dispatch. Only B ids and B floats come
 * back to the host instead of B x V logits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { runProgram, type GpuProgram } from './device.ts';

const GREEDY = 'XlstmGpuGreedy';
const WG = 256;

const PROGRAM: GpuProgram = {
  key: 'greedy',
  code: /* wgsl */ `
struct Dims { B: i32, V: i32, p0: i32, p1: i32 }
@group(0) @binding(0) var<storage, read_write> ids: array<i32>;
@group(0) @binding(1) var<storage, read_write> logprobs: array<f32>;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<uniform> u: Dims;
const WG = ${WG}u;
var<workgroup> bestV: array<f32, ${WG}>;
var<workgroup> bestI: array<i32, ${WG}>;
var<workgroup> sumE: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  if (i32(row) >= u.B) { return; }
  let V = u32(u.V);
  let base = row * V;
  // Each thread: running max (first index wins ties) and an online sum of exp(x - max).
  var m = -3.4e38; var mi = -1; var s = 0.0;
  for (var j = lid; j < V; j += WG) {
    let x = logits[base + j];
    if (x > m) { s = s * exp(m - x) + 1.0; m = x; mi = i32(j); } else { s += exp(x - m); }
  }
  bestV[lid] = m; bestI[lid] = mi; sumE[lid] = s;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) {
      let m1 = bestV[lid]; let m2 = bestV[lid + w];
      let i1 = bestI[lid]; let i2 = bestI[lid + w];
      let mm = max(m1, m2);
      var s1 = 0.0; var s2 = 0.0;
      if (i1 >= 0) { s1 = sumE[lid] * exp(m1 - mm); }
      if (i2 >= 0) { s2 = sumE[lid + w] * exp(m2 - mm); }
      sumE[lid] = s1 + s2;
      if (i2 >= 0 && (i1 < 0 || m2 > m1 || (m2 == m1 && i2 < i1))) { bestV[lid] = m2; bestI[lid] = i2; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    ids[row] = bestI[0];
    logprobs[row] = -log(sumE[0]);
  }
}
`,
};

tf.registerKernel({
  kernelName: GREEDY,
  backendName: 'webgpu',
  kernelFunc: ({ inputs, backend }) => {
    const { logits } = inputs as Record<string, tf.TensorInfo>;
    const [B, V] = logits.shape;
    return runProgram(backend, PROGRAM, [logits], [{ shape: [B], dtype: 'int32' }, { shape: [B] }], [B, V], [B, 1, 1]);
  },
});

/**
 * Greedy tokens of logits [B, V]: ids [B] int32 and their log-probabilities [B] under the
 * softmax of the raw logits. One fused dispatch on webgpu; argMax and a logsumexp elsewhere.
 */
export function greedyTokens(logits: tf.Tensor2D): { ids: tf.Tensor1D; logprobs: tf.Tensor1D } {
  if (tf.getBackend() === 'webgpu') {
    const [ids, logprobs] = tf.engine().runKernel(GREEDY, { logits }) as tf.Tensor[];
    return { ids: ids as tf.Tensor1D, logprobs: logprobs as tf.Tensor1D };
  }
  return tf.tidy(() => {
    const ids = tf.argMax(logits, 1) as tf.Tensor1D;
    const max = tf.max(logits, 1);
    const logZ = tf.add(tf.log(tf.sum(tf.exp(tf.sub(logits, tf.expandDims(max, 1))), 1)), max);
    return { ids, logprobs: tf.sub(max, logZ) as tf.Tensor1D };
  });
}
