/**
 * Registers the fused block-step kernels for the host backends and runs them through the engine
 * (one tfjs op per block per decode step instead of about eighty).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from '../config.ts';
import type { BlockState } from '../state.ts';
import type { BlockWeights } from '../weights.ts';
import { onHostBackend, registerHostKernel } from './io.ts';
import { mlstmStepHost } from './mlstm-step.ts';
import { slstmStepHost } from './slstm-step.ts';

const MLSTM = 'XlstmMlstmStep';
const SLSTM = 'XlstmSlstmStep';

registerHostKernel(MLSTM, mlstmStepHost);
registerHostKernel(SLSTM, slstmStepHost);

/** Whether the active backend has the fused step kernels. */
export function hasHostKernels(): boolean {
  return onHostBackend();
}

/** One block's decode step through its fused kernel: x [B, d] -> (x + f(LN(x)), next state). */
export function fusedBlockStep(x: tf.Tensor2D, w: BlockWeights, dims: Dims, state: BlockState): { y: tf.Tensor2D; state: BlockState } {
  const { kind, ...weights } = w;
  const inputs: Record<string, tf.Tensor> = { x };
  for (const [name, t] of Object.entries(weights)) if (t) inputs[name] = t as tf.Tensor;
  for (const [name, t] of Object.entries(state)) inputs[name] = t;
  const { nh, dh, dm, P, k } = dims;
  if (kind === 'm') {
    const out = tf.engine().runKernel(MLSTM, inputs, { nh, dh, dm, k }) as tf.Tensor[];
    return { y: out[0] as tf.Tensor2D, state: named(k > 0 ? ['conv', 'C', 'n', 'm'] : ['C', 'n', 'm'], out.slice(1)) };
  }
  const out = tf.engine().runKernel(SLSTM, inputs, { nh, dh, P, k }) as tf.Tensor[];
  return { y: out[0] as tf.Tensor2D, state: named(k > 0 ? ['conv', 'c', 'n', 'h', 'm'] : ['c', 'n', 'h', 'm'], out.slice(1)) };
}

function named(keys: string[], tensors: tf.Tensor[]): BlockState {
  return Object.fromEntries(keys.map((key, j) => [key, tensors[j]]));
}
