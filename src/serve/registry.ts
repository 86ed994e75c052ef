/**
 * The models loaded for serving, by checkpoint id. The registry owns each model's weights and scheduler and
 * frees both on unload; a served model's lifecycle is a union tagged by phase.
 */
import * as tf from '@tensorflow/tfjs-core';

import { loadCheckpoint } from '../checkpoint/index.ts';
import { XlstmModel } from '../core/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { assertNever } from '../util/assert.ts';
import { XlstmError } from '../util/errors.ts';
import type { CheckpointCatalogue } from './checkpoints.ts';
import type { GenerationTarget } from './generate.ts';
import type { ServeLimits } from './limits.ts';
import type { ServeObserver } from './observer.ts';
import { decodeThreadsOn } from './decode-threads.ts';
import { Scheduler } from './scheduler.ts';

export interface ReadyModel extends GenerationTarget {
  readonly phase: 'ready';
  readonly id: string;
  readonly model: XlstmModel;
  readonly loadedAt: Date;
  readonly parameterCount: number;
  readonly stateBytesPerSequence: number;
}

export type ServedModel =
  | { readonly phase: 'loading'; readonly id: string; readonly done: Promise<ReadyModel> }
  | ReadyModel
  | { readonly phase: 'unloading'; readonly id: string; readonly done: Promise<void> }
  | { readonly phase: 'failed'; readonly id: string; readonly error: Error };

export type ModelPhase = ServedModel['phase'];

/** What the API shows of a served model. */
export interface ModelSummary {
  readonly id: string;
  readonly phase: ModelPhase;
  readonly parameterCount: number | null;
  readonly stateBytesPerSequence: number | null;
  readonly activeSequences: number;
  readonly queuedSequences: number;
  readonly stepsRun: number;
  readonly loadedAt: Date | null;
  readonly error: string | null;
}

export class ModelRegistry {
  private readonly models = new Map<string, ServedModel>();

  /** `decodeThreads`: see SchedulerOptions; backends other than cpu and wasm always decode in process. */
  constructor(
    private readonly catalogue: CheckpointCatalogue,
    private readonly limits: ServeLimits,
    private readonly observer: ServeObserver,
    private readonly decodeThreads = 1,
  ) {}

  /** Loads a checkpoint (or returns it when already loaded) and warms it up with one prefill and one step. */
  async load(id: string): Promise<ModelSummary> {
    const current = this.models.get(id);
    if (current?.phase === 'ready') return summarize(current);
    if (current?.phase === 'loading') return summarize(await current.done);
    if (current?.phase === 'unloading') {
      await current.done;
      return this.load(id);
    }
    // Unknown ids fail before any entry exists, so a typo never shows up as a failed model.
    await this.catalogue.requireDir(id, 'checkpoint');
    const raced = this.models.get(id);
    if (raced && raced.phase !== 'failed') return this.load(id);
    const done = this.open(id);
    this.models.set(id, { phase: 'loading', id, done });
    try {
      const ready = await done;
      this.models.set(id, ready);
      return summarize(ready);
    } catch (e) {
      this.models.set(id, { phase: 'failed', id, error: e as Error });
      throw e;
    }
  }

  /** Cancels the model's sequences (they finish CANCELLED), then frees it; false when it was not loaded. */
  async unload(id: string): Promise<boolean> {
    const current = this.models.get(id);
    if (!current) return false;
    switch (current.phase) {
      case 'failed':
        this.models.delete(id);
        return true;
      case 'unloading':
        await current.done;
        return true;
      case 'loading':
        await current.done.catch(() => null);
        return this.unload(id);
      case 'ready': {
        const done = (async () => {
          await current.scheduler.close();
          current.model.dispose();
        })();
        this.models.set(id, { phase: 'unloading', id, done });
        try {
          await done;
        } finally {
          this.models.delete(id);
        }
        return true;
      }
      default:
        return assertNever(current);
    }
  }

  /** The ready model with this id; without an id, the default checkpoint's, or the only one loaded. */
  async target(id?: string | null, field = 'input.checkpoint'): Promise<ReadyModel> {
    const wanted = id ?? this.catalogue.defaultId ?? this.onlyReady()?.id;
    if (wanted === undefined || wanted === null) {
      throw new XlstmError('MODEL_NOT_LOADED', `${field} expected a loaded model, but none is loaded. Hint: run the loadModel mutation first.`);
    }
    const served = this.models.get(wanted);
    if (served?.phase === 'ready') return served;
    await this.catalogue.requireDir(wanted, field);
    throw new XlstmError(
      'MODEL_NOT_LOADED',
      `${field} expected a loaded model, but checkpoint ${JSON.stringify(wanted)} is ${served?.phase ?? 'not loaded'}. ` +
        `Hint: run mutation { loadModel(checkpoint: ${JSON.stringify(wanted)}) { id } } first.`,
    );
  }

