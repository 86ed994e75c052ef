/**
 * Raw compute dispatches on tfjs's webgpu backend for the fused WGSL kernels: several outputs per
 * dispatch (tfjs programs have one), recorded into the backend's own command encoder so that they
 * are ordered with every tfjs op around them. Reaches into the backend by duck typing (written
 * against @tensorflow/tfjs-backend-webgpu 4.22), so core still imports only tfjs-core.
 */
import * as tf from '@tensorflow/tfjs-core';

/** WebGPU's GPUBufferUsage / GPUMapMode bits (fixed by the spec). */
const USAGE_UNIFORM = 0x40;

/* eslint-disable @typescript-eslint/no-explicit-any -- Dawn's objects are opaque here */
type Gpu = any;

interface TensorData {
  resource: Gpu | null;
  values: unknown;
  dtype: tf.DataType;
  shape: number[];
  /** Tensors sharing this data (a reshape or a clone shares it). */
  refCount: number;
}

/** The members of tfjs-backend-webgpu 4.22's WebGPUBackend these kernels use. */
export interface WebgpuBackendLike {
  device: Gpu;
  tensorMap: { get(id: tf.DataId): TensorData };
  commandEncoder: Gpu | null;
  computePassEncoder: Gpu | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  uniformPendingDisposal: Gpu[];
  bufferManager: { acquireBuffer(size: number, usage: number): Gpu };
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  uploadToGPU(dataId: tf.DataId): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/**
 * How kernels are generated for the adapter in use. `opaqueLoopBounds`: loop bounds are read from
 * uniforms instead of being constants, for software adapters: Mesa's llvmpipe spends seconds
 * fully unrolling constant loops of the decode step, while a GPU compiler profits from them.
 */
export const gpuOptions = { opaqueLoopBounds: false };

/** Set by the backend loader once the adapter is known. */
export function configureGpuKernels(options: { softwareAdapter: boolean }): void {
  gpuOptions.opaqueLoopBounds = options.softwareAdapter;
}

/** Whether the active backend is tfjs's webgpu (the fused WGSL kernels apply). */
export function onWebgpu(): boolean {
  return tf.getBackend() === 'webgpu';
}

const MEMBERS = ['device', 'tensorMap', 'makeTensorInfo', 'uploadToGPU', 'ensureCommandEncoderReady', 'endComputePassEncoder', 'submitQueue', 'bufferManager'];

/** The webgpu backend object, checked for the internals these kernels rely on. */
export function webgpuBackend(backend: unknown = tf.backend()): WebgpuBackendLike {
  const b = backend as unknown as Record<string, unknown>;
  const missing = MEMBERS.filter((m) => b[m] === undefined);
  if (missing.length > 0) {
    throw new Error(
      `fused WebGPU kernels expected the webgpu backend of @tensorflow/tfjs-backend-webgpu 4.22, but it lacks ${missing.join(', ')}. Hint: install version 4.22.0.`,
    );
  }
  return backend as unknown as WebgpuBackendLike;
}

/** A WGSL compute shader: outputs bound first (read_write), then inputs (read), then one uniform block. */
export interface GpuProgram {
  /** Identifies the source (it is generated per model size): the pipeline cache key. */
  readonly key: string;
  readonly code: string;
}

interface Pipeline {
  readonly pipeline: Gpu;
  /** Asked for once: getBindGroupLayout makes a new binding object on every call. */
  readonly layout: Gpu;
}

const pipelines = new WeakMap<object, Map<string, Pipeline>>();

function pipelineFor(device: Gpu, program: GpuProgram): Pipeline {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, (cache = new Map()));
  let p = cache.get(program.key);
  if (!p) {
    const module = device.createShaderModule({ code: program.code, label: program.key });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: program.key });
    p = { pipeline, layout: pipeline.getBindGroupLayout(0) };
    cache.set(program.key, p);
  }
  return p;
}

