/**
 * A training run as an async iterable of progress events: data, model (fresh, fine-tuned from a
 * checkpoint, or resumed), steps with accumulation over micro-batches, evaluation (validation loss
 * and sample generations), and checkpoints (the resumable last one and the best k by val_loss).
 * Cancelling through the signal stops before the next step; a thrown error fails the run, and
 * nothing is saved for the step that failed.
 */
import path from 'node:path';
import { configToObject, XlstmModel, type FormName, type ModelConfig, type NamedArray } from '../core/index.ts';
import { batchesPerEpoch, epochBatches, prepareDataset, type Batch, type BatchPosition, type PreparedDataset } from '../data/index.ts';
import { loadCheckpoint, type Provenance } from '../checkpoint/index.ts';
import { XlstmError } from '../util/errors.ts';
import { LocalEngine, type StepEngine } from './engine.ts';
import { sampleGenerations, validationLoss } from './evaluate.ts';
import type { CheckpointEvent, EvalEvent, ProgressEvent } from './progress.ts';
import { lastId, listRanked, rankBest, readResumePoint, removeCheckpointFolder, stepId, writeRunCheckpoint, type Ranked, type ResumePoint } from './run-checkpoints.ts';
import type { RunConfig, TextCodec } from './run-config.ts';
import { makeSchedule } from './schedule.ts';
import { optimizerFor } from './step.ts';
import { WorkerPool } from './workers.ts';

export interface TrainingRun {
  readonly id: string;
  readonly kind: 'TRAIN' | 'FINETUNE';
  readonly config: RunConfig;
  readonly codec: TextCodec;
  /** The folder that receives the run's checkpoint folders. */
  readonly checkpointsRoot: string;
  /** Checkpoint folders are `<prefix>-last` and `<prefix>-step<N>`; the run id by default. */
  readonly checkpointPrefix?: string;
  /** FINETUNE: the checkpoint whose weights the run starts from (recorded as every checkpoint's parent). */
  readonly base?: { readonly id: string; readonly dir: string } | null;
  /** A `-last` checkpoint of this run to continue from, bit for bit. */
  readonly resumeFrom?: string | null;
  /** mLSTM training form (default parallel). */
  readonly form?: FormName;
  /** tfjs backend for worker processes (devices > 1); null: their first available. */
  readonly backend?: string | null;
  /**
   * Compute gradients in worker processes even for one device, so that this process (a server)
   * stays responsive during a step; it then only applies updates and evaluates.
   */
  readonly isolate?: boolean;
  /** Recorded in every checkpoint's meta.json. */
  readonly provenance?: Provenance;
}

const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Updates the run will make: max_steps, or max_epochs worth of steps, whichever ends first. */
export function plannedSteps(config: RunConfig, batchesPerEpochCount: number): number {
  const { max_steps, max_epochs, accumulate_grad_batches } = config.trainer;
  const byEpochs = max_epochs === null ? Infinity : Math.max(1, Math.ceil((max_epochs * batchesPerEpochCount) / accumulate_grad_batches));
  const steps = Math.min(max_steps ?? Infinity, byEpochs);
  if (!Number.isFinite(steps)) {
    throw new XlstmError('INVALID_CONFIG', 'trainer.max_steps expected an integer >= 1 when trainer.max_epochs is null, but got null.');
  }
  return steps;
}

function checkCodec(model: ModelConfig, codec: TextCodec): void {
  if (codec.vocabSize > model.vocab_size) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `model.vocab_size expected at least the tokenizer's ${codec.vocabSize} tokens, but got ${model.vocab_size}. Hint: set model.vocab_size to ${codec.vocabSize}.`,
    );
  }
}

/** Refuses to continue weights under a different architecture, naming the keys that differ. */
function checkSameArchitecture(expected: ModelConfig, found: ModelConfig, where: string): void {
  const a = configToObject(expected);
  const b = configToObject(found);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  if (keys.length > 0) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `${where} expected the run's model config, but ${keys.map((k) => `${k} is ${JSON.stringify(b[k])} instead of ${JSON.stringify(a[k])}`).join(', ')}. ` +
        "Hint: leave the model section out so that the checkpoint's architecture is used.",
    );
  }
}

/** The weights a run starts from: a resume point, a fine-tune base, or a fresh seeded initialisation. */
async function startingModel(run: TrainingRun, resume: ResumePoint | null): Promise<XlstmModel> {
  const config = run.config.model;
  if (resume) {
    checkSameArchitecture(config, resume.config, `resume checkpoint ${run.resumeFrom}`);
    return XlstmModel.fromArrays(resume.config, resume.weights as ReadonlyMap<string, NamedArray>);
  }
  if (run.base) {
    const loaded = await loadCheckpoint(run.base.dir);
    checkSameArchitecture(config, loaded.config, `base checkpoint ${run.base.id}`);
    return XlstmModel.fromArrays(loaded.config, loaded.tensors as ReadonlyMap<string, NamedArray>);
  }
  return XlstmModel.init(config, run.config.seed_everything);
}

