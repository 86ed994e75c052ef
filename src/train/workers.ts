/**
 * Data-parallel training over N worker processes (one per device): every step each worker computes
 * the gradient sum of its shard of every micro-batch; the trainer adds them, so the one AdamW
 * update it applies equals a single worker's on the whole batch. A worker that dies fails the step
 * and stops the others.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fork, type ChildProcess } from 'node:child_process';
import { pinWorkerGpu } from '../backend/gpu-devices.ts';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { weightEntries, type FormName, type XlstmModel } from '../core/index.ts';
import type { Batch } from '../data/index.ts';
import { XlstmError, type ErrorCode } from '../util/errors.ts';
import { splitRows, type GradientEngine } from './engine.ts';
import { makeExchange, putArray, takeArray } from './exchange.ts';
import { addGradientSums, type GradientSum } from './step.ts';
import type { FromWorker, ToWorker, WorkerSeconds } from './worker-protocol.ts';

export interface WorkerPoolOptions {
  readonly devices: number;
  /** The trainer's model: its weights are sent to the workers whenever they change. */
  readonly model: XlstmModel;
  readonly padId: number;
  readonly form?: FormName;
  /** The tfjs backend each worker selects (null: the first available, as the trainer does). */
  readonly backend: string | null;
  /**
   * The worker script to fork: a bundled JavaScript build of worker-entry.ts where there is no
   * tsx (bench/gpu on a lent machine). Default: worker-entry.ts through tsx's loader.
   */
  readonly entry?: string;
}

/** Where a worker runs, from its ready message. */
export interface WorkerPlacement {
  readonly pid: number;
  readonly backend: string;
  /** The backend's description (the GPU adapter on webgpu). */
  readonly detail: string;
  /** The PCI device it was pinned to (DRI_PRIME), or null. */
  readonly gpu: string | null;
}

const ENTRY = fileURLToPath(new URL('./worker-entry.ts', import.meta.url));
// Workers run the TypeScript entry through tsx's loader, resolved from here so any working
// directory works; only then, because a bundled build (options.entry) ships without tsx.
const tsxLoader = (): string => pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface Pending {
  resolve(sum: { grads: string; lossSum: number; count: number; seconds: WorkerSeconds }): void;
  reject(error: Error): void;
}

interface Worker {
  readonly index: number;
  readonly child: ChildProcess;
  pending: Pending | null;
  placement: WorkerPlacement | null;
}

export class WorkerPool implements GradientEngine {
  private failure: Error | null = null;
  private closing = false;
  private dirty = true;
  private nextId = 1;
  /** Each worker's time on the last step's gradients and their readback. */
  lastSeconds: readonly WorkerSeconds[] = [];

  /** Where weights and gradients are swapped as files (exchange.ts); removed on close. */
  private readonly exchange = makeExchange();

  private constructor(
    private readonly workers: Worker[],
    private readonly options: WorkerPoolOptions,
  ) {}

  /** Forks the workers and waits until each has its backend and model ready. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    if (!Number.isInteger(options.devices) || options.devices < 1) {
      throw new XlstmError('INVALID_CONFIG', `trainer.devices expected an integer >= 1, but got ${options.devices}.`);
    }
    const workers: Worker[] = [];
    const pool = new WorkerPool(workers, options);
    const ready: Promise<void>[] = [];
    for (let index = 0; index < options.devices; index++) {
      const env: NodeJS.ProcessEnv = { ...process.env, XLSTM_WORKER_INDEX: String(index) };
      // One GPU per worker when a GPU backend drives them and the caller did not pin them already.
      if (options.backend === 'tensorflow' && env.CUDA_VISIBLE_DEVICES === undefined) env.CUDA_VISIBLE_DEVICES = String(index);
      if (options.backend === 'webgpu') pinWorkerGpu(env, index, options.devices);
      const entry = options.entry ?? ENTRY;
      const execArgv = entry.endsWith('.ts') ? ['--import', tsxLoader()] : [];
      const child = fork(entry, [], { serialization: 'advanced', execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const worker: Worker = { index, child, pending: null, placement: null };
      workers.push(worker);
      ready.push(pool.watch(worker));
      pool.post(worker, {
        type: 'init',
        backend: options.backend,
        config: options.model.config,
        form: options.form ?? 'parallel',
        padId: options.padId,
        exchange: pool.exchange.dir,
      });
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get devices(): number {
    return this.workers.length;
  }

  /** Where each worker runs (backend, adapter, pinned GPU), in worker order. */
  get placements(): WorkerPlacement[] {
    return this.workers.map((w) => w.placement ?? { pid: w.child.pid ?? -1, backend: 'unknown', detail: '', gpu: null });
  }

