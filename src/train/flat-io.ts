/**
 * Moving a list of tensors (the weights or their gradients, in weightEntries order) to and from one
 * flat float32 array that outlives the step, without the fresh copies dataSync and data() make
 * on the host backends (each a page-faulting allocation of up to 40 MB, see exchange.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { onWebgpu } from '../core/gpu/device.ts';
import { writeVariablesGpu } from '../core/gpu/variable-writes.ts';
import { hostView } from '../core/host/io.ts';

/** Copies the tensors, laid end to end, into `into` from index 0. */
export async function copyOut(tensors: readonly tf.Tensor[], into: Float32Array): Promise<void> {
  const views = tensors.map((t) => hostView(t));
  if (views.every((v) => v !== null)) {
    let offset = 0;
    for (const view of views as Float32Array[]) {
      into.set(view, offset);
      offset += view.length;
    }
    return;
  }
  // A device backend: one asynchronous read (webgpu under Node has no synchronous ones, and each read is a round trip).
  const flat = tf.tidy(() => tf.concat(tensors.map((t) => tf.reshape(t, [-1]))));
  try {
    into.set((await flat.data()) as Float32Array);
  } finally {
    flat.dispose();
  }
}

/** Assigns consecutive ranges of `flat` to the variables, in order. */
export function assignFrom(vars: readonly tf.Variable[], flat: Float32Array): void {
  // On webgpu into the variables' own buffers where it can; the rest as new tensors.
  const assign = onWebgpu() ? writeVariablesGpu(vars, flat) : vars.map((_, j) => j);
  if (assign.length === 0) return;
  // wasm copies a new tensor's values into its heap; cpu keeps the array it is given (and webgpu
  // until the upload), which must then not be a view of a buffer that is overwritten next step.
  const copies = tf.getBackend() !== 'wasm';
  const offsets: number[] = [];
  let at = 0;
  for (const v of vars) {
    offsets.push(at);
    at += v.size;
  }
  tf.tidy(() => {
    for (const j of assign) {
      const v = vars[j];
      const values = flat.subarray(offsets[j], offsets[j] + v.size);
      v.assign(tf.tensor(copies ? values.slice() : values, v.shape, 'float32'));
    }
  });
}