  isLoaded(id: string): boolean {
    return this.models.has(id);
  }

  list(): ModelSummary[] {
    return [...this.models.values()].map(summarize);
  }

  /** Ready to serve: some model is loaded and has run a step. */
  get ready(): boolean {
    return [...this.models.values()].some((m) => m.phase === 'ready');
  }

  /** Sequences in batches and in queues, over all models. */
  counts(): { active: number; queued: number } {
    let active = 0;
    let queued = 0;
    for (const m of this.models.values()) {
      if (m.phase !== 'ready') continue;
      active += m.scheduler.activeCount;
      queued += m.scheduler.queuedCount;
    }
    return { active, queued };
  }

  /** Unloads everything; open streams end with CANCELLED. */
  async close(): Promise<void> {
    await Promise.all([...this.models.keys()].map((id) => this.unload(id)));
  }

  private onlyReady(): ReadyModel | undefined {
    const ready = [...this.models.values()].filter((m): m is ReadyModel => m.phase === 'ready');
    return ready.length === 1 ? ready[0] : undefined;
  }

  private async open(id: string): Promise<ReadyModel> {
    const dir = await this.catalogue.requireDir(id, 'checkpoint');
    const loaded = await loadCheckpoint(dir);
    // Reference checkpoints carry no tokenizer.json; they use GPT-2's.
    const tokenizer = loaded.tokenizerJson === null ? Tokenizer.gpt2() : Tokenizer.fromJson(loaded.tokenizerJson);
    if (tokenizer.vocabSize > loaded.config.vocab_size) {
      throw new XlstmError(
        'CHECKPOINT_CORRUPT',
        `checkpoint ${id}: vocab_size expected at least the tokenizer's ${tokenizer.vocabSize} tokens, but got ${loaded.config.vocab_size}.`,
      );
    }
    const named = new Map<string, tf.Tensor>();
    let model: XlstmModel;
    try {
      for (const [name, t] of loaded.tensors) named.set(name, tf.tensor(t.data, t.shape, 'float32'));
      model = XlstmModel.fromNamed(loaded.config, named);
    } finally {
      for (const t of named.values()) t.dispose();
    }
    try {
      await warmUp(model, tokenizer.eosId);
    } catch (e) {
      model.dispose();
      throw e;
    }
    let scheduler: Scheduler | null = null;
    try {
      scheduler = new Scheduler(model, {
        maxActive: this.limits.maxActive,
        maxQueued: this.limits.maxQueued,
        suppressToken: tokenizer.padId,
        decodeThreads: decodeThreadsOn(tf.getBackend(), this.decodeThreads),
        observer: this.observer,
      });
      // A pool's threads build their replicas before the model counts as ready.
      await scheduler.ready;
    } catch (e) {
      await scheduler?.close();
      model.dispose();
      throw e;
    }
    return {
      phase: 'ready',
      id,
      model,
      tokenizer,
      scheduler,
      loadedAt: new Date(),
      parameterCount: model.parameterCount(),
      stateBytesPerSequence: model.stateBytesPerSequence(),
    };
  }
}

/** One prefill and one step, so kernels are compiled and /readyz means "has run a step". */
async function warmUp(model: XlstmModel, token: number): Promise<void> {
  const logits = tf.tidy(() => {
    const first = model.prefill(tf.tensor2d([[token]], undefined, 'int32'));
    return model.step(tf.tensor1d([token], 'int32'), first.state).logits;
  });
  try {
    // Read asynchronously: WebGPU under Node has no synchronous readback.
    await logits.data();
  } finally {
    logits.dispose();
  }
}

function summarize(m: ServedModel): ModelSummary {
  const ready = m.phase === 'ready' ? m : null;
  return {
    id: m.id,
    phase: m.phase,
    parameterCount: ready?.parameterCount ?? null,
    stateBytesPerSequence: ready?.stateBytesPerSequence ?? null,
    activeSequences: ready?.scheduler.activeCount ?? 0,
    queuedSequences: ready?.scheduler.queuedCount ?? 0,
    stepsRun: ready?.scheduler.stepsRun ?? 0,
    loadedAt: ready?.loadedAt ?? null,
    error: m.phase === 'failed' ? m.error.message : null,
  };
}
