/**
 * Live updates of runs, keyed by run id: the queue publishes, each subscriber iterates its own
 * buffered stream, which ends once the run reaches a terminal phase (or the subscriber leaves).
 */
import type { RunError, RunPhase } from '../store/index.ts';
import type { ProgressEvent } from './progress.ts';

/** One update of one run: a phase change (event null) or a progress event in the current phase. */
export interface RunUpdate {
  readonly runId: string;
  readonly phase: RunPhase;
  readonly event: ProgressEvent | null;
  /** Set when phase is FAILED. */
  readonly error: RunError | null;
}

const TERMINAL: ReadonlySet<RunPhase> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** A buffered single-consumer stream; return() ends it at once, even while next() waits. */
class Stream implements AsyncIterableIterator<RunUpdate> {
  private buffer: RunUpdate[] = [];
  private waiter: ((r: IteratorResult<RunUpdate>) => void) | null = null;
  private ended = false;

  constructor(private readonly onEnd: () => void) {}

  push(update: RunUpdate): void {
    if (this.ended) return;
    if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve({ value: update, done: false });
    } else this.buffer.push(update);
    if (TERMINAL.has(update.phase) && update.event === null) this.finish();
  }

  /** No more updates; buffered ones are still delivered. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    if (this.waiter && this.buffer.length === 0) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<RunUpdate>> {
    const value = this.buffer.shift();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<RunUpdate>> {
    this.buffer = [];
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<RunUpdate> {
    return this;
  }
}

export class RunEvents {
  private readonly topics = new Map<string, Set<Stream>>();

  /** Streams the updates of one run from now on; `first` (the current state) is delivered first. */
  subscribe(runId: string, first: RunUpdate): AsyncIterableIterator<RunUpdate> {
    const set = this.topics.get(runId) ?? new Set<Stream>();
    this.topics.set(runId, set);
    const stream = new Stream(() => {
      set.delete(stream);
      if (set.size === 0 && this.topics.get(runId) === set) this.topics.delete(runId);
    });
    set.add(stream);
    stream.push(first);
    return stream;
  }

  publish(update: RunUpdate): void {
    for (const stream of [...(this.topics.get(update.runId) ?? [])]) stream.push(update);
  }

  /** Subscribers of a run, for tests and metrics. */
  subscribers(runId: string): number {
    return this.topics.get(runId)?.size ?? 0;
  }

  /** Ends every stream (server shutdown). */
  close(): void {
    for (const set of [...this.topics.values()]) for (const stream of [...set]) stream.finish();
  }
}
