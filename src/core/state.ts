/**
 * Model state: one plain record of batch-first tensors per block, so rows can be gathered and
 * scattered and a sequence can join or leave a running batch at any step.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Mutable types only so that tf.tidy accepts them as a TensorContainer; states are never mutated. */
export type BlockState = { [key: string]: tf.Tensor };
export type ModelState = BlockState[];

/** The states of several batches stacked along the batch axis, in order. */
export function concatStates(states: readonly ModelState[]): ModelState {
  if (states.length === 1) return states[0].map((b) => mapRecord(b, (t) => tf.clone(t)));
  return states[0].map((_, i) => mapRecord(states[0][i], (_t, key) => tf.concat(states.map((s) => s[i][key]), 0)));
}

/** The given rows (batch indices) of a state, in the given order. */
export function gatherState(state: ModelState, rows: readonly number[]): ModelState {
  const idx = tf.tensor1d(Array.from(rows), 'int32');
  const out = state.map((b) => mapRecord(b, (t) => tf.gather(t, idx, 0)));
  idx.dispose();
  return out;
}

export function disposeState(state: ModelState): void {
  for (const b of state) for (const t of Object.values(b)) t.dispose();
}

/** Marks every tensor of a state as surviving the enclosing tf.tidy. */
export function keepState(state: ModelState): ModelState {
  for (const b of state) for (const t of Object.values(b)) tf.keep(t);
  return state;
}

/** Bytes one sequence's state occupies (float32). */
export function stateBytesPerRow(state: ModelState): number {
  let bytes = 0;
  for (const b of state) for (const t of Object.values(b)) bytes += (t.size / t.shape[0]) * 4;
  return bytes;
}

function mapRecord(r: BlockState, f: (t: tf.Tensor, key: string) => tf.Tensor): BlockState {
  return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, f(t, k)]));
}
