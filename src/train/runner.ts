/**
 * The run queue: starts runs from the store one at a time (by default), records their progress,
 * phases and checkpoints there, publishes live updates, cancels within one step, and after a
 * restart resumes RUNNING runs from their last checkpoint before going on with QUEUED ones.
 * Requests are checked in full before a record is created, so bad input starts nothing.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repairInterruptedWrite } from '../checkpoint/index.ts';
import { configToObject, type ModelConfig } from '../core/index.ts';
import { validateDataset } from '../data/index.ts';
import { isTerminal, type CheckpointRecord, type MetricRecord, type Page, type PageArgs, type RunError, type RunKind, type RunPhase, type RunRecord, type Store } from '../store/index.ts';
import { confinePath, confineRealPath } from '../util/confine.ts';
import { isXlstmError, XlstmError } from '../util/errors.ts';
import { train, type TrainingRun } from './loop.ts';
import type { ProgressEvent } from './progress.ts';
import { fineTuneOverrides, type FineTuneRequest, type TrainingRequest } from './requests.ts';
import { lastId } from './run-checkpoints.ts';
import type { RunConfig, TextCodec } from './run-config.ts';
import { RunEvents, type RunUpdate } from './run-events.ts';
import { makeSchedule } from './schedule.ts';

/** Turns a config name or inline YAML plus overrides into a validated run config (the config layer's job). */
export type ConfigResolver = (source: {
  readonly config: string | null;
  readonly overrides: readonly string[] | Readonly<Record<string, unknown>>;
}) => RunConfig | Promise<RunConfig>;

/** A checkpoint as the queue needs it: its folder and model config. */
export interface CheckpointRef {
  readonly id: string;
  readonly dir: string;
  readonly config: ModelConfig;
}

export interface RunQueueOptions {
  readonly store: Store;
  /** Where run checkpoints are written (the server's checkpoints root, so they can be served). */
  readonly checkpointsRoot: string;
  readonly resolveConfig: ConfigResolver;
  /** An id (or folder) -> the checkpoint; unknown ones throw CHECKPOINT_NOT_FOUND. */
  readonly findCheckpoint: (idOrDir: string) => Promise<CheckpointRef>;
  /** The tokenizer of a run: a fine-tune's base checkpoint's, or the config's for a fresh run. */
  readonly codecFor: (base: CheckpointRef | null) => TextCodec | Promise<TextCodec>;
  /** Relative data roots resolve against this folder (default: the working directory). */
  readonly workDir?: string;
  /** When set (a server), every data root must lie inside this folder, symbolic links resolved. */
  readonly dataRoot?: string;
  /** Runs executing at once (default 1). */
  readonly concurrency?: number;
  /** tfjs backend for worker processes. */
  readonly backend?: string | null;
  /** Gradients in worker processes even for devices 1 (a server keeps answering during steps). */
  readonly isolate?: boolean;
  readonly log?: (line: string) => void;
}

/** What a run record's config holds: the resolved config and how the run was asked for. */
interface StoredConfig {
  readonly resolved: RunConfig;
  readonly request: TrainingRequest | FineTuneRequest;
}

interface Active {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

export class RunQueue {
  readonly events = new RunEvents();
  private readonly active = new Map<string, Active>();
  /** Run ids waiting, in order: recovered RUNNING runs first, then QUEUED ones. */
  private waiting: string[] = [];
  private closing = false;
  private started = false;

  constructor(private readonly options: RunQueueOptions) {}

  /** Applies the recovery plan and starts working; call once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const plan = this.options.store.runs.recoveryPlan();
    for (const run of plan.cancelling) this.apply(run.id, { type: 'stop', at: now() });
    this.waiting = [...plan.resume.map((r) => r.id), ...plan.queued.map((r) => r.id)];
    this.pump();
  }

  async startTraining(request: TrainingRequest): Promise<RunRecord> {
    checkDevices(request.devices);
    const overrides = [...(request.overrides ?? [])];
    if (request.devices != null) overrides.push(`trainer.devices=${request.devices}`);
    const resolved = this.absolute(await this.options.resolveConfig({ config: request.config ?? null, overrides }));
    await this.check(resolved, await this.options.codecFor(null));
    return this.enqueue('TRAIN', resolved, request, null);
  }

  async startFineTune(request: FineTuneRequest): Promise<RunRecord> {
    checkDevices(request.devices);
    const base = await this.options.findCheckpoint(request.checkpoint);
    const overrides = fineTuneOverrides(request);
    const modelKeys = Object.keys(overrides).filter((k) => k === 'model' || k.startsWith('model.'));
    if (modelKeys.length > 0) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `fine-tune overrides expected no model keys, but got ${modelKeys.join(', ')}. Hint: the architecture is the base checkpoint's; leave model keys out.`,
      );
    }
    const resolved = this.absolute(await this.options.resolveConfig({ config: null, overrides: { ...overrides, model: configToObject(base.config) } }));
    await this.check(resolved, await this.options.codecFor(base));
    return this.enqueue('FINETUNE', resolved, request, base.id);
  }

  /** QUEUED: cancelled at once. RUNNING: CANCELLING until the current step ends, then CANCELLED. */
  cancel(id: string): RunRecord {
    const record = this.options.store.runs.require(id);
    if (isTerminal(record.phase) || record.phase === 'CANCELLING') return this.apply(id, { type: 'cancel', at: now() });
    const active = this.active.get(id);
    const next = this.apply(id, { type: 'cancel', at: now() });
    if (record.phase === 'QUEUED') this.waiting = this.waiting.filter((w) => w !== id);
    active?.controller.abort(new XlstmError('CANCELLED', `run ${id} was cancelled.`));
    return next;
  }

