/**
 * One generation loop per loaded model: every iteration runs ONE batched model.step over all active
 * sequences. A sequence is prefilled alone (B = 1, so it is conditioned on exactly its own tokens), joins the
 * batch with concatStates, and leaves at any step through gatherState; old states are disposed at once.
 */
import * as tf from '@tensorflow/tfjs-core';

import { concatStates, disposeState, gatherState, sampleToken, type ModelState, type XlstmModel } from '../core/index.ts';
import { XlstmError } from '../util/errors.ts';
import type { Rng } from '../util/rng.ts';
import type { ServeObserver } from './observer.ts';
import type { Sampling } from './request.ts';

/** How a sequence left the scheduler, when its own onToken did not end it. */
export type SequenceEnd = { kind: 'done' } | { kind: 'cancelled' } | { kind: 'error'; error: unknown };

export interface SequenceSpec {
  readonly promptTokens: readonly number[];
  readonly sampling: Sampling;
  readonly rng: Rng;
  /** Each sampled token as soon as it exists; return false to end the sequence after it. */
  onToken(id: number, logprob: number): boolean;
  /** Called exactly once, last. */
  onEnd(end: SequenceEnd): void;
}

export interface SequenceHandle {
  /** Takes effect before the next step: the sequence's rows are freed and onEnd gets 'cancelled'. */
  cancel(): void;
}

export interface SchedulerOptions {
  readonly maxActive: number;
  readonly maxQueued: number;
  /**
   * While a batch runs, each iteration prefills waiting prompts for up to this multiple of the last step's
   * time (at least one prompt; default 1): every prefill stalls the running streams, so a burst of arrivals is
   * spread over steps, and long steps (big batches) let more prompts in at a time. An idle scheduler prefills
   * everything waiting at once.
   */
  readonly prefillTimeRatio?: number;
  /** A token id never to sample (the padding token): its logit is set to -Infinity. */
  readonly suppressToken?: number;
  readonly observer: ServeObserver;
}

interface Sequence {
  readonly spec: SequenceSpec;
  readonly submittedAt: number;
  lastAt: number;
  lastToken: number;
  cancelled: boolean;
  ended: boolean;
}

export class Scheduler {
  private readonly queue: Sequence[] = [];
  /** Row i of `state` belongs to active[i]. */
  private active: Sequence[] = [];
  private state: ModelState | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly loop: Promise<void>;
  private steps = 0;
  private lastStepMs = 0;

  constructor(
    private readonly model: XlstmModel,
    private readonly options: SchedulerOptions,
  ) {
    this.loop = this.run();
  }

