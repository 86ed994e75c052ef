/**
 * New values for variables on webgpu, written into the GPU buffers they already have. Assigning a fresh tensor
 * per variable makes tfjs upload each through a newly created, mapped staging buffer (~900 a training step for
 * the reference model, ~70 ms of a worker's step on an H200); `queue.writeBuffer` into the existing buffer
 * needs none. Commands tfjs has recorded but not submitted are submitted first, so they still read the old
 * values (queue operations run in submission order).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { webgpuBackend } from './device.ts';

/**
 * Writes `flat`'s consecutive ranges into the variables in place, in order; returns the indices of those it
 * could not write (no GPU buffer yet, not float32, or data shared with another tensor), for the caller to
 * assign as usual.
 */
export function writeVariablesGpu(vars: readonly tf.Variable[], flat: Float32Array): number[] {
  const be = webgpuBackend();
  if (be.commandEncoder) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
  const rest: number[] = [];
  let offset = 0;
  vars.forEach((v, j) => {
    const data = be.tensorMap.get(v.dataId);
    const bytes = 4 * v.size;
    if (data.resource && data.dtype === 'float32' && data.refCount === 1 && data.resource.size >= bytes) {
      be.device.queue.writeBuffer(data.resource, 0, flat.subarray(offset, offset + v.size));
      // A value read back before is stale now.
      data.values = null;
    } else rest.push(j);
    offset += v.size;
  });
  return rest;
}
