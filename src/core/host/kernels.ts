/**
 * Registers the fused block-step kernels for the host backends and runs them through the engine
 * (one tfjs op per block per decode step instead of about eighty), and the final LayerNorm as one more.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from '../config.ts';
import type { BlockState } from '../state.ts';
import type { BlockWeights } from '../weights.ts';
import { onHostBackend, registerHostKernel, type HostIO } from './io.ts';
import { normRow } from './math.ts';
import { mlstmStepHost } from './mlstm-step.ts';
import { normKernels } from './simd/row-ops.ts';
import { slstmStepHost } from './slstm-step.ts';

const MLSTM = 'XlstmMlstmStep';
const SLSTM = 'XlstmSlstmStep';
const NORM = 'XlstmNormRows';

registerHostKernel(MLSTM, mlstmStepHost);
registerHostKernel(SLSTM, slstmStepHost);
registerHostKernel(NORM, normRowsHost);

/** LayerNorm of x [B, d] (inputs x, w, b): one kernel call, where the op-by-op layerNorm is about ten. */
function normRowsHost(io: HostIO, inp: Record<string, tf.TensorInfo>): tf.TensorInfo {
  const [B, d] = inp.x.shape;
  const out = io.alloc([B, d]);
  const simd = io.heap && d % 4 === 0 ? normKernels(io.heap, d) : null;
  if (simd) simd.norm(io.addr(inp.x), io.addr(inp.w), io.addr(inp.b), io.addr(out), B);
  else {
    const x = io.view(inp.x), w = io.view(inp.w), b = io.view(inp.b), o = io.view(out);
    for (let r = 0; r < B; r++) normRow(x, r * d, d, w, b, 0, o, r * d);
  }
  return out;
}

/** The model's final LayerNorm of a decode step's hidden rows x [B, d], through one host kernel. */
export function normRowsFused(x: tf.Tensor2D, w: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.engine().runKernel(NORM, { x, w, b }, {}) as tf.Tensor2D;
}

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
