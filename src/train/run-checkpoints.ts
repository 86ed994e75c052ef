/**
 * A run's checkpoint folders: `<prefix>-last` (the resumable state: weights, AdamW moments, step and
 * data position) and `<prefix>-step<N>` (the best k by validation loss), all in DESIGN's format.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { loadCheckpoint, saveCheckpoint, type Meta, type MetaInput, type NamedTensors } from '../checkpoint/index.ts';
import type { ModelConfig, XlstmModel } from '../core/index.ts';
import type { BatchPosition } from '../data/index.ts';
import { XlstmError } from '../util/errors.ts';
import type { OptimizerState } from './adamw.ts';
import type { RunConfig, TextCodec } from './run-config.ts';

/** Entries of optimizer.safetensors beside AdamW's own: where the data stream stands. */
const POSITION_KEYS = { epoch: 'data.epoch', batch: 'data.batch' } as const;

export const lastId = (prefix: string): string => `${prefix}-last`;
export const stepId = (prefix: string, step: number): string => `${prefix}-step${step}`;

/** What a resumed run needs to continue exactly where the saved one was. */
export interface ResumePoint {
  readonly config: ModelConfig;
  readonly weights: NamedTensors;
  readonly meta: Meta;
  readonly optimizer: OptimizerState;
  readonly position: BatchPosition;
}

export interface WriteOptions {
  readonly model: XlstmModel;
  readonly codec: TextCodec;
  readonly config: RunConfig;
  readonly meta: MetaInput;
  /** Present for resumable checkpoints. */
  readonly resume?: { readonly optimizer: OptimizerState; readonly position: BatchPosition };
}

/** Writes one checkpoint folder atomically (a reader sees the old folder or the new one, never a mix). */
export async function writeRunCheckpoint(dir: string, options: WriteOptions): Promise<Meta> {
  const { model: _model, ...sections } = options.config;
  let optimizer: NamedTensors | undefined;
  if (options.resume) {
    optimizer = new Map(options.resume.optimizer);
    optimizer.set(POSITION_KEYS.epoch, { shape: [1], data: Float32Array.of(options.resume.position.epoch) });
    optimizer.set(POSITION_KEYS.batch, { shape: [1], data: Float32Array.of(options.resume.position.batch) });
  }
  return saveCheckpoint(dir, {
    config: options.model.config,
    tensors: options.model.toArrays(),
    tokenizerJson: options.codec.toJson(),
    meta: options.meta,
    optimizer,
    extraConfig: JSON.parse(JSON.stringify(sections)) as Record<string, unknown>,
  });
}

/** Reads a resumable checkpoint; one without optimizer state or data position is refused. */
export async function readResumePoint(dir: string): Promise<ResumePoint> {
  const loaded = await loadCheckpoint(dir, { optimizer: true });
  const state = loaded.optimizer;
  const epoch = state?.get(POSITION_KEYS.epoch)?.data[0];
  const batch = state?.get(POSITION_KEYS.batch)?.data[0];
  if (!state || epoch === undefined || batch === undefined) {
    throw new XlstmError(
      'CHECKPOINT_CORRUPT',
      `checkpoint ${dir} expected optimizer.safetensors with the AdamW state and ${POSITION_KEYS.epoch}, ${POSITION_KEYS.batch}, but ${state ? 'the data position is missing' : 'it has none'}. ` +
        'Hint: resume from the run\'s -last checkpoint, or start a fine-tune from this one instead.',
    );
  }
  const optimizer: OptimizerState = new Map([...state].filter(([key]) => key !== POSITION_KEYS.epoch && key !== POSITION_KEYS.batch));
  return { config: loaded.config, weights: loaded.tensors, meta: loaded.meta, optimizer, position: { epoch, batch } };
}

/** A best-k entry. */
export interface Ranked {
  readonly id: string;
  readonly step: number;
  readonly valLoss: number;
}

/** The run's `<prefix>-step<N>` folders already on disk (a resumed run keeps ranking them). */
export async function listRanked(root: string, prefix: string): Promise<Ranked[]> {
  const names = await fsp.readdir(root).catch(() => [] as string[]);
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-step(\\d+)$`);
  const out: Ranked[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const meta = await fsp.readFile(path.join(root, name, 'meta.json'), 'utf8').then((t) => JSON.parse(t) as Partial<Meta>).catch(() => null);
    if (meta && typeof meta.val_loss === 'number') out.push({ id: name, step: Number(m[1]), valLoss: meta.val_loss });
  }
  return out;
}

/**
 * Which checkpoints to keep when a new validation loss arrives: the k lowest (earlier step wins a
 * tie). Returns whether the new one is kept and which kept ones drop out.
 */
export function rankBest(kept: readonly Ranked[], candidate: Ranked, k: number): { keep: boolean; evict: Ranked[] } {
  if (k <= 0) return { keep: false, evict: [] };
  const all = [...kept.filter((r) => r.id !== candidate.id), candidate].sort((a, b) => a.valLoss - b.valLoss || a.step - b.step);
  const survivors = new Set(all.slice(0, k).map((r) => r.id));
  return { keep: survivors.has(candidate.id), evict: all.filter((r) => !survivors.has(r.id) && r.id !== candidate.id) };
}

/** Removes a checkpoint folder, renamed aside first so that no reader sees half of it. */
export async function removeCheckpointFolder(root: string, id: string): Promise<void> {
  const dir = path.join(root, id);
  const aside = path.join(root, `.deleting-${id}-${process.pid}`);
  const moved = await fsp.rename(dir, aside).then(() => true, () => false);
  if (moved) await fsp.rm(aside, { recursive: true, force: true });
}