export interface OutputSpec {
  readonly shape: number[];
  readonly dtype?: 'float32' | 'int32';
}

/**
 * Runs one dispatch of `program` over `workgroups` and returns its outputs as new tensor infos
 * (owned by the caller, e.g. returned from a kernelFunc). `uniforms` fill the program's uniform
 * block as consecutive i32 values, then `floats` as f32 values.
 */
export function runProgram(
  backend: unknown,
  program: GpuProgram,
  inputs: readonly tf.TensorInfo[],
  outputs: readonly OutputSpec[],
  uniforms: readonly number[],
  workgroups: [number, number, number],
  floats: readonly number[] = [],
): tf.TensorInfo[] {
  const be = webgpuBackend(backend);
  const outs = outputs.map((o) => be.makeTensorInfo(o.shape, o.dtype ?? 'float32'));
  for (const t of [...outs, ...inputs]) be.uploadToGPU(t.dataId);
  const buffers = [...outs, ...inputs].map((t) => be.tensorMap.get(t.dataId).resource);
  const u = new Int32Array(Math.max(4, Math.ceil((uniforms.length + floats.length) / 4) * 4));
  u.set(uniforms);
  new Float32Array(u.buffer).set(floats, uniforms.length);
  const uniform = be.bufferManager.acquireBuffer(u.byteLength, USAGE_UNIFORM | 0x08 /* COPY_DST */);
  be.device.queue.writeBuffer(uniform, 0, u.buffer, 0, u.byteLength);
  // Released with tfjs's own uniforms once the commands are submitted.
  be.uniformPendingDisposal.push(uniform);
  const { pipeline, layout } = pipelineFor(be.device, program);
  const entries = buffers.map((buffer, binding) => ({ binding, resource: { buffer } }));
  entries.push({ binding: buffers.length, resource: { buffer: uniform } });
  const bindGroup = be.device.createBindGroup({ layout, entries });
  // Buffers referenced by recorded commands must not return to the pool before submission.
  for (const t of [...outs, ...inputs]) be.commandQueueOwnedIds.add(t.dataId as object);
  be.ensureCommandEncoderReady();
  if (!be.computePassEncoder) be.computePassEncoder = be.commandEncoder.beginComputePass({});
  be.computePassEncoder.setPipeline(pipeline);
  be.computePassEncoder.setBindGroup(0, bindGroup);
  be.computePassEncoder.dispatchWorkgroups(...workgroups);
  be.dispatchCountInPass++;
  if (be.dispatchCountInPass >= (tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number)) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
  return outs;
}

/**
 * WGSL declaring a private f32 array and zeroing it with explicit stores. WGSL zero-initialises a
 * `var a: array<f32, n>;` at each declaration, but NVIDIA's Vulkan compiler (an H200, driver 580)
 * kept the previous loop iteration's values in such arrays: accumulators declared inside a loop over
 * row sub-tiles summed across sub-tiles (training at B = 32 went wrong while B = 16 was right).
 */
export function zeroedArray(name: string, n: number | string): string {
  return `var ${name}: array<f32, ${n}>; for (var zi = 0u; zi < ${n}u; zi++) { ${name}[zi] = 0.0; }`;
}

/** WGSL helpers shared by the kernels: stable logsigmoid/sigmoid/tanh/silu and erf (A&S 7.1.26). */
export const WGSL_MATH = /* wgsl */ `
fn sigm(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn logsig(x: f32) -> f32 {
  // -softplus(-x), finite for large |x|
  return min(x, 0.0) - log(1.0 + exp(-abs(x)));
}
fn tanh_(x: f32) -> f32 {
  let t = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - t) / (1.0 + t);
}
fn silu(x: f32) -> f32 { return x * sigm(x); }
fn erf_(x: f32) -> f32 {
  // Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7.
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return sign(x) * y;
}
fn gelu(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_(x * 0.70710678118654752)); }
`;
