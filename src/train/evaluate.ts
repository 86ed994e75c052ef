/** Evaluation during training: the validation loss over every held-out window, and sample generations. */
import * as tf from '@tensorflow/tfjs-core';
import { disposeState, nextTokenLoss, sampleToken, type FormName, type ModelState, type XlstmModel } from '../core/index.ts';
import { sequentialBatches, type PackedWindows } from '../data/index.ts';
import { Rng } from '../util/rng.ts';
import type { RunConfig, TextCodec } from './run-config.ts';
import { countTargets } from './step.ts';

const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Mean next-token loss over every counted target of `windows` (padding excluded), in window order;
 * null when there is nothing to count. Yields to the event loop between batches.
 */
export async function validationLoss(
  model: XlstmModel,
  windows: PackedWindows,
  options: { readonly batchSize: number; readonly padId: number; readonly form?: FormName; readonly signal?: AbortSignal },
): Promise<number | null> {
  let sum = 0;
  let count = 0;
  for (const batch of sequentialBatches(windows, options.batchSize)) {
    if (options.signal?.aborted) return null;
    const n = countTargets(batch, options.padId);
    if (n === 0) continue;
    const loss = tf.tidy(() => {
      const w = tf.tensor2d(batch.tokens, [batch.batch, batch.length], 'int32');
      const targets = tf.slice(w, [0, 1], [batch.batch, batch.length - 1]);
      const mask = tf.cast(tf.notEqual(targets, tf.scalar(options.padId, 'int32')), 'float32') as tf.Tensor2D;
      return nextTokenLoss(model, w, mask, options.form ?? 'parallel');
    });
    // sync: one scalar per validation batch.
    sum += loss.dataSync()[0] * n;
    loss.dispose();
    count += n;
    await breathe();
  }
  return count === 0 ? null : sum / count;
}

/**
 * Continues each inference prompt by up to token_lim tokens (prefill, then one step per token),
 * sampling with use_top_k and temperature from an Rng seeded by (seed, step), so an evaluation's
 * samples are reproducible. Generation stops early at end-of-text. Returns prompt + continuation.
 */
export async function sampleGenerations(
  model: XlstmModel,
  codec: TextCodec,
  inference: RunConfig['inference'],
  seed: number,
  step: number,
): Promise<string[]> {
  const params = { temperature: inference.temperature, topK: inference.use_top_k, topP: 1 };
  const root = new Rng((Math.imul(seed >>> 0, 0x9e3779b1) + step) >>> 0);
  const out: string[] = [];
  for (const prompt of inference.prompts) {
    const rng = root.fork();
    const ids = codec.encode(prompt);
    const context = ids.length > 0 ? ids : [codec.eosId];
    let { logits, state } = tf.tidy(() => model.prefill(tf.tensor2d([context], [1, context.length], 'int32')));
    const generated: number[] = [];
    try {
      for (let i = 0; i < inference.token_lim; i++) {
        // sync: the sampled token is needed on the host.
        const row = logits.dataSync() as Float32Array;
        const { id } = sampleToken(row, params, rng);
        if (id === codec.eosId) break;
        generated.push(id);
        if (i + 1 === inference.token_lim) break;
        const prev: ModelState = state;
        const next = tf.tidy(() => model.step(tf.tensor1d([id], 'int32'), prev));
        logits.dispose();
        disposeState(prev);
        ({ logits, state } = next);
      }
    } finally {
      logits.dispose();
      disposeState(state);
    }
    out.push(prompt + codec.decode(generated));
    await breathe();
  }
  return out;
}
