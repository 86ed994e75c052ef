/** Messages between the trainer and its data-parallel worker processes (sent with Node's 'advanced' serialization). */
import type { FormName, ModelConfig } from '../core/index.ts';
import type { Batch } from '../data/index.ts';

export type ToWorker =
  /** Build the model; weights arrive with the first step. */
  | {
      readonly type: 'init';
      readonly backend: string | null;
      readonly config: ModelConfig;
      readonly form: FormName;
      readonly padId: number;
      /** The folder where this worker writes its gradients (exchange.ts). */
      readonly exchange: string;
    }
  /**
   * Gradients of `batches` (this worker's shards of the step's micro-batches). `weights`, when they
   * changed: the file holding every weight flattened and laid end to end in weightEntries order
   * (one transfer, not one per tensor: a GPU readback each costs far more than the bytes).
   */
  | { readonly type: 'step'; readonly id: number; readonly weights: string | null; readonly batches: Batch[] }
  | { readonly type: 'stop' };

export interface WorkerSeconds {
  readonly compute: number;
  readonly read: number;
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
  | { readonly type: 'error'; readonly code: string | null; readonly message: string };
