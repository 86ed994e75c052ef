/**
 * Finds a WebGPU adapter for the tests: the default Dawn backend first (a real GPU), then Mesa's
 * llvmpipe through Dawn's OpenGL ES backend (CI: see docs/GPU.md for the apt packages).
 * Returns null when webgpu is active, else why it is not, so that suites skip with that reason.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backend/select.ts';

let probe: Promise<string | null> | null = null;

export function webgpuUnavailable(): Promise<string | null> {
  probe ??= (async () => {
    const reasons: string[] = [];
    const tries = process.env.XLSTM_WEBGPU_BACKEND ? [process.env.XLSTM_WEBGPU_BACKEND] : ['', 'opengles'];
    for (const dawn of tries) {
      if (dawn) process.env.XLSTM_WEBGPU_BACKEND = dawn;
      else delete process.env.XLSTM_WEBGPU_BACKEND;
      try {
        await selectBackend('webgpu');
        return null;
      } catch (e) {
        reasons.push(`${dawn || 'default'}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return reasons.join('; ');
  })();
  return probe;
}

/** A describe title that carries the skip reason, so the report says why nothing ran. */
export function webgpuTitle(title: string, reason: string | null): string {
  if (reason) console.warn(`SKIPPED (no WebGPU adapter) ${title}: ${reason}`);
  return reason ? `${title} [skipped: no WebGPU adapter: ${reason}]` : title;
}

/** Counts compute dispatches (Dawn's encoder method, wrapped) while `fn` runs; 0 off webgpu. */
export function countingDispatches<R>(fn: () => R): { value: R; dispatches: number } {
  type Encoder = { prototype: { dispatchWorkgroups: (...a: unknown[]) => void } };
  const proto = (globalThis as unknown as { GPUComputePassEncoder?: Encoder }).GPUComputePassEncoder?.prototype;
  if (!proto || tf.getBackend() !== 'webgpu') return { value: fn(), dispatches: 0 };
  const original = proto.dispatchWorkgroups;
  let n = 0;
  proto.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) {
    n++;
    return original.apply(this, a);
  };
  try {
    return { value: fn(), dispatches: n };
  } finally {
    proto.dispatchWorkgroups = original;
  }
}