export async function* train(run: TrainingRun, signal: AbortSignal): AsyncGenerator<ProgressEvent, void, undefined> {
  const cfg = run.config;
  const { codec } = run;
  checkCodec(cfg.model, codec);
  const data: PreparedDataset = await prepareDataset(cfg.data.root, {
    encode: (text) => codec.encode(text),
    eosId: codec.eosId,
    padId: codec.padId,
    maxLength: cfg.data.max_length,
    readChunk: cfg.data.read_chunk,
    valSplit: cfg.data.val_split,
    seed: cfg.seed_everything,
  });
  const epochOptions = { batchSize: cfg.data.batch_size, seed: cfg.seed_everything, shuffle: true };
  const maxSteps = plannedSteps(cfg, batchesPerEpoch(data.train, epochOptions));
  const resume = run.resumeFrom ? await readResumePoint(run.resumeFrom) : null;
  const prefix = run.checkpointPrefix ?? run.id;
  const form = run.form ?? 'parallel';
  const parentId = run.base?.id ?? null;

  const source = await startingModel(run, resume);
  const model = source.asTrainable();
  source.dispose();
  const adamw = optimizerFor(model, cfg);
  let engine: StepEngine | null = null;
  try {
    if (resume) adamw.importState(resume.optimizer);
    const schedule = makeSchedule(cfg.trainer.lr_schedule, {
      lr: cfg.optimizer.lr,
      warmupSteps: cfg.trainer.warmup_steps,
      maxSteps,
      minLrRatio: cfg.trainer.min_lr_ratio,
    });
    const devices = cfg.trainer.devices;
    engine =
      devices > 1 || run.isolate === true
        ? await WorkerPool.start({ devices, model, optimizer: adamw, padId: codec.padId, form, backend: run.backend ?? null })
        : new LocalEngine(model, adamw, codec.padId, form);

    let step = resume ? adamw.stepCount : 0;
    let tokensSeen = resume ? resume.meta.tokens_seen : 0;
    let position: BatchPosition = resume ? resume.position : { epoch: 0, batch: 0 };
    let trainLoss: number | null = resume ? resume.meta.train_loss : null;
    let valLoss: number | null = resume ? resume.meta.val_loss : null;
    let ranked: Ranked[] = await listRanked(run.checkpointsRoot, prefix);

    yield {
      kind: 'start',
      step,
      maxSteps,
      resumed: resume !== null,
      parameters: model.parameterCount(),
      trainWindows: data.train.count,
      validWindows: data.valid?.count ?? 0,
      devices: engine.devices,
      workerPids: engine.pids,
      tokensPerStep: cfg.data.batch_size * cfg.trainer.accumulate_grad_batches * cfg.data.max_length,
    };

    // With workers the model and optimizer here lag behind theirs until synced: before every use.
    const current = engine;
    const evaluate = async (): Promise<EvalEvent> => {
      await current.sync();
      const loss = data.valid
        ? await validationLoss(model, data.valid, { batchSize: cfg.data.batch_size, padId: codec.padId, form, signal })
        : null;
      const samples = cfg.inference.prompts.length > 0 ? await sampleGenerations(model, codec, cfg.inference, cfg.seed_everything, step) : [];
      return { kind: 'eval', step, valLoss: loss, samples };
    };

    const save = async (reason: 'last' | 'best', removed: string[]): Promise<CheckpointEvent> => {
      await current.sync();
      const id = reason === 'last' ? lastId(prefix) : stepId(prefix, step);
      const dir = path.join(run.checkpointsRoot, id);
      await writeRunCheckpoint(dir, {
        model,
        codec,
        config: cfg,
        meta: { id, parent: parentId, run_id: run.id, step, tokens_seen: tokensSeen, train_loss: trainLoss, val_loss: valLoss, provenance: run.provenance },
        resume: reason === 'last' ? { optimizer: adamw.exportState(), position } : undefined,
      });
      return { kind: 'checkpoint', step, id, dir, reason, parentId, tokensSeen, trainLoss, valLoss, removed };
    };

    // A fresh run is evaluated before its first update: the baseline its curves start from.
    if (!resume && (data.valid || cfg.inference.prompts.length > 0)) {
      const ev = await evaluate();
      valLoss = ev.valLoss;
      yield ev;
    }

    const stream = epochBatches(data.train, epochOptions, position);
    while (step < maxSteps) {
      if (signal.aborted) {
        yield { kind: 'done', step, reason: 'cancelled' };
        return;
      }
      const micro: Batch[] = [];
      for (let i = 0; i < cfg.trainer.accumulate_grad_batches; i++) {
        const item = stream.next().value!;
        micro.push(item.batch);
        position = item.next;
      }
      const started = performance.now();
      const outcome = await engine.step(micro, schedule(step), step + 1);
      const seconds = (performance.now() - started) / 1000;
      step += 1;
      tokensSeen += outcome.tokens;
      trainLoss = outcome.loss;
      yield {
        kind: 'step',
        step,
        maxSteps,
        loss: outcome.loss,
        lr: outcome.lr,
        gradNorm: outcome.gradNorm,
        clipped: outcome.clipped,
        tokensPerSecond: seconds > 0 ? outcome.tokens / seconds : 0,
        tokensSeen,
        epoch: position.epoch,
      };

      const final = step === maxSteps;
      const evaluated = step % cfg.trainer.val_check_interval === 0 || final;
      if (evaluated) {
        const ev = await evaluate();
        if (signal.aborted && ev.valLoss === null && data.valid) continue; // cancelled mid-evaluation
        valLoss = ev.valLoss;
        yield ev;
        const k = cfg.trainer.checkpoint.save_top_k;
        if (k > 0 && valLoss !== null) {
          const candidate = { id: stepId(prefix, step), step, valLoss };
          const { keep, evict } = rankBest(ranked, candidate, k);
          if (keep) {
            for (const r of evict) await removeCheckpointFolder(run.checkpointsRoot, r.id);
            ranked = [...ranked.filter((r) => !evict.includes(r) && r.id !== candidate.id), candidate];
            yield await save('best', evict.map((r) => r.id));
          }
        }
      }
      const { every_n_steps, save_last } = cfg.trainer.checkpoint;
      const periodic = every_n_steps > 0 && step % every_n_steps === 0;
      if (periodic || (save_last && (evaluated || final))) yield await save('last', []);
      await breathe();
    }
    yield { kind: 'done', step, reason: 'completed' };
  } finally {
    await engine?.close();
    adamw.dispose();
    model.dispose();
  }
}
