/**
 * Direct access to the cpu and wasm backends' memory for the fused host kernels: zero-copy
 * float32 views, allocation, disposal, and the backend's own matMul called without the engine
 * (no tape, no bookkeeping: a decode step is hundreds of such calls).
 */
import * as tf from '@tensorflow/tfjs-core';
import { panelMatMul } from './panel-matmul.ts';
import { matmulKernels } from './simd/matmul-kernel.ts';

type TensorInfo = tf.TensorInfo;

export interface HostIO {
  /** A float32 view of the tensor's data; on wasm it is invalidated by the next allocation. */
  view(t: TensorInfo): Float32Array;
  alloc(shape: number[]): TensorInfo;
  free(t: TensorInfo): void;
  /** a [M, K] x b [K, N] -> [M, N] */
  matMul(a: TensorInfo, b: TensorInfo): TensorInfo;
  /** The wasm backend's heap, where SIMD kernels can work on tensors in place; null on cpu. */
  readonly heap: WebAssembly.Memory | null;
  /** A float32 tensor's byte offset in `heap` (wasm only). */
  addr(t: TensorInfo): number;
}

interface CpuLike {
  data: { get(id: tf.DataId): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): TensorInfo;
  disposeData(id: tf.DataId, force?: boolean): boolean;
}

interface WasmLike {
  wasm: { asm?: { memory?: unknown } };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } };
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

/** One HostIO per backend instance: a decode step makes hundreds of kernel calls, each of which asks for it. */
const ios = new WeakMap<tf.KernelBackend, HostIO>();

export function hostIO(backendName: string, backend: tf.KernelBackend): HostIO {
  let io = ios.get(backend);
  if (!io) {
    io = makeHostIO(backendName, backend);
    ios.set(backend, io);
  }
  return io;
}

function makeHostIO(backendName: string, backend: tf.KernelBackend): HostIO {
  const matMul = matMulVia(backendName, backend);
  if (backendName === 'wasm') {
    const w = backend as unknown as WasmLike;
    const memory = w.wasm.asm?.memory;
    // A shared (threaded) heap is left to the JavaScript kernels.
    const heap = memory instanceof WebAssembly.Memory && memory.buffer instanceof ArrayBuffer ? memory : null;
    const io: HostIO = {
      view: (t) => w.typedArrayFromHeap(t),
      alloc: (shape) => w.makeOutput(shape, 'float32'),
      free: (t) => void w.disposeData(t.dataId, true),
      matMul,
      heap,
      addr: (t) => w.dataIdMap.get(t.dataId).memoryOffset,
    };
    const kernels = heap && matmulKernels(heap);
    if (kernels) io.matMul = panelMatMul(io, kernels, matMul);
    return io;
  }
  const c = backend as unknown as CpuLike;
  return {
    view: (t) => c.data.get(t.dataId).values as Float32Array,
    alloc: (shape) => c.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((a, b) => a * b, 1))),
    free: (t) => void c.disposeData(t.dataId, true),
    matMul,
    heap: null,
    addr: () => {
      throw new Error('host kernels: the cpu backend has no heap addresses');
    },
  };
}

/** Backends whose memory the host kernels can address. */
export const HOST_BACKENDS = ['cpu', 'wasm'] as const;

/** Whether the active backend is one of HOST_BACKENDS. */
export function onHostBackend(): boolean {
  return (HOST_BACKENDS as readonly string[]).includes(tf.getBackend());
}

type HostKernel = (io: HostIO, inputs: Record<string, TensorInfo>, attrs: never) => TensorInfo | TensorInfo[];

/** Registers a host kernel under `kernelName` on every host backend, handing it that backend's HostIO. */
export function registerHostKernel(kernelName: string, kernel: HostKernel): void {
  for (const backendName of HOST_BACKENDS) {
    tf.registerKernel({
      kernelName,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => kernel(hostIO(backendName, backend as tf.KernelBackend), inputs as Record<string, TensorInfo>, attrs as never),
    });
  }
}

/** Temporaries that `take` lends, by backend and shape: kept for the next call instead of freed. */
const lent = new WeakMap<HostIO, Map<string, TensorInfo[]>>();

/**
 * The temporaries of one kernel call: `tmp` registers one, `take` lends one of a shape from a pool that
 * outlives the call (its contents are stale: write before reading), `free` releases them all at the end.
 * Lending saves an allocation and a free per temporary, most of a kernel call's cost at B = 1; the pool holds
 * at most one of each shape per temporary in use at once, since kernels run one at a time.
 */
export function scratch(io: HostIO): { tmp: (t: TensorInfo) => TensorInfo; take: (shape: number[]) => TensorInfo; free: () => void } {
  const temps: TensorInfo[] = [];
  const taken: [string, TensorInfo][] = [];
  let pool = lent.get(io);
  if (!pool) {
    pool = new Map();
    lent.set(io, pool);
  }
  const shelf = pool;
  return {
    tmp: (t) => (temps.push(t), t),
    take: (shape) => {
      const key = shape.join(',');
      const t = shelf.get(key)?.pop() ?? io.alloc(shape);
      taken.push([key, t]);
      return t;
    },
    free: () => {
      temps.forEach((t) => io.free(t));
      for (const [key, t] of taken) {
        const list = shelf.get(key);
        if (list) list.push(t);
        else shelf.set(key, [t]);
      }
    },
  };
}

/**
 * A zero-copy view of a float32 tensor's data when the active backend is a host one (cpu or wasm), else null:
 * reading [B, V] logits this way skips a copy of B * V floats per decode step (dataSync slices the heap). On
 * wasm the view dies with the next allocation, so read it before running anything else.
 */
export function hostView(t: tf.Tensor): Float32Array | null {
  const name = tf.getBackend();
  if (t.dtype !== 'float32') return null;
  if (name === 'wasm') return (tf.backend() as unknown as WasmLike).typedArrayFromHeap(t);
  if (name === 'cpu') return (tf.backend() as unknown as CpuLike).data.get(t.dataId).values as Float32Array;
  return null;
}
