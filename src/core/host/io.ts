/**
 * Direct access to the cpu and wasm backends' memory for the fused host kernels: zero-copy
 * float32 views, allocation, disposal, and the backend's own matMul called without the engine
 * (no tape, no bookkeeping: a decode step is hundreds of such calls).
 */
import * as tf from '@tensorflow/tfjs-core';

type TensorInfo = tf.TensorInfo;

export interface HostIO {
  /** A float32 view of the tensor's data; on wasm it is invalidated by the next allocation. */
  view(t: TensorInfo): Float32Array;
  alloc(shape: number[]): TensorInfo;
  free(t: TensorInfo): void;
  /** a [M, K] x b [K, N] -> [M, N] */
  matMul(a: TensorInfo, b: TensorInfo): TensorInfo;
}

interface CpuLike {
  data: { get(id: tf.DataId): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): TensorInfo;
  disposeData(id: tf.DataId, force?: boolean): boolean;
}

interface WasmLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  disposeData(id: tf.DataId, force?: boolean): boolean;
}

function matMulVia(backendName: string, backend: tf.KernelBackend): HostIO['matMul'] {
  const kernel = tf.getKernel('BatchMatMul', backendName);
  if (!kernel) throw new Error(`host kernels: ${backendName} has no BatchMatMul kernel`);
  return (a, b) =>
    kernel.kernelFunc({ inputs: { a, b }, backend, attrs: { transposeA: false, transposeB: false } as unknown as tf.NamedAttrMap }) as TensorInfo;
}

export function hostIO(backendName: string, backend: tf.KernelBackend): HostIO {
  const matMul = matMulVia(backendName, backend);
  if (backendName === 'wasm') {
    const w = backend as unknown as WasmLike;
    return {
      view: (t) => w.typedArrayFromHeap(t),
      alloc: (shape) => w.makeOutput(shape, 'float32'),
      free: (t) => void w.disposeData(t.dataId, true),
      matMul,
    };
  }
  const c = backend as unknown as CpuLike;
  return {
    view: (t) => c.data.get(t.dataId).values as Float32Array,
    alloc: (shape) => c.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((a, b) => a * b, 1))),
    free: (t) => void c.disposeData(t.dataId, true),
    matMul,
  };
}

/** Backends whose memory the host kernels can address. */
export const HOST_BACKENDS = ['cpu', 'wasm'] as const;

/** The temporaries of one kernel call: `tmp` registers one, `free` releases them all at the end. */
export function scratch(io: HostIO): { tmp: (t: TensorInfo) => TensorInfo; free: () => void } {
  const temps: TensorInfo[] = [];
  return {
    tmp: (t) => (temps.push(t), t),
    free: () => temps.forEach((t) => io.free(t)),
  };
}