  get activeCount(): number {
    return this.active.length;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /** Batched steps run so far. */
  get stepsRun(): number {
    return this.steps;
  }

  /**
   * Queues all sequences of one request, or none: when they do not fit beside the running and waiting ones
   * the request fails at once with CAPACITY.
   */
  submit(specs: readonly SequenceSpec[]): SequenceHandle[] {
    if (this.closed) {
      throw new XlstmError('CANCELLED', 'the model expected to accept work, but it is shutting down. Hint: retry on another server or after a restart.');
    }
    const { maxActive, maxQueued } = this.options;
    const waiting = this.active.length + this.queue.length;
    if (waiting + specs.length > maxActive + maxQueued) {
      throw new XlstmError(
        'CAPACITY',
        `generation expected room for ${specs.length} more sequences, but ${waiting} of ${maxActive + maxQueued} places ` +
          `(${maxActive} active, ${maxQueued} queued) are taken. Hint: retry later or send fewer prompts.`,
      );
    }
    const now = performance.now();
    const handles = specs.map((spec) => {
      const seq: Sequence = { spec, submittedAt: now, lastAt: now, lastToken: -1, cancelled: false, ended: false };
      this.queue.push(seq);
      return {
        cancel: () => {
          seq.cancelled = true;
          this.poke();
        },
      };
    });
    this.poke();
    return handles;
  }

  /** Refuses new work, cancels every sequence and resolves when the loop has stopped and freed its state. */
  async close(): Promise<void> {
    this.closed = true;
    for (const seq of [...this.queue, ...this.active]) seq.cancelled = true;
    this.poke();
    await this.loop;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async run(): Promise<void> {
    for (;;) {
      this.dropCancelled();
      if (this.closed && this.active.length === 0 && this.queue.length === 0) break;
      try {
        await this.admit();
        if (this.active.length > 0) await this.step();
      } catch (error) {
        this.failActive(error);
      }
      if (this.active.length === 0 && this.queue.length === 0 && !this.closed) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      } else {
        // Sockets are served between steps: this is where unsubscribes and new requests get in.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  /**
   * Prefills waiting sequences into free rows, one at a time (B = 1), then joins them to the batch at once.
   * A prompt that fails to prefill ends alone; the batch carries on.
   */
  private async admit(): Promise<void> {
    const joined: Sequence[] = [];
    const states: ModelState[] = [];
    const budgetMs = this.active.length > 0 ? this.lastStepMs * (this.options.prefillTimeRatio ?? 1) : Infinity;
    const started = performance.now();
    let prefills = 0;
    while (
      this.queue.length > 0 &&
      this.active.length + joined.length < this.options.maxActive &&
      (prefills++ === 0 || performance.now() - started < budgetMs)
    ) {
      const seq = this.queue.shift() as Sequence;
      if (seq.cancelled) {
        this.finish(seq, { kind: 'cancelled' });
        continue;
      }
      let prefilled: { logits: tf.Tensor2D; state: ModelState };
      let row: Float32Array;
      try {
        prefilled = tidy(() => this.model.prefill(tf.tensor2d([Array.from(seq.spec.promptTokens)], undefined, 'int32')));
        try {
          // sync: the prompt's last-position logits, the only read of a prefill.
          row = (await prefilled.logits.data()) as Float32Array;
        } finally {
          prefilled.logits.dispose();
        }
      } catch (error) {
        this.finish(seq, { kind: 'error', error });
        continue;
      }
      const more = this.emit(seq, row, performance.now());
      this.options.observer.tokensGenerated(seq.lastToken >= 0 ? 1 : 0);
      if (more) {
        joined.push(seq);
        states.push(prefilled.state);
      } else {
        disposeState(prefilled.state);
      }
    }
    if (joined.length === 0) return;
    const previous = this.state;
    try {
      this.state = tidy(() => concatStates(previous ? [previous, ...states] : states));
    } catch (error) {
      for (const seq of joined) this.finish(seq, { kind: 'error', error });
      throw error;
    } finally {
      states.forEach(disposeState);
    }
    if (previous) disposeState(previous);
    this.active = [...this.active, ...joined];
  }

  private async step(): Promise<void> {
    const B = this.active.length;
    const started = performance.now();
    const tokens = Int32Array.from(this.active, (s) => s.lastToken);
    const previous = this.state as ModelState;
    const { logits, state } = tidy(() => this.model.step(tf.tensor1d(tokens, 'int32'), previous));
    disposeState(previous);
    this.state = state;
    let data: Float32Array;
    let logZ: Float32Array;
    try {
      // The normalisers of all rows in one batched op on the backend, instead of V exps per row on the host.
      const lse = tidy(() => tf.logSumExp(logits, 1));
      // sync: the batch's logits [B, V] and their normalisers [B]; states stay on the device.
      [data, logZ] = (await Promise.all([logits.data(), lse.data()])) as [Float32Array, Float32Array];
      lse.dispose();
    } finally {
      logits.dispose();
    }
    this.steps++;
    const V = data.length / B;
    const now = performance.now();
    this.lastStepMs = now - started;
    const keep: number[] = [];
    let sampled = 0;
    this.active.forEach((seq, i) => {
      if (!seq.cancelled) sampled++;
      if (this.emit(seq, data.subarray(i * V, (i + 1) * V), now, logZ[i])) keep.push(i);
    });
    this.options.observer.tokensGenerated(sampled);
    if (keep.length < B) this.retain(keep);
  }

  /** Samples one row for a sequence and hands the token over; false when the sequence has ended. */
  private emit(seq: Sequence, row: Float32Array, now: number, logZ?: number): boolean {
    if (seq.cancelled) {
      this.finish(seq, { kind: 'cancelled' });
      return false;
    }
    const { suppressToken } = this.options;
    if (suppressToken !== undefined && suppressToken < row.length) {
      // Removing the token's mass from the normaliser: log(Z - e^l) = log Z + log1p(-e^(l - log Z)).
      if (logZ !== undefined) logZ += Math.log1p(-Math.exp(row[suppressToken] - logZ));
      row[suppressToken] = -Infinity;
    }
    const { id, logprob } = sampleToken(row, seq.spec.sampling, seq.spec.rng, logZ);
    if (seq.lastToken < 0) this.options.observer.firstToken((now - seq.submittedAt) / 1000);
    else this.options.observer.interToken((now - seq.lastAt) / 1000);
    seq.lastAt = now;
    seq.lastToken = id;
    let more: boolean;
    try {
      more = seq.spec.onToken(id, logprob);
    } catch (error) {
      this.finish(seq, { kind: 'error', error });
      return false;
    }
    if (!more) this.finish(seq, { kind: 'done' });
    return more;
  }

  /** Keeps only the given rows of the batch (in order) and frees the rest. */
  private retain(rows: readonly number[]): void {
    const previous = this.state as ModelState;
    this.state = rows.length > 0 ? tidy(() => gatherState(previous, rows)) : null;
    disposeState(previous);
    this.active = rows.map((i) => this.active[i]);
  }

  private dropCancelled(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].cancelled) this.finish(this.queue.splice(i, 1)[0], { kind: 'cancelled' });
    }
    const rows: number[] = [];
    this.active.forEach((seq, i) => {
      if (seq.cancelled) this.finish(seq, { kind: 'cancelled' });
      else if (!seq.ended) rows.push(i);
    });
    if (rows.length < this.active.length) this.retain(rows);
  }

  /** A failed step takes the whole batch down: its state is unusable. Waiting sequences still get served. */
  private failActive(error: unknown): void {
    for (const seq of this.active) this.finish(seq, { kind: 'error', error });
    this.active = [];
    if (this.state) disposeState(this.state);
    this.state = null;
  }

  private finish(seq: Sequence, end: SequenceEnd): void {
    if (seq.ended) return;
    seq.ended = true;
    try {
      seq.spec.onEnd(end);
    } catch {
      // A sink that throws while ending cannot be told anything more; the scheduler carries on.
    }
  }
}

/** tf.tidy for results that hold tensors in readonly containers (tfjs's TensorContainer type does not admit them). */
function tidy<T>(fn: () => T): T {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as T;
}
