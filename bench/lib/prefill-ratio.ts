/** A 512-token prompt (B = 1) through prefill against the same tokens stepped one at a time, as generation would. */
import * as tf from '@tensorflow/tfjs-core';
import { awaitPrefillHelper } from '../../src/core/host/prefill-threads.ts';
import { disposeState, keepState, Rng, type ModelState, type XlstmModel } from './core-api.ts';

/**
 * Rounds of (two prefills, one stepped run): this VM has spells of seconds in which one core runs up to half as
 * fast, and five rounds give each side about as many chances to meet a calm one as the other.
 */
const ROUNDS = 5;

export interface PrefillRatio {
  readonly tokens: number;
  readonly prefillMs: number;
  readonly steppedMs: number;
  /** stepped / prefill */
  readonly speedup: number;
}

export async function measurePrefillRatio(model: XlstmModel, tokens = 512): Promise<PrefillRatio> {
  const rng = new Rng(512);
  const ids = Int32Array.from({ length: tokens }, () => rng.int(model.dims.V));
  const prefill = async () => {
    const t0 = performance.now();
    const out = tf.tidy(() => model.prefill(tf.tensor2d(ids, [1, tokens], 'int32')) as unknown as tf.TensorContainer) as unknown as {
      logits: tf.Tensor;
      state: ModelState;
    };
    await out.logits.data();
    const ms = performance.now() - t0;
    out.logits.dispose();
    disposeState(out.state);
    return ms;
  };
  const stepped = async () => {
    const t0 = performance.now();
    let state: ModelState = keepState(tf.tidy(() => model.initState(1)));
    let last: tf.Tensor | null = null;
    for (let t = 0; t < tokens; t++) {
      const out = tf.tidy(() => {
        const r = model.step(tf.tensor1d([ids[t]], 'int32'), state);
        return { logits: r.logits, state: keepState(r.state) };
      });
      disposeState(state);
      last?.dispose();
      state = out.state;
      last = out.logits;
    }
    await last?.data();
    const ms = performance.now() - t0;
    last?.dispose();
    disposeState(state);
    return ms;
  };
  // Untimed first runs: kernels compiled, buffers grown, and prefill's helper thread (which the first long prompt
  // starts, and which runs its first prompt before its code is optimised) ready and warm, as in a running server.
  await prefill();
  await awaitPrefillHelper();
  await prefill();
  await stepped();
  // Alternating rounds, best of each: this VM's speed drifts by tens of percent over seconds, and a single run
  // of either side can land in a slow spell that the other side missed.
  let prefillMs = Infinity;
  let steppedMs = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    prefillMs = Math.min(prefillMs, await prefill(), await prefill());
    steppedMs = Math.min(steppedMs, await stepped());
  }
  return { tokens, prefillMs, steppedMs, speedup: steppedMs / prefillMs };
}
