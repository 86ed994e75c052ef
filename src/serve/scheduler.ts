/**
 * One generation loop per loaded model: every iteration hands out the tokens of ONE batched step on a Decoder:
 * the model in this thread (one step of all active sequences), or a DecodePool of worker threads (decodeThreads
 * > 1), where each thread's sequences step on their own, so that no thread waits for another's step. A
 * sequence is prefilled alone, joins the batch, and leaves at any step. It draws one uniform per token from its
 * own Rng and the decoder samples with it, so its tokens are the same alone, in a batch, beside other requests,
 * on any thread.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Worker } from 'node:worker_threads';

import type { XlstmModel } from '../core/index.ts';
import { isXlstmError, XlstmError } from '../util/errors.ts';
import type { Rng } from '../util/rng.ts';
import { DecodePool } from './decode-pool.ts';
import { decodeThreadsOn } from './decode-threads.ts';
import type { Decoder, RowId, Sampled, StepInput } from './decoder.ts';
import { InProcessDecoder } from './in-process-decoder.ts';
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
  /**
   * Threads that decode. 1 (the default) runs the model in this thread, on any backend. N > 1 starts a DecodePool
   * of N worker threads, each with a replica of the model on this thread's backend (cpu or wasm only): the
   * batch's rows are split over them and the event loop stays free while a step runs.
   */
  readonly decodeThreads?: number;
  readonly observer: ServeObserver;
}


interface Posted {
  readonly out: Promise<Map<RowId, Sampled>>;
  readonly started: number;
}

/**
 * Steps a lane keeps posted on a decoder that steps ahead: the next one waits in the thread while this thread
 * hands out the last one's tokens, so a decode thread never waits for this one (which serves every lane and
 * every socket).
 */
const AHEAD = 2;

interface Sequence {
  readonly spec: SequenceSpec;
  readonly submittedAt: number;
  lastAt: number;
  lastToken: number;
  /** Its row in the decoder once admitted, and that row's lane. */
  row: RowId;
  lane: number;
  /** The draw for its first token, kept so that a retried admission samples what the first try would have. */
  firstUniform: number | null;
  cancelled: boolean;
  ended: boolean;
}

export class Scheduler {
  /** Resolves once the decoder is up (a pool's threads have their models), rejects when it could not start. */
  readonly ready: Promise<void>;
  private readonly queue: Sequence[] = [];
  private active: Sequence[] = [];
  private decoder: Decoder | null = null;
  /** A failed call left the decoder's rows unknown: it is replaced before the next admission. */
  private broken = false;
  private readonly threads: number;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly loop: Promise<void>;
  private steps = 0;
  private lastStepMs = 0;
  /**
   * Steps posted to the decoder, by lane and oldest first, whose tokens are not handed out yet (up to AHEAD on a
   * decoder that steps ahead, else one); admission waits until there are none.
   */
  private readonly inFlight = new Map<number, Posted[]>();

