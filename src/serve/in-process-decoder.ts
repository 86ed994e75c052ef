/**
 * The decoder on the model in this thread, on whatever backend it runs (webgpu included): prompts are prefilled
 * (equal lengths batched) and join the batch with concatStates, every step is ONE batched model.step, and rows leave
 * through gatherState; old states are disposed at once. On webgpu every row's token is drawn on the device (only ids
 * and log-probabilities come back); on the host backends rows are sampled in place in the backend's memory.
 */
import * as tf from '@tensorflow/tfjs-core';

import { concatStates, disposeState, gatherState, type ModelState, type SamplingParams, type XlstmModel } from '../core/index.ts';
import { onWebgpu } from '../core/gpu/device.ts';
import { greedyTokens } from '../core/gpu/greedy.ts';
import { sampleTokensGpu } from '../core/gpu/sample.ts';
import { hostView } from '../core/host/io.ts';
import { XlstmError } from '../util/errors.ts';
import type { Admitted, AdmitRequest, Decoder, RowId, Sampled, StepInput } from './decoder.ts';
import { batchTokens, byLength, prefillBatches } from './prefill-batches.ts';
import { sampleRow } from './sample-row.ts';

export class InProcessDecoder implements Decoder {
  readonly threads = 1;
  readonly concurrent = false;
  /** Every step takes every row, with its token given. */
  readonly ahead = false;
  readonly failure = null;
  /** Row i of `state` is rows[i]. */
  private rows: RowId[] = [];
  private state: ModelState | null = null;
  private nextRow = 1;
  private mask: tf.Tensor1D | null = null;

  constructor(
    private readonly model: XlstmModel,
    private readonly suppressToken: number | null = null,
  ) {}

  /** One lane: every row is in it. */
  laneOf(): number {
    return 0;
  }

  get size(): number {
    return this.rows.length;
  }

  /** Prefills equal lengths as one batch; the rows join in order of length, all or none. */
  async admit(prompts: readonly AdmitRequest[]): Promise<Admitted[]> {
    const lengths = prompts.map((p) => p.tokens.length);
    const order = byLength(lengths);
    const states: ModelState[] = [];
    const sampled = new Array<Sampled>(prompts.length);
    try {
      for (const batch of prefillBatches(order, lengths)) {
        const tokens = batchTokens(batch, (j) => prompts[j].tokens);
        const out = tidy(() => this.model.prefill(tf.tensor2d(tokens, [batch.length, lengths[batch[0]]], 'int32')));
        states.push(out.state);
        if (onWebgpu()) {
          const drawn = await this.sampleOnDevice(out.logits, batch.map((j) => prompts[j])).finally(() => out.logits.dispose());
          batch.forEach((j, r) => (sampled[j] = drawn[r]));
          continue;
        }
        let logits: Float32Array;
        try {
          // sync: the prompts' last-position logits, the only read of a prefill.
          logits = (await out.logits.data()) as Float32Array;
        } finally {
          out.logits.dispose();
        }
        const V = logits.length / batch.length;
        batch.forEach((j, r) => (sampled[j] = sampleRow(logits.subarray(r * V, (r + 1) * V), prompts[j].sampling, prompts[j].uniform, this.suppressToken)));
      }
      if (states.length === 0) return [];
      const previous = this.state;
      this.state = tidy(() => concatStates(previous ? [previous, ...states] : states));
      if (previous) disposeState(previous);
    } finally {
      states.forEach(disposeState);
    }
    const rows = new Array<RowId>(prompts.length);
    // Rows in state order, which is the order of length.
    for (const j of order) {
      rows[j] = this.nextRow++;
      this.rows.push(rows[j]);
    }
    return sampled.map((s, j) => ({ row: rows[j], ...s }));
  }

