/**
 * A prompt's tokens through the whole model as ONE tfjs kernel on the wasm backend, layer by layer: per block,
 * the position-wise work (LayerNorms, projections, MLPs, residual sums) runs over all positions of all rows at
 * once, and only the recurrences (the causal conv window, the mLSTM and sLSTM cells) loop over time, calling the
 * decode step's own SIMD kernels (model-step.ts) one position at a time with the state updated in place.
 * Every kernel treats rows independently in the step's order of operations, so the logits and state equal those
 * of stepping the same tokens one by one, bit for bit, and a row's result does not depend on the batch.
 * Long prompts on the main thread of a machine with two cores or more run on two threads (prefill-threads.ts),
 * with the same results; the passes themselves are prefill-blocks.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { XlstmError } from '../../util/errors.ts';
import type { Dims } from '../config.ts';
import type { HostIO } from './io.ts';
import { kernelsFor, planFor, planKey, registerPlanKernel, scratchAddr, type Plan, type StepKernels } from './model-step.ts';
import { carve, runBlocks, type Pass } from './prefill-blocks.ts';
import { threadedPrefill } from './prefill-threads.ts';

const KERNEL = 'XlstmModelPrefill';

/**
 * Positions (over all rows) that one pass through the blocks covers: enough to keep the matMuls' weights hot,
 * few enough that the activations of a pass stay in cache-friendly megabytes whatever the prompt's length.
 */
const CHUNK_POSITIONS = 128;

/**
 * A prompt: tokens [B, T] int32, embedding [V, d], the step's weight buffer (hostStepWeights), state [B, S] ->
 * the final-normed hidden rows of the last position x [B, d] and the state after the prompt [B, S].
 */
export function hostModelPrefill(
  dims: Dims, tokens: tf.Tensor2D, embedding: tf.Tensor2D, weights: number, state: tf.Tensor2D,
): { x: tf.Tensor2D; state: tf.Tensor2D } {
  const S = planFor(dims).stateSize;
  const [B, T] = tokens.shape;
  if (state.shape[1] !== S || state.shape[0] !== B) {
    throw new XlstmError('INVALID_INPUT', `the packed prefill state expected shape [${B}, ${S}], but got [${state.shape}]. Hint: pass the state this model's initState, prefill or step returned.`);
  }
  if (T < 1) throw new XlstmError('INVALID_INPUT', `a prompt expected at least 1 token, but got ${T}. Hint: drop empty prompts before prefill.`);
  const [x, next] = tf.engine().runKernel(KERNEL, { tokens, embedding, state }, { plan: planKey(dims), weights }) as tf.Tensor[];
  return { x: x as tf.Tensor2D, state: next as tf.Tensor2D };
}

/** Positions per row in one pass for B rows of T tokens. */
export function chunkLength(B: number, T: number): number {
  return Math.max(1, Math.min(T, Math.floor(CHUNK_POSITIONS / B)));
}

registerPlanKernel(KERNEL, 'the whole-model prefill', 'hostModelPrefill', prefillKernel);

function prefillKernel(io: HostIO, plan: Plan, inp: Record<string, tf.TensorInfo>, W: number): tf.TensorInfo[] {
  const heap = io.heap as WebAssembly.Memory;
  const { dims } = plan;
  const { d, V } = dims;
  const [B, T] = inp.tokens.shape;
  const S = plan.stateSize;
  const tokens = new Int32Array(heap.buffer, io.addr(inp.tokens), B * T).slice();
  for (const t of tokens) {
    if (!(t >= 0 && t < V)) throw new XlstmError('INVALID_INPUT', `token ids expected integers in [0, ${V}), but got ${t}. Hint: encode with this model's tokenizer.`);
  }
  // Every allocation comes first: growing the heap would detach the views below.
  const xOut = io.alloc([B, d]);
  const sOut = io.alloc([B, S]);
  if (threadedPrefill(io, plan, tokens, inp, W, xOut, sOut)) return [xOut, sOut];
  const Tc0 = chunkLength(B, T);
  const a = carve(scratchAddr(io, carve(0, B, Tc0, dims).end / 4), B, Tc0, dims);
  const k = kernelsFor(heap, dims) as StepKernels;
  const F = new Float32Array(heap.buffer);
  const stateAt = io.addr(sOut);
  // The cells update the state in place (each reads a value before it writes it), so the new state starts as the old.
  F.copyWithin(stateAt >> 2, io.addr(inp.state) >> 2, (io.addr(inp.state) >> 2) + B * S);
  const emb = io.addr(inp.embedding) >> 2;
  for (let t0 = 0; t0 < T; t0 += Tc0) {
    const Tc = Math.min(Tc0, T - t0);
    const pass: Pass = { k, F, dims, a, B, Tc, state: stateAt, row: 4 * S };
    for (let r = 0; r < B; r++) {
      for (let t = 0; t < Tc; t++) {
        const id = tokens[r * T + t0 + t];
        F.copyWithin((a.x0 >> 2) + (r * Tc + t) * d, emb + id * d, emb + (id + 1) * d);
      }
    }
    const x = runBlocks(pass, plan, W, 0, dims.kinds.length, a.x0, a.x1);
    if (t0 + Tc === T) {
      const { normW, normB } = plan.weights.final;
      for (let r = 0; r < B; r++) k.m.norm(x + 4 * (r * Tc + Tc - 1) * d, W + 4 * normW, W + 4 * normB, io.addr(xOut) + 4 * r * d, 1);
    }
  }
  return [xOut, sOut];
}
