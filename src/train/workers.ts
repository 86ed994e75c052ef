/**
 * Data-parallel training over N worker processes (one per device). Each step every worker computes
 * the gradient sum of its rows of every micro-batch on its own replica of the model. Started with the
 * trainer's optimizer, the pool then runs the whole update in the workers (`step`): they swap
 * gradient shards, each applies AdamW to the shard of the weights it owns, and each reads the
 * others' new shards before its next gradients, so the update equals a single worker's on the whole
 * batch while both cores work and no weights travel through the trainer. Without an optimizer they
 * only send their gradient sums back (`compute`) and the trainer updates and ships the weights. A
 * worker that dies fails the step and stops the others.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fork, type ChildProcess } from 'node:child_process';
import { pinWorkerGpu } from '../backend/gpu-devices.ts';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { weightEntries, type FormName, type XlstmModel } from '../core/index.ts';
import type { Batch } from '../data/index.ts';
import { XlstmError, type ErrorCode } from '../util/errors.ts';
import { checkLearningRate, clipScale, type AdamW } from './adamw.ts';
import { splitRows, type StepEngine } from './engine.ts';
import { makeExchange, putArray, takeArray } from './exchange.ts';
import type { FlatLayout } from './flat-layout.ts';
import { optimizerLayout, readCurrentState, writeStartingState } from './shard-state.ts';
import { addGradientSums, checkedLoss, divergence, trainableVariables, type GradientSum, type StepOutcome } from './step.ts';
import type { FromWorker, ShardSeconds, ToWorker, WorkerSeconds } from './worker-protocol.ts';
import { runnableEntry } from '../util/ts-worker.ts';

export interface WorkerPoolOptions {
  readonly devices: number;
  /**
   * The trainer's model: the workers start from its weights. With `optimizer`, `sync` brings it up to
   * date; without, its weights are sent to the workers whenever they change.
   */
  readonly model: XlstmModel;
  /**
   * The trainer's AdamW over the model's weights (optimizerFor): given, the workers own the update
   * (`step`, `sync`), starting from its moments and update count; absent, they compute gradients only.
   */
  readonly optimizer?: AdamW;
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

/** Where a sharded step's wall time went: the trainer's wait for each phase, and each worker's share. */
export interface StepPhases {
  readonly gradients: number;
  readonly reduce: number;
  readonly update: number;
  readonly workers: readonly ShardSeconds[];
}

type Reply = Exclude<FromWorker, { type: 'ready' | 'error' }>;
type ReplyOf<T extends Reply['type']> = Extract<Reply, { type: T }>;

