/**
 * Tensors that a fused op's forward pass hands to its backward pass without tfjs's save(): save()
 * clones every tensor, and on wasm a clone is a copy (a step's mLSTM traces are hundreds of MB).
 * A kept trace is freed by the backward pass that reads it; one whose backward pass never ran
 * (the op was pruned from a gradient, or the pass failed) is freed once a later tape records one.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface KeptTrace {
  readonly tensors: readonly tf.Tensor[];
}

interface Entry extends KeptTrace {
  readonly tape: unknown;
}

const pending = new Set<Entry>();

/** tfjs's tape of the gradient computation in progress (a new array for each outermost one). */
function activeTape(): unknown {
  return (tf.engine() as unknown as { state: { activeTape: unknown } }).state.activeTape;
}

/** Whether an op run now is recorded for a backward pass. */
export function recording(): boolean {
  return tf.engine().isTapeOn();
}

/** Keeps `tensors` (out of every tidy scope) for the backward pass of the tape now recording. */
export function keepTrace(tensors: readonly tf.Tensor[]): KeptTrace {
  const tape = activeTape();
  for (const e of pending) {
    if (e.tape !== tape) {
      pending.delete(e);
      tf.dispose(e.tensors as tf.Tensor[]);
    }
  }
  const entry: Entry = { tape, tensors: tensors.map((t) => tf.keep(t)) };
  pending.add(entry);
  return entry;
}

/** Frees a trace once its backward pass has read it. */
export function releaseTrace(trace: KeptTrace): void {
  if (pending.delete(trace as Entry)) tf.dispose(trace.tensors as tf.Tensor[]);
}
