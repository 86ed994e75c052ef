/**
 * Compiles the generated SIMD kernels once per kind and instantiates them once per memory they work in: the
 * wasm backend's heap (so that kernels read and write tensors in place) or a private memory for plain arrays.
 */
import * as tf from '@tensorflow/tfjs-core';
import { moduleBytes, type Fn } from './wasm.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Kernels = Record<string, (...args: number[]) => any>;

/** Compiled modules by key; null when this runtime cannot compile them (no SIMD). */
const modules = new Map<string, WebAssembly.Module | null>();
const instances = new WeakMap<WebAssembly.Memory, Map<string, Kernels>>();

function compiled(key: string, build: () => Fn[], shared: boolean): WebAssembly.Module | null {
  // A module imports either a shared or an unshared memory, never both: each kind is compiled on its own.
  const id = shared ? `${key}#shared` : key;
  let m = modules.get(id);
  if (m === undefined) {
    const bytes = moduleBytes(build(), { shared });
    m = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    modules.set(id, m);
  }
  return m;
}

/** Whether `memory` is a shared one (threads): its buffer is a SharedArrayBuffer, where the runtime has those. */
function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/**
 * The kernels `build` generates, bound to `memory` (shared or not); null where WebAssembly SIMD (or, for a shared
 * memory, WebAssembly threads) is unavailable.
 */
export function kernelsIn(memory: WebAssembly.Memory, key: string, build: () => Fn[]): Kernels | null {
  let byKey = instances.get(memory);
  if (!byKey) {
    byKey = new Map();
    instances.set(memory, byKey);
  }
  let k = byKey.get(key);
  if (!k) {
    const m = compiled(key, build, isShared(memory));
    if (!m) return null;
    k = new WebAssembly.Instance(m, { env: { memory } }).exports as unknown as Kernels;
    byKey.set(key, k);
  }
  return k;
}

interface WasmBackendLike {
  wasm?: { asm?: { memory?: unknown } };
}

/** The wasm backend's heap when that backend has started in this thread and is not a shared (threaded) one. */
export function wasmHeap(): WebAssembly.Memory | null {
  const backend = tf.engine().registry.wasm as WasmBackendLike | undefined;
  const memory = backend?.wasm?.asm?.memory;
  return memory instanceof WebAssembly.Memory && memory.buffer instanceof ArrayBuffer ? memory : null;
}

/** A private memory of at least `bytes`, for kernels over arrays that live outside any wasm heap. */
let scratchMemory: WebAssembly.Memory | null = null;

export function scratchIn(bytes: number): WebAssembly.Memory {
  const pages = Math.ceil(bytes / 65536);
  if (!scratchMemory) scratchMemory = new WebAssembly.Memory({ initial: Math.max(1, pages) });
  const have = scratchMemory.buffer.byteLength / 65536;
  if (have < pages) scratchMemory.grow(pages - have);
  return scratchMemory;
}
