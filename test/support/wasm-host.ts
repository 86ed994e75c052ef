/**
 * For tests of kernels that work on the wasm backend's heap: the backend selected and its HostIO, ready from the
 * file's first test on, and `made`, whose tensors (disposed) and bare TensorInfos (freed) go after each test.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { hostIO, type HostIO } from '../../src/core/host/io.ts';

export interface WasmHost {
  readonly io: HostIO;
  readonly made: (tf.Tensor | tf.TensorInfo)[];
}

export function wasmHost(): WasmHost {
  const host = { io: null as unknown as HostIO, made: [] as (tf.Tensor | tf.TensorInfo)[] };
  beforeAll(async () => {
    await selectBackend('wasm');
    host.io = hostIO('wasm', tf.backend());
  });
  afterEach(() => {
    for (const t of host.made.splice(0)) {
      if (t instanceof tf.Tensor) t.dispose();
      else host.io.free(t);
    }
  });
  return host;
}
