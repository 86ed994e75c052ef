/**
 * Whether decode holds its memory: RSS and tf.memory() after a warm-up and again after `steps` more greedy steps
 * (B rows, logits read every step as serving does), and the state bytes of one sequence.
 */
import * as tf from '@tensorflow/tfjs-core';
import { disposeState, keepState, Rng, type ModelState, type XlstmModel } from './core-api.ts';

interface Snapshot {
  readonly step: number;
  readonly rssMB: number;
  readonly tensors: number;
  readonly tfMB: number;
}

export interface Growth {
  readonly rows: number;
  readonly steps: number;
  readonly before: Snapshot;
  readonly after: Snapshot;
  readonly rssGrowth: number;
  readonly flat: boolean;
  readonly stateBytesPerSequence: number;
}

export function measureGrowth(model: XlstmModel, B = 1, steps = 10_000, warmup = 500): Growth {
  const rng = new Rng(3);
  let ids: Int32Array = Int32Array.from({ length: B }, () => rng.int(model.dims.V));
  let state: ModelState = keepState(tf.tidy(() => model.initState(B)));
  const snapshot = (step: number): Snapshot => {
    const m = tf.memory();
    return { step, rssMB: process.memoryUsage().rss / 2 ** 20, tensors: m.numTensors, tfMB: m.numBytes / 2 ** 20 };
  };
  const one = () => {
    const out = tf.tidy(() => {
      const r = model.step(tf.tensor1d(ids, 'int32'), state);
      return { next: tf.argMax(r.logits, 1), state: keepState(r.state) };
    });
    ids = out.next.dataSync() as Int32Array; // sync: the next step's tokens
    out.next.dispose();
    disposeState(state);
    state = out.state;
  };
  for (let s = 0; s < warmup; s++) one();
  global.gc?.();
  const before = snapshot(warmup);
  for (let s = 0; s < steps; s++) one();
  global.gc?.();
  const after = snapshot(warmup + steps);
  disposeState(state);
  const rssGrowth = after.rssMB / before.rssMB - 1;
  return {
    rows: B,
    steps,
    before,
    after,
    rssGrowth,
    flat: rssGrowth <= 0.05 && after.tensors === before.tensors && after.tfMB <= before.tfMB * 1.05,
    stateBytesPerSequence: model.stateBytesPerSequence(),
  };
}