  async step(inputs: ReadonlyMap<RowId, StepInput>): Promise<Map<RowId, Sampled>> {
    const B = this.rows.length;
    const missing = this.rows.find((r) => !inputs.has(r));
    if (!this.state || inputs.size !== B || missing !== undefined) {
      throw new XlstmError(
        'INVALID_INPUT',
        `step expected an input for each of the ${B} live rows and no other, but got ${inputs.size}${missing === undefined ? '' : ` without row ${missing}`}.`,
      );
    }
    const own = this.rows.map((r) => inputs.get(r) as StepInput);
    const previous = this.state;
    const { logits, state } = tidy(() => this.model.step(tf.tensor1d(Int32Array.from(own, (x) => x.token), 'int32'), previous));
    disposeState(previous);
    this.state = state;
    try {
      const view = hostView(logits);
      // sync: the batch's logits [B, V] in place in the backend's memory, sampled before anything else runs.
      if (view) return this.sample(view, own);
      if (onWebgpu()) {
        const drawn = await this.sampleOnDevice(logits, own);
        return new Map(this.rows.map((r, i) => [r, drawn[i]] as const));
      }
      // A batch of greedy rows needs only B ids and B log-probabilities from the device, not B x V logits.
      if (own.every((x) => x.sampling.temperature === 0)) return await this.greedyOnDevice(logits);
      // On a device, the normalisers of all rows in one batched op beat V exps per row on the host.
      const lse = tidy(() => tf.logSumExp(logits, 1));
      try {
        // sync: the batch's logits [B, V] and their normalisers [B]; states stay on the device.
        const [data, logZ] = (await Promise.all([logits.data(), lse.data()])) as [Float32Array, Float32Array];
        return this.sample(data, own, logZ);
      } finally {
        lse.dispose();
      }
    } finally {
      logits.dispose();
    }
  }

  /** Argmax and log-probability per row on the device; the suppressed token leaves both, as in sampleRow. */
  private async greedyOnDevice(logits: tf.Tensor2D): Promise<Map<RowId, Sampled>> {
    const drawn = await readTokens(tidy(() => greedyTokens(this.suppressed(logits))));
    return new Map(this.rows.map((r, i) => [r, drawn[i]] as const));
  }

  /** Every row's token drawn on webgpu under its own settings and uniform: only B ids and B floats come back. */
  private async sampleOnDevice(logits: tf.Tensor2D, rows: readonly { sampling: SamplingParams; uniform: number }[]): Promise<Sampled[]> {
    const settings = new Float32Array(rows.length * 4);
    rows.forEach(({ sampling: p, uniform }, i) => settings.set([p.temperature, p.topK, p.topP, uniform], i * 4));
    return readTokens(tidy(() => sampleTokensGpu(this.suppressed(logits), settings)));
  }

  /** The logits with the suppressed token at -Infinity (out of the draw and the normaliser), as sampleRow sets it. */
  private suppressed(logits: tf.Tensor2D): tf.Tensor2D {
    const V = logits.shape[1];
    return this.suppressToken !== null && this.suppressToken < V ? tf.add(logits, this.suppressMask(V)) : logits;
  }

  /** [V]: 0 everywhere but -Infinity at the suppressed token (adding it removes that token's mass). */
  private suppressMask(V: number): tf.Tensor1D {
    if (this.mask?.size !== V) {
      this.mask?.dispose();
      const values = new Float32Array(V);
      values[this.suppressToken as number] = -Infinity;
      this.mask = tf.keep(tf.tensor1d(values));
    }
    return this.mask;
  }

  /** Every row's token from the batch's logits [B, V], in row order. */
  private sample(logits: Float32Array, own: readonly StepInput[], logZ: Float32Array | null = null): Map<RowId, Sampled> {
    const V = logits.length / this.rows.length;
    return new Map(
      this.rows.map((r, i) => [r, sampleRow(logits.subarray(i * V, (i + 1) * V), own[i].sampling, own[i].uniform, this.suppressToken, logZ?.[i])] as const),
    );
  }

  async retire(rows: readonly RowId[]): Promise<void> {
    const drop = new Set(rows);
    const keep = this.rows.flatMap((r, i) => (drop.has(r) ? [] : [i]));
    if (keep.length === this.rows.length) return;
    const previous = this.state as ModelState;
    this.state = keep.length > 0 ? tidy(() => gatherState(previous, keep)) : null;
    disposeState(previous);
    this.rows = keep.map((i) => this.rows[i]);
  }

  async close(): Promise<void> {
    this.mask?.dispose();
    this.mask = null;
    if (this.state) disposeState(this.state);
    this.state = null;
    this.rows = [];
  }
}

/** Reads back and disposes the ids and log-probabilities of a batch drawn on the device. */
async function readTokens({ ids, logprobs }: { ids: tf.Tensor1D; logprobs: tf.Tensor1D }): Promise<Sampled[]> {
  try {
    // sync: B ids and B floats.
    const [id, logprob] = await Promise.all([ids.data(), logprobs.data()]);
    return Array.from(id, (x, i) => ({ id: x, logprob: logprob[i] }));
  } finally {
    ids.dispose();
    logprobs.dispose();
  }
}

/** tf.tidy for results that hold tensors in readonly containers (tfjs's TensorContainer type does not admit them). */
function tidy<T>(fn: () => T): T {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as T;
}