  constructor(
    private readonly model: XlstmModel,
    private readonly options: SchedulerOptions,
  ) {
    const threads = options.decodeThreads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new XlstmError('INVALID_CONFIG', `decodeThreads expected an integer >= 1, but got ${threads}. Hint: use 1 to decode in this thread.`);
    }
    if (decodeThreadsOn(tf.getBackend(), threads) !== threads) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `decodeThreads > 1 expected a cpu or wasm backend, but the backend is ${tf.getBackend()}. Hint: use 1 thread on this backend.`,
      );
    }
    this.threads = threads;
    this.ready = this.usableDecoder().then(() => undefined);
    // Awaited by the loop; whoever else awaits it sees the error.
    this.ready.catch(() => undefined);
    this.loop = this.run();
  }

  get activeCount(): number {
    return this.active.length;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /** Batched steps run so far (with decode threads, each of one thread's sequences). */
  get stepsRun(): number {
    return this.steps;
  }

  /** Threads that decode (1: this one). */
  get decodeThreads(): number {
    return this.threads;
  }

  /** The decode pool's worker threads (none in process), for monitoring and for tests that stop one. */
  get decodeWorkers(): readonly Worker[] {
    return this.decoder instanceof DecodePool ? this.decoder.workers : [];
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
      const seq: Sequence = { spec, submittedAt: now, lastAt: now, lastToken: -1, row: -1, lane: 0, firstUniform: null, cancelled: false, ended: false };
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

  /** Refuses new work, cancels every sequence and resolves when the loop has stopped and freed its decoder. */
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

  private get needsDecoder(): boolean {
    return this.broken || this.decoder?.failure != null;
  }

  private async run(): Promise<void> {
    await this.ready.catch(() => undefined);
    for (;;) {
      await this.dropCancelled();
      if (this.closed && this.active.length === 0 && this.queue.length === 0) break;
      if (this.active.length > 0 || this.queue.length > 0 || this.needsDecoder) await this.iterate();
      if (this.active.length === 0 && this.queue.length === 0 && !this.closed && !this.needsDecoder) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      } else {
        // Sockets are served between steps: this is where unsubscribes and new requests get in.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    const decoder = this.decoder;
    this.decoder = null;
    await decoder?.close();
  }

  private async iterate(): Promise<void> {
    let decoder: Decoder;
    try {
      decoder = await this.usableDecoder();
    } catch (error) {
      // Without a decoder nothing waiting can be served; the next request tries to start one again.
      for (const seq of this.queue.splice(0)) this.finish(seq, { kind: 'error', error });
      return;
    }
    try {
      // A posted step's rows are fixed: new prompts join after every lane's tokens are out.
      if (this.inFlight.size === 0) await this.admit(decoder);
      if (this.active.length > 0 || this.inFlight.size > 0) await this.step(decoder);
    } catch (error) {
      this.failActive(error);
    }
  }

  /** The decoder, replaced first when it failed: its sequences end with the error, waiting ones stay queued. */
  private async usableDecoder(): Promise<Decoder> {
    if (this.decoder && !this.needsDecoder) return this.decoder;
    const old = this.decoder;
    if (old?.failure && this.active.length > 0) this.failActive(old.failure);
    this.decoder = null;
    this.inFlight.clear();
    this.broken = false;
    await old?.close().catch(() => undefined);
    this.decoder = await this.openDecoder();
    return this.decoder;
  }

  private async openDecoder(): Promise<Decoder> {
    const { suppressToken } = this.options;
    if (this.threads === 1) return new InProcessDecoder(this.model, suppressToken ?? null);
    return DecodePool.create({
      config: this.model.config,
      arrays: this.model.toArrays(),
      threads: this.threads,
      backend: tf.getBackend() as 'cpu' | 'wasm',
      suppressToken,
      // A worker that dies while the loop sleeps: wake it to start new threads before the next request.
      onFailure: () => this.poke(),
    });
  }

  /**
   * Prefills waiting sequences into free rows and hands each its first token. An idle scheduler admits everything
   * that fits in one call (the decoder batches equal lengths and spreads prompts over its threads). A running
   * batch waits on every prefill, so it takes chunks of one prompt per decode thread (prefilled side by side),
   * the first always and later ones while the time budget lasts. A prompt that fails to prefill ends alone; the
   * batch carries on.
   */
  private async admit(decoder: Decoder): Promise<void> {
    const { maxActive, observer } = this.options;
    const running = this.active.length > 0;
    const budgetMs = running ? this.lastStepMs * (this.options.prefillTimeRatio ?? 1) : Infinity;
    const started = performance.now();
    const leaving: RowId[] = [];
    let chunks = 0;
    while (this.queue.length > 0 && this.active.length < maxActive && (chunks === 0 || performance.now() - started < budgetMs)) {
      const size = Math.min(running ? decoder.threads : this.queue.length, maxActive - this.active.length);
      chunks++;
      const chunk: Sequence[] = [];
      while (chunk.length < size && this.queue.length > 0) {
        const seq = this.queue.shift() as Sequence;
        if (seq.cancelled) this.finish(seq, { kind: 'cancelled' });
        else chunk.push(seq);
      }
      const admitted = await this.admitChunk(decoder, chunk);
      const now = performance.now();
      for (const [seq, first] of admitted) {
        seq.row = first.row;
        seq.lane = decoder.laneOf(first.row);
        const more = this.emit(seq, first, now);
        observer.tokensGenerated(seq.lastToken >= 0 ? 1 : 0);
        if (more) this.active.push(seq);
        else leaving.push(seq.row);
      }
    }
    if (leaving.length > 0) await decoder.retire(leaving);
  }

  /** Admits a chunk (all or nothing); when that fails, each prompt alone, so only the one at fault ends. */
  private async admitChunk(decoder: Decoder, chunk: readonly Sequence[]): Promise<[Sequence, Sampled & { row: RowId }][]> {
    if (chunk.length === 0) return [];
    try {
      const out = await decoder.admit(
        chunk.map((seq) => ({ tokens: seq.spec.promptTokens, sampling: seq.spec.sampling, uniform: (seq.firstUniform ??= seq.spec.rng.uniform()) })),
      );
      return chunk.map((seq, j) => [seq, out[j]]);
    } catch (error) {
      if (decoder.failure || chunk.length === 1) {
        for (const seq of chunk) this.finish(seq, { kind: 'error', error: this.forClients(error) });
        // A dead decoder takes the batch with it.
        if (decoder.failure) throw error;
        return [];
      }
      const alone: [Sequence, Sampled & { row: RowId }][] = [];
      for (const seq of chunk) alone.push(...(await this.admitChunk(decoder, [seq])));
      return alone;
    }
  }

  /**
   * Hands out the tokens of the lane whose oldest posted step ends first (posting steps for every lane without
   * one first, unless prompts wait to join: then the lanes drain). When the decoder computes off this thread
   * and nobody waits to join, that lane's next step is posted before its events leave: their GraphQL work and
   * socket writes then run here while the decode threads compute.
   */
  private async step(decoder: Decoder): Promise<void> {
    // A lane left idle while others ran (its step ended with prompts waiting, which then went) starts again here.
    if (this.inFlight.size === 0 || this.postsWhileRunning(decoder)) {
      for (const lane of new Set(this.active.map((s) => s.lane))) if (!this.inFlight.has(lane)) this.refill(decoder, lane);
    }
    const { lane, started, sampled } = await Promise.race(
      [...this.inFlight].map(([lane, [first]]) => first.out.then((sampled) => ({ lane, started: first.started, sampled }))),
    );
    const posted = this.inFlight.get(lane) as Posted[];
    posted.shift();
    if (posted.length === 0) this.inFlight.delete(lane);
    this.steps++;
    const now = performance.now();
    this.lastStepMs = now - started;
    const keep: Sequence[] = [];
    const leaving: RowId[] = [];
    let tokens = 0;
    // Sequences dropped while the step ran are no longer active (their rows' tokens are dropped here); nothing
    // joins while one runs.
    for (const seq of this.active) {
      const got = seq.lane === lane ? sampled.get(seq.row) : undefined;
      if (!got) keep.push(seq);
      else {
        if (!seq.cancelled) tokens++;
        if (this.emit(seq, got, now)) keep.push(seq);
        else leaving.push(seq.row);
      }
    }
    this.options.observer.tokensGenerated(tokens);
    this.active = keep;
    // Posted first, so the decoder frees the rows before it steps the others.
    const retired = leaving.length > 0 ? decoder.retire(leaving) : null;
    if (this.postsWhileRunning(decoder) && this.active.some((s) => s.lane === lane)) this.refill(decoder, lane);
    await retired;
  }

  /** Whether steps go out before tokens are handed out: the decoder computes off this thread, no prompt waits. */
  private postsWhileRunning(decoder: Decoder): boolean {
    return decoder.concurrent && this.queue.length === 0 && !this.closed;
  }

  /**
   * Posts a lane's steps up to what it keeps in flight: the first with each sequence's last token, later ones
   * (stepping ahead) with -1, the token the decoder sampled for the row in the step before.
   */
  private refill(decoder: Decoder, lane: number): void {
    let posted = this.inFlight.get(lane);
    if (!posted) this.inFlight.set(lane, (posted = []));
    const depth = decoder.ahead ? AHEAD : 1;
    while (posted.length < depth) posted.push(this.post(decoder, lane, posted.length > 0));
  }

  /** Posts one step of every active sequence of a lane, each drawing its uniform now. */
  private post(decoder: Decoder, lane: number, ahead: boolean): Posted {
    const inputs = new Map<RowId, StepInput>();
    // A sequence cancelled meanwhile still needs an input for its row, but draws nothing from its Rng.
    for (const seq of this.active) {
      if (seq.lane !== lane) continue;
      inputs.set(seq.row, { token: ahead ? -1 : seq.lastToken, sampling: seq.spec.sampling, uniform: seq.cancelled ? 0 : seq.spec.rng.uniform() });
    }
    const started = performance.now();
    const out = decoder.step(inputs);
    // Awaited by a later step(); a close or a failure may drop it unawaited.
    out.catch(() => undefined);
    return { out, started };
  }

  /** Hands a sampled token to its sequence; false when the sequence has ended. */
  private emit(seq: Sequence, sampled: Sampled, now: number): boolean {
    if (seq.cancelled) {
      this.finish(seq, { kind: 'cancelled' });
      return false;
    }
    if (seq.lastToken < 0) this.options.observer.firstToken((now - seq.submittedAt) / 1000);
    else this.options.observer.interToken((now - seq.lastAt) / 1000);
    seq.lastAt = now;
    seq.lastToken = sampled.id;
    let more: boolean;
    try {
      more = seq.spec.onToken(sampled.id, sampled.logprob);
    } catch (error) {
      this.finish(seq, { kind: 'error', error });
      return false;
    }
    if (!more) this.finish(seq, { kind: 'done' });
    return more;
  }

  private async dropCancelled(): Promise<void> {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].cancelled) this.finish(this.queue.splice(i, 1)[0], { kind: 'cancelled' });
    }
    const leaving: RowId[] = [];
    this.active = this.active.filter((seq) => {
      if (seq.cancelled) this.finish(seq, { kind: 'cancelled' });
      if (!seq.ended) return true;
      leaving.push(seq.row);
      return false;
    });
    if (leaving.length === 0 || !this.decoder) return;
    try {
      await this.decoder.retire(leaving);
    } catch (error) {
      this.failActive(error);
    }
  }

  /** A failed call takes the whole batch down: its rows are unusable. Waiting sequences still get served. */
  private failActive(error: unknown): void {
    const told = this.forClients(error);
    for (const seq of this.active) this.finish(seq, { kind: 'error', error: told });
    this.active = [];
    this.inFlight.clear();
    this.broken = true;
  }

  /** A dead decode thread's error names the pool's remedy; a client can only retry. */
  private forClients(error: unknown): unknown {
    if (!isXlstmError(error, 'BACKEND') || error !== this.decoder?.failure) return error;
    return new XlstmError('BACKEND', `${error.message.split(' Hint: ')[0]} Hint: retry the request; the server starts new decode threads.`, { cause: error });
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
