/**
 * One DecodePool worker thread and its calls in flight: each call is answered by its id, and the thread's
 * death rejects every call still waiting.
 */
import type { Worker } from 'node:worker_threads';
import { XlstmError, type ErrorCode } from '../util/errors.ts';
import { typeScriptWorker } from '../util/ts-worker.ts';
import type { FromWorker, ToWorker, WorkerInit } from './decode-protocol.ts';

interface Pending {
  resolve(message: FromWorker): void;
  reject(error: Error): void;
}

const ENTRY = new URL('./decode-worker.ts', import.meta.url);

/** The start-up's call id: the worker answers it with 'ready' once its backend and model are built. */
const READY = 0;

export class DecodeThread {
  readonly worker: Worker;
  /** Resolves once the worker has its backend and model; rejects with the reason it could not. */
  readonly ready: Promise<unknown>;
  readonly exited: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private lastError: string | null = null;
  private closing = false;

  /** `onDeath` turns an exit nobody asked for into the error that the calls in flight reject with. */
  constructor(
    readonly index: number,
    init: WorkerInit,
    onDeath: (exitCode: number, lastError: string | null) => Error,
  ) {
    this.worker = typeScriptWorker(ENTRY, { workerData: init, name: `xlstm-decode-${index}` });
    this.ready = this.await(READY);
    this.worker.on('message', (message: FromWorker) => {
      const id = message.type === 'ready' ? READY : message.id;
      const pending = this.pending.get(id);
      if (!pending) return;
      this.settle(id);
      if (message.type === 'error') pending.reject(workerError(index, message.code, message.message));
      else pending.resolve(message);
    });
    this.worker.on('error', (e) => {
      this.lastError = errorText(e);
    });
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (exitCode) => {
        const error = this.closing
          ? new XlstmError('CANCELLED', 'a decode call expected its result, but the pool was closed first. Hint: await pending calls before close().')
          : onDeath(exitCode, this.lastError);
        for (const [id, pending] of [...this.pending]) {
          this.settle(id);
          pending.reject(error);
        }
        resolve();
      });
    });
  }

  call(message: ToWorker, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    const result = this.await(message.id);
    this.worker.postMessage(message, transfer);
    return result;
  }

  /** Stops the thread at once (calls in flight reject with CANCELLED) and resolves when it has exited. */
  async close(): Promise<void> {
    this.closing = true;
    // An idle thread is unref'd; awaiting its exit must still hold the process open.
    this.worker.ref();
    await this.worker.terminate();
    await this.exited;
  }

  /** A thread with calls in flight keeps the process alive and an idle one does not, so a forgotten pool cannot hang exit. */
  private await(id: number): Promise<FromWorker> {
    if (this.pending.size === 0) this.worker.ref();
    return new Promise<FromWorker>((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  private settle(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0 && !this.closing) this.worker.unref();
  }
}

function workerError(index: number, code: ErrorCode | null, message: string): XlstmError {
  return code ? new XlstmError(code, message) : new XlstmError('BACKEND', `decode worker ${index} failed: ${message}`);
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