  get(id: string): RunRecord | null {
    return this.options.store.runs.get(id);
  }

  list(args: PageArgs & { readonly phase?: RunPhase }): Page<RunRecord> {
    return this.options.store.runs.list(args);
  }

  metrics(id: string): MetricRecord[] {
    return this.options.store.runs.metrics(id);
  }

  /** The checkpoints a run wrote that still exist, newest first. */
  checkpointsOf(id: string): CheckpointRecord[] {
    return this.options.store.checkpoints.list({ runId: id, first: 100 }).items;
  }

  /** Runs queued or running. */
  get depth(): number {
    return this.waiting.length + this.active.size;
  }

  /** Live updates of one run, starting with its current phase; ends when the run ends. */
  progress(id: string): AsyncIterableIterator<RunUpdate> {
    const record = this.options.store.runs.require(id);
    return this.events.subscribe(id, { runId: id, phase: record.phase, event: null, error: record.phase === 'FAILED' ? record.error : null });
  }

  /**
   * Executes one run now, in this process, without starting the queue (the command line's path:
   * other runs in the store are left to the server). Resolves with its final record.
   */
  async runOne(id: string): Promise<RunRecord> {
    if (this.started) throw new XlstmError('RUN_STATE', `runOne expected a queue that was not started, but this one works its queue. Hint: wait with settled(${JSON.stringify(id)}).`);
    this.waiting = this.waiting.filter((w) => w !== id);
    const record = this.options.store.runs.require(id);
    const controller = new AbortController();
    const done = this.execute(record, controller.signal).finally(() => this.active.delete(id));
    this.active.set(id, { controller, done });
    await done;
    return this.options.store.runs.require(id);
  }

  /** Resolves once the run is no longer active here (for tests and the CLI). */
  async settled(id: string): Promise<RunRecord> {
    await this.active.get(id)?.done;
    return this.options.store.runs.require(id);
  }

