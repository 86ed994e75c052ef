/**
 * sampleToken's rules (sampling.ts) on the device: per row of logits [B, V], the drawn id and its
 * log-probability in one dispatch, so that only B ids and B floats come back instead of B x V logits.
 * One workgroup per row. Thresholds are found by bisection on the logits' order-preserving 32-bit
 * keys (exact, ties included): the k-th largest logit with counts, then the nucleus's smallest
 * logit with tempered masses; the tie cut by id and the inverse-CDF draw in id order use per-thread
 * contiguous id ranges whose sums one thread walks. Float32 sums run in another order than the
 * host's float64 ones, so a draw may differ from sampleToken's only when u * total lies within
 * rounding of a CDF boundary (and a nucleus only when a prefix's mass lies within rounding of topP).
 */
import * as tf from '@tensorflow/tfjs-core';
import { XlstmError } from '../../util/errors.ts';
import { runProgram } from './device.ts';
import { HALVINGS, PARAMS, SAMPLE_PROGRAM, WG } from './sample-program.ts';

const SAMPLE = 'XlstmGpuSample';

tf.registerKernel({
  kernelName: SAMPLE,
  backendName: 'webgpu',
  kernelFunc: ({ inputs, backend }) => {
    const { logits, rows } = inputs as Record<string, tf.TensorInfo>;
    const [B, V] = logits.shape;
    const outputs = [{ shape: [B], dtype: 'int32' as const }, { shape: [B] }, { shape: [B, 3], dtype: 'int32' as const }];
    return runProgram(backend, SAMPLE_PROGRAM, [logits, rows], outputs, [B, V, Math.ceil(V / WG), HALVINGS], [B, 1, 1]);
  },
});

/** The kernel's three outputs: ids [B], logprobs [B], and per row the kept set's cut [B, 3] (see keptIdsGpu). */
function sampleKernel(logits: tf.Tensor2D, rows: Float32Array): tf.Tensor[] {
  if (tf.getBackend() !== 'webgpu') {
    throw new XlstmError('BACKEND', `sampleTokensGpu expected the webgpu backend, but got ${tf.getBackend()}. Hint: sample on the host with sampleToken.`);
  }
  const [B] = logits.shape;
  if (rows.length !== B * PARAMS) {
    throw new XlstmError('INVALID_INPUT', `sampling rows expected ${B * PARAMS} values (temperature, topK, topP, u per row), but got ${rows.length}. Hint: pass ${PARAMS} per row of logits.`);
  }
  const params = tf.tensor2d(rows, [B, PARAMS]);
  try {
    return tf.engine().runKernel(SAMPLE, { logits, rows: params }) as tf.Tensor[];
  } finally {
    params.dispose();
  }
}

/**
 * Each row's token under its own sampling settings, as sampleToken draws it with uniform u, from
 * logits [B, V] on webgpu: ids [B] int32 and their log-probabilities [B] under the softmax of the
 * raw logits. `rows` holds temperature, topK, topP, u for each row. One dispatch.
 */
export function sampleTokensGpu(logits: tf.Tensor2D, rows: Float32Array): { ids: tf.Tensor1D; logprobs: tf.Tensor1D } {
  const [ids, logprobs, cuts] = sampleKernel(logits, rows);
  cuts.dispose();
  return { ids: ids as tf.Tensor1D, logprobs: logprobs as tf.Tensor1D };
}

/** The float's order-preserving unsigned key, as the kernel computes it. */
function keyOf(bits: number): number {
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

/**
 * The ids each row of sampleTokensGpu may draw from (its kept set, in id order), as the kernel
 * decided them: keptIds of sampling.ts on the device. Reads the logits back: for checks, not serving.
 */
export async function keptIdsGpu(logits: tf.Tensor2D, rows: Float32Array): Promise<Int32Array[]> {
  const [ids, logprobs, cuts] = sampleKernel(logits, rows);
  ids.dispose();
  logprobs.dispose();
  try {
    // sync: the cuts and the logits they apply to.
    const [cut, values] = await Promise.all([cuts.data() as Promise<Int32Array>, logits.data() as Promise<Float32Array>]);
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    const [B, V] = logits.shape;
    return Array.from({ length: B }, (_, r) => {
      const [a, jt, b] = [cut[3 * r] >>> 0, cut[3 * r + 1] >>> 0, cut[3 * r + 2] >>> 0];
      const kept: number[] = [];
      for (let j = 0; j < V; j++) {
        const k = keyOf(bits[r * V + j]);
        if ((k > a || (k === a && j <= jt)) && k >= b) kept.push(j);
      }
      return Int32Array.from(kept);
    });
  } finally {
    cuts.dispose();
  }
}