  /** Process ids of the workers (for monitoring, and for tests that kill one). */
  get pids(): number[] {
    return this.workers.map((w) => w.child.pid ?? -1);
  }

  weightsChanged(): void {
    this.dirty = true;
  }

  async compute(batches: readonly Batch[]): Promise<GradientSum> {
    if (this.failure) throw this.failure;
    const shards = this.workers.map(() => [] as Batch[]);
    for (const batch of batches) {
      // Row r of every shard list goes to worker r; a batch smaller than the pool leaves some idle.
      splitRows(batch, this.workers.length).forEach((shard, w) => shards[w].push(shard));
    }
    // The weights are read back once per update, end to end, and shipped to every worker.
    const weights = this.dirty ? putArray(this.exchange.dir, 'weights.f32', await flatWeights(this.options.model)) : null;
    this.dirty = false;
    const id = this.nextId++;
    const results = await Promise.all(
      this.workers.map(
        (worker, w) =>
          new Promise<{ grads: string; lossSum: number; count: number; seconds: WorkerSeconds }>((resolve, reject) => {
            worker.pending = { resolve, reject };
            this.post(worker, { type: 'step', id, weights, batches: shards[w] });
          }),
      ),
    ).catch((e: unknown) => {
      // A failed step may have reached some workers with new weights and not others.
      this.dirty = true;
      throw e;
    });
    this.lastSeconds = results.map((r) => r.seconds);
    const shapes = weightEntries(this.options.model.weights).map(([, t]) => t.shape);
    return addGradientSums(results.map((r) => ({ grads: unflatten(takeArray(r.grads), shapes), lossSum: r.lossSum, count: r.count })));
  }

  /** Stops every worker (a polite stop, then SIGKILL after a grace period); safe to call twice. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.workers.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        if (child.connected) child.send({ type: 'stop' } satisfies ToWorker, () => {});
        const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    this.exchange.remove();
  }

  private post(worker: Worker, message: ToWorker): void {
    if (!worker.child.connected) return;
    worker.child.send(message, (e) => {
      if (e && !this.closing) this.fail(worker, `could not be sent a message (${e.message})`, 'BACKEND');
    });
  }

  /** Resolves once the worker reports ready; afterwards routes its messages and notices its death. */
  private watch(worker: Worker): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let started = false;
      worker.child.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            started = true;
            worker.placement = { pid: worker.child.pid ?? -1, backend: message.backend, detail: message.detail, gpu: message.gpu };
            resolve();
            return;
          case 'grads': {
            const pending = worker.pending;
            worker.pending = null;
            pending?.resolve(message);
            return;
          }
          case 'error':
            this.fail(worker, `failed: ${message.message}`, (message.code as ErrorCode | null) ?? 'BACKEND');
            if (!started) reject(this.failure);
            return;
        }
      });
      worker.child.on('exit', (code, signal) => {
        if (this.closing) return;
        this.fail(worker, `exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`, 'BACKEND');
        if (!started) reject(this.failure);
      });
      worker.child.on('error', (e) => {
        this.fail(worker, `could not run (${e.message})`, 'BACKEND');
        if (!started) reject(this.failure);
      });
    });
  }

  /** The first failure wins: every waiting step is rejected and the other workers are stopped. */
  private fail(worker: Worker, what: string, code: ErrorCode): void {
    if (!this.failure) {
      this.failure = new XlstmError(
        code,
        `data-parallel worker ${worker.index + 1} of ${this.workers.length} (pid ${worker.child.pid}) expected to compute its gradients, but it ${what}. ` +
          'Hint: the run stops here; its last checkpoint is intact and it can be resumed.',
      );
    }
    const failure = this.failure;
    for (const w of this.workers) {
      const pending = w.pending;
      w.pending = null;
      pending?.reject(failure);
    }
    void this.close();
  }
}

/** Every weight flattened and laid end to end, in weightEntries order. */
async function flatWeights(model: XlstmModel): Promise<Float32Array> {
  const flat = tf.tidy(() => tf.concat(weightEntries(model.weights).map(([, t]) => tf.reshape(t, [-1]))));
  const data = (await flat.data()) as Float32Array;
  flat.dispose();
  return data;
}

/** The inverse of the workers' flattening: one tensor per shape, read from consecutive ranges. */
function unflatten(flat: Float32Array, shapes: readonly number[][]): tf.Tensor[] {
  let offset = 0;
  return shapes.map((shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = tf.tensor(flat.subarray(offset, offset + size), shape, 'float32');
    offset += size;
    return t;
  });
}