  /**
   * Stops working: active runs stop before their next step and stay RUNNING in the store, so the
   * next start resumes them from their last checkpoint.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const { controller } of this.active.values()) controller.abort(new XlstmError('CANCELLED', 'the server is shutting down.'));
    await Promise.all([...this.active.values()].map((a) => a.done));
    this.events.close();
  }

  private absolute(config: RunConfig): RunConfig {
    const workDir = this.options.workDir ?? process.cwd();
    const { dataRoot } = this.options;
    const root = dataRoot ? confinePath(dataRoot, config.data.root, 'data.root', { ...DATA_ROOT, base: workDir }) : path.resolve(workDir, config.data.root);
    return { ...config, data: { ...config.data, root } };
  }

  /** Everything that can be known before the run starts: tokenizer fit, schedule, data files. */
  private async check(config: RunConfig, codec: TextCodec): Promise<void> {
    if (codec.vocabSize > config.model.vocab_size) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `model.vocab_size expected at least the tokenizer's ${codec.vocabSize} tokens, but got ${config.model.vocab_size}. Hint: set model.vocab_size to ${codec.vocabSize}.`,
      );
    }
    const t = config.trainer;
    makeSchedule(t.lr_schedule, { lr: config.optimizer.lr, warmupSteps: t.warmup_steps, maxSteps: t.max_steps ?? Math.max(1, t.warmup_steps), minLrRatio: t.min_lr_ratio });
    if (this.options.dataRoot) await confineRealPath(this.options.dataRoot, config.data.root, 'data.root', DATA_ROOT);
    await validateDataset(config.data.root, { readChunk: config.data.read_chunk });
  }

  private enqueue(kind: RunKind, resolved: RunConfig, request: TrainingRequest | FineTuneRequest, baseId: string | null): RunRecord {
    if (this.closing) throw new XlstmError('CANCELLED', 'run queue expected to accept runs, but it is shutting down. Hint: retry after the restart.');
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const id = `${kind === 'TRAIN' ? 'train' : 'ft'}-${stamp}-${randomUUID().slice(0, 6)}`;
    const config: StoredConfig = { resolved, request };
    const record = this.options.store.runs.create({ id, kind, config, seed: resolved.seed_everything, baseCheckpointId: baseId });
    this.waiting.push(id);
    this.publish(record, null);
    if (this.started) this.pump();
    return record;
  }

  private pump(): void {
    const limit = this.options.concurrency ?? 1;
    while (!this.closing && this.active.size < limit && this.waiting.length > 0) {
      const id = this.waiting.shift()!;
      const record = this.options.store.runs.get(id);
      if (!record || (record.phase !== 'QUEUED' && record.phase !== 'RUNNING')) continue;
      const controller = new AbortController();
      const done = this.execute(record, controller.signal).finally(() => {
        this.active.delete(id);
        this.pump();
      });
      this.active.set(id, { controller, done });
    }
  }

  private async execute(record: RunRecord, signal: AbortSignal): Promise<void> {
    const { id } = record;
    const log = this.options.log ?? (() => {});
    try {
      // apply() publishes the phase change; a recovered RUNNING run announces itself here.
      if (record.phase === 'QUEUED') this.apply(id, { type: 'start', at: now() });
      else this.publish(record, null);
      const run = await this.trainingRun(record);
      log(`run ${id}: ${run.resumeFrom ? `resuming from ${run.resumeFrom}` : 'starting'}`);
      for await (const event of train(run, signal)) {
        this.record(id, run.config, event);
        if (event.kind === 'done') {
          if (event.reason === 'completed') this.apply(id, { type: 'succeed', at: now() });
          else if (!this.closing || this.options.store.runs.require(id).phase === 'CANCELLING') this.apply(id, { type: 'stop', at: now() });
        }
      }
      log(`run ${id}: ${this.options.store.runs.require(id).phase}`);
    } catch (e) {
      const error: RunError = isXlstmError(e) ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
      log(`run ${id}: FAILED: ${error.message}`);
      const phase = this.options.store.runs.get(id)?.phase;
      if (phase && !isTerminal(phase)) this.apply(id, { type: 'fail', at: now(), error });
    }
  }

  /** The loop's view of a stored run: config, tokenizer, base, and the checkpoint to resume from. */
  private async trainingRun(record: RunRecord): Promise<TrainingRun> {
    const stored = record.config as StoredConfig;
    // The request names the base as it was given (an id, or a folder on the command line).
    const baseRef = record.baseCheckpointId ? ((stored.request as FineTuneRequest).checkpoint ?? record.baseCheckpointId) : null;
    const base = baseRef ? await this.options.findCheckpoint(baseRef) : null;
    // The folder decides, not only the store: a kill can land after the write and before its record.
    const lastDir = this.options.store.checkpoints.get(lastId(record.id))?.path ?? path.join(this.options.checkpointsRoot, lastId(record.id));
    await repairInterruptedWrite(lastDir);
    const resumeFrom = existsSync(path.join(lastDir, 'optimizer.safetensors')) ? lastDir : null;
    return {
      id: record.id,
      kind: record.kind,
      config: stored.resolved,
      codec: await this.options.codecFor(base),
      checkpointsRoot: this.options.checkpointsRoot,
      base: base ? { id: base.id, dir: base.dir } : null,
      resumeFrom,
      backend: this.options.backend ?? null,
      isolate: this.options.isolate === true,
      provenance: {
        command: record.kind === 'TRAIN' ? 'startTraining' : 'startFineTune',
        data: stored.resolved.data.root,
        request: JSON.parse(JSON.stringify(stored.request)) as unknown,
      },
    };
  }

  private record(runId: string, config: RunConfig, event: ProgressEvent): void {
    const { runs, checkpoints } = this.options.store;
    switch (event.kind) {
      case 'step': {
        const every = config.trainer.log_every_n_steps;
        if (event.step % every === 0 || event.step === event.maxSteps || event.step === 1) {
          runs.recordMetrics(runId, { step: event.step, loss: event.loss, lr: event.lr, tokensPerSecond: event.tokensPerSecond, gradNorm: event.gradNorm });
        }
        break;
      }
      case 'eval':
        runs.recordMetrics(runId, { step: event.step, valLoss: event.valLoss, samples: event.samples });
        break;
      case 'checkpoint':
        for (const removed of event.removed) checkpoints.remove(removed);
        checkpoints.remove(event.id);
        checkpoints.add({
          id: event.id,
          path: event.dir,
          runId,
          parentId: event.parentId,
          step: event.step,
          tokensSeen: event.tokensSeen,
          trainLoss: event.trainLoss,
          valLoss: event.valLoss,
        });
        break;
      case 'start':
        if (event.resumed) runs.recordMetrics(runId, { step: event.step });
        break;
      case 'done':
        break;
    }
    const record = runs.require(runId);
    this.publish(record, event);
  }

  private apply(runId: string, event: Parameters<Store['runs']['apply']>[1]): RunRecord {
    const record = this.options.store.runs.apply(runId, event);
    this.publish(record, null);
    return record;
  }

  private publish(record: RunRecord, event: ProgressEvent | null): void {
    this.events.publish({ runId: record.id, phase: record.phase, event, error: record.phase === 'FAILED' ? record.error : null });
  }
}

const now = (): string => new Date().toISOString();

const DATA_ROOT = { rootName: 'the data root', hint: 'keep datasets inside the data root (XLSTM_DATA).' };

function checkDevices(devices: number | null | undefined): void {
  if (devices != null && !(Number.isInteger(devices) && devices >= 1)) {
    throw new XlstmError('INVALID_INPUT', `devices expected an integer >= 1, but got ${devices}. Hint: use 1 to train in one process.`);
  }
}
