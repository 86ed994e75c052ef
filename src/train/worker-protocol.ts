/** Messages between the trainer and its data-parallel worker processes (sent with Node's 'advanced' serialization). */
import type { AdamWOptions } from './adamw.ts';
import type { FormName, ModelConfig } from '../core/index.ts';
import type { Batch } from '../data/index.ts';

/**
 * What a worker needs to own one shard of the update (workers.ts `step`): the flat layout's decay
 * flags in weightEntries order, AdamW's settings, and which shard is its own. The starting weights
 * and moments are in the exchange folder's shard files.
 */
export interface ShardInit {
  readonly index: number;
  readonly parts: number;
  readonly decay: readonly boolean[];
  readonly optimizer: AdamWOptions;
}

export type ToWorker =
  /** Build the model; without `shard`, weights arrive with the first gradient-only step. */
  | {
      readonly type: 'init';
      readonly backend: string | null;
      readonly config: ModelConfig;
      readonly form: FormName;
      readonly padId: number;
      /** The folder where this worker writes its gradients (exchange.ts). */
      readonly exchange: string;
      readonly shard: ShardInit | null;
    }
  /**
   * Gradient only (workers.ts `compute`): gradients of `batches` (this worker's shards of the step's
   * micro-batches). `weights`, when they changed: the file holding every weight flattened and laid end
   * to end in weightEntries order (one transfer, not one per tensor: a GPU readback each costs far more
   * than the bytes).
   */
  | { readonly type: 'step'; readonly id: number; readonly weights: string | null; readonly batches: Batch[] }
  /** Sharded update, phase 1: gradients of `batches` on the worker's replica; the other shards go to its grads file. */
  | { readonly type: 'gradients'; readonly id: number; readonly batches: Batch[] }
  /** Phase 2: add every worker's part of this worker's shard and divide by `count` (the step's counted targets). */
  | { readonly type: 'reduce'; readonly id: number; readonly count: number }
  /**
   * Phase 3: AdamW on the shard (`t`: the 1-based update count; `scale`: the clipping factor) and the
   * shard to the weights file. A step the trainer rejects (non-finite loss or norm) never gets here,
   * and the next `gradients` starts afresh.
   */
  | { readonly type: 'update'; readonly id: number; readonly lr: number; readonly t: number; readonly scale: number }
  /** Write the shard's weights and moments to the shard files, for the trainer to read. */
  | { readonly type: 'pull'; readonly id: number }
  | { readonly type: 'stop' };

export interface WorkerSeconds {
  readonly compute: number;
  readonly read: number;
}

/** Where a sharded step's time goes in one worker. */
export interface ShardSeconds {
  /** Reading the other shards' new weights and loading them into the model. */
  readonly load: number;
  /** Forward and backward. */
  readonly compute: number;
  /** Copying the gradients out of the backend and writing the other shards'. */
  readonly send: number;
  /** Reading and adding the others' parts of this shard, the mean and its sum of squares. */
  readonly reduce: number;
  /** AdamW on the shard and writing it out. */
  readonly update: number;
}

export type FromWorker =
  /** `gpu`: the PCI device the worker was pinned to (DRI_PRIME), when it was. */
  | { readonly type: 'ready'; readonly backend: string; readonly detail: string; readonly gpu: string | null }
  /** `grads`: the file holding the gradient sums laid end to end like the weights. */
  | {
      readonly type: 'grads';
      readonly id: number;
      readonly grads: string;
      readonly lossSum: number;
      readonly count: number;
      /** Seconds the worker spent on the gradients and on reading them back (where a step's time goes). */
      readonly seconds: WorkerSeconds;
    }
  | { readonly type: 'gradients'; readonly id: number; readonly lossSum: number; readonly count: number; readonly load: number; readonly compute: number; readonly send: number }
  /** `sumsq`: the sum of squares of the shard's mean gradient (a part of the global norm). */
  | { readonly type: 'reduced'; readonly id: number; readonly sumsq: number; readonly seconds: number }
  | { readonly type: 'updated'; readonly id: number; readonly seconds: number }
  | { readonly type: 'pulled'; readonly id: number }
  | { readonly type: 'error'; readonly code: string | null; readonly message: string };