interface Pending {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

interface Worker {
  readonly index: number;
  readonly child: ChildProcess;
  pending: Pending | null;
  placement: WorkerPlacement | null;
}

export class WorkerPool implements StepEngine {
  private failure: Error | null = null;
  private closing = false;
  private dirty = true;
  private nextId = 1;
  /** Updates applied (the optimizer's step count), when the workers own the update. */
  private t = 0;
  /** The workers hold newer weights and moments than the trainer's model and optimizer. */
  private ahead = false;
  /** The flat layout of the weights, when the workers own the update. */
  private layout: FlatLayout | null = null;
  /** Each worker's time on the last `compute`'s gradients and their readback. */
  lastSeconds: readonly WorkerSeconds[] = [];
  /** Where the last `step`'s time went. */
  lastPhases: StepPhases | null = null;

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
    const { optimizer } = options;
    if (optimizer) {
      try {
        pool.layout = optimizerLayout(options.model, optimizer);
        await writeStartingState(pool.exchange.dir, options.devices, pool.layout, options.model, optimizer);
      } catch (e) {
        pool.exchange.remove();
        throw e;
      }
      pool.t = optimizer.stepCount;
    }
    const decay = pool.layout?.params.map((p) => p.decay) ?? [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < options.devices; index++) {
      const env: NodeJS.ProcessEnv = { ...process.env, XLSTM_WORKER_INDEX: String(index) };
      // One GPU per worker when a GPU backend drives them and the caller did not pin them already.
      if (options.backend === 'tensorflow' && env.CUDA_VISIBLE_DEVICES === undefined) env.CUDA_VISIBLE_DEVICES = String(index);
      if (options.backend === 'webgpu') pinWorkerGpu(env, index, options.devices);
      const entry = options.entry ?? runnableEntry(ENTRY);
      const execArgv = entry.endsWith('.ts') ? ['--import', tsxLoader()] : [];
      // A V8 CPU profile of each worker, for finding where a step's time goes (NODE_OPTIONS refuses --cpu-prof).
      const profiles = process.env.XLSTM_WORKER_CPU_PROF;
      if (profiles) execArgv.push('--cpu-prof', '--cpu-prof-dir', profiles);
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
        shard: optimizer ? { index, parts: options.devices, decay, optimizer: optimizer.settings } : null,
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

  /**
   * One update from the step's micro-batches, all of it in the workers: gradients of each worker's
   * rows, a reduce-scatter of them, then AdamW on each worker's shard. The outcome and its failures
   * (no target, a non-finite loss or gradient norm: nothing changes) are applyGradientSum's.
   */
  async step(batches: readonly Batch[], lr: number, step: number): Promise<StepOutcome> {
    const optimizer = this.owner('step');
    checkLearningRate(lr);
    const shards = this.shardRows(batches);
    const id = this.nextId++;
    const t0 = performance.now();
    const grads = await this.askAll('gradients', (w) => ({ type: 'gradients', id, batches: shards[w] }));
    const t1 = performance.now();
    // In worker order, so the sums do not depend on which worker answered first.
    const count = grads.reduce((s, g) => s + g.count, 0);
    const loss = checkedLoss(grads.reduce((s, g) => s + g.lossSum, 0), count, step);
    const reduced = await this.askAll('reduced', () => ({ type: 'reduce', id, count }));
    const t2 = performance.now();
    const gradNorm = Math.sqrt(reduced.reduce((s, r) => s + r.sumsq, 0));
    if (!Number.isFinite(gradNorm)) throw divergence(step, 'gradient norm', gradNorm);
    const scale = clipScale(optimizer.settings.gradClip ?? 0, gradNorm);
    this.t += 1;
    this.ahead = true;
    const updated = await this.askAll('updated', () => ({ type: 'update', id, lr, t: this.t, scale }));
    const t3 = performance.now();
    this.lastPhases = {
      gradients: (t1 - t0) / 1000,
      reduce: (t2 - t1) / 1000,
      update: (t3 - t2) / 1000,
      workers: grads.map((g, w) => ({ load: g.load, compute: g.compute, send: g.send, reduce: reduced[w].seconds, update: updated[w].seconds })),
    };
    return { loss, gradNorm, clipped: scale < 1, lr, tokens: count };
  }

  /** Reads the workers' weights and moments into the trainer's model and optimizer, when they are behind. */
  async sync(): Promise<void> {
    const optimizer = this.owner('sync');
    if (!this.ahead) return;
    const id = this.nextId++;
    await this.askAll('pulled', () => ({ type: 'pull', id }));
    readCurrentState(this.exchange.dir, this.workers.length, this.layout!, trainableVariables(this.options.model), optimizer, this.t);
    this.ahead = false;
  }

  /** Gradient-only pools: the trainer changed the weights, which go to the workers with the next `compute`. */
  weightsChanged(): void {
    this.gradientsOnly('weightsChanged');
    this.dirty = true;
  }

  /** Gradient-only pools: the gradient sum of the trainer's current weights over the step's micro-batches. */
  async compute(batches: readonly Batch[]): Promise<GradientSum> {
    this.gradientsOnly('compute');
    const shards = this.shardRows(batches);
    // The weights are read back once per update, end to end, and shipped to every worker.
    const weights = this.dirty ? putArray(this.exchange.dir, 'weights.f32', await flatWeights(this.options.model)) : null;
    this.dirty = false;
    const id = this.nextId++;
    const results = await this.askAll('grads', (w) => ({ type: 'step', id, weights, batches: shards[w] })).catch((e: unknown) => {
      // A failed step may have reached some workers with new weights and not others.
      this.dirty = true;
      throw e;
    });
    this.lastSeconds = results.map((r) => r.seconds);
    const shapes = weightEntries(this.options.model.weights).map(([, t]) => t.shape);
    return addGradientSums(results.map((r) => ({ grads: unflatten(takeArray(r.grads), shapes), lossSum: r.lossSum, count: r.count })));
  }

  /** Row r of every micro-batch goes to worker r; a batch smaller than the pool leaves some idle. */
  private shardRows(batches: readonly Batch[]): Batch[][] {
    const shards = this.workers.map(() => [] as Batch[]);
    for (const batch of batches) splitRows(batch, this.workers.length).forEach((shard, w) => shards[w].push(shard));
    return shards;
  }

  private owner(method: string): AdamW {
    const { optimizer } = this.options;
    if (!optimizer) {
      throw new XlstmError('INVALID_INPUT', `WorkerPool.${method} expected a pool started with the trainer's optimizer, but this one computes gradients only. Hint: call compute().`);
    }
    return optimizer;
  }

  private gradientsOnly(method: string): void {
    if (this.options.optimizer) {
      throw new XlstmError('INVALID_INPUT', `WorkerPool.${method} expected a gradient-only pool, but this one owns the update. Hint: call step() and sync().`);
    }
  }

  /** Sends each worker its message and waits for every reply (one request per worker at a time). */
  private async askAll<T extends Reply['type']>(type: T, message: (w: number) => ToWorker): Promise<ReplyOf<T>[]> {
    if (this.failure) throw this.failure;
    if (this.workers.some((w) => w.pending !== null)) {
      throw new XlstmError('INVALID_INPUT', `WorkerPool expected one call at a time, but ${type} was asked for while another was waiting. Hint: await each step() or sync() before the next.`);
    }
    const replies = await Promise.all(
      this.workers.map(
        (worker, w) =>
          new Promise<Reply>((resolve, reject) => {
            worker.pending = { resolve, reject };
            this.post(worker, message(w));
          }),
      ),
    );
    const wrong = replies.find((r) => r.type !== type);
    if (wrong) throw new Error(`data-parallel worker expected to answer ${type}, but it answered ${wrong.type}`);
    return replies as ReplyOf<T>[];
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
          case 'error':
            this.fail(worker, `failed: ${message.message}`, (message.code as ErrorCode | null) ?? 'BACKEND');
            if (!started) reject(this.failure);
            return;
          default: {
            const pending = worker.pending;
            worker.pending = null;
            pending?.resolve(message);
          }
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
