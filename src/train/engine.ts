/**
 * Where a step's gradients are computed: in this process, or by data-parallel worker processes
 * (workers.ts). Either way the result is the gradient sum over the step's whole batch.
 */
import type { FormName, XlstmModel } from '../core/index.ts';
import type { Batch } from '../data/index.ts';
import { gradientSum, type GradientSum } from './step.ts';

export interface GradientEngine {
  /** Workers computing (1 for the local engine). */
  readonly devices: number;
  /** Their process ids (this process for the local engine). */
  readonly pids: readonly number[];
  /** The gradient sum of the current weights over the step's micro-batches. */
  compute(batches: readonly Batch[]): Promise<GradientSum>;
  /** The weights changed (an update was applied): workers must receive them before the next step. */
  weightsChanged(): void;
  close(): Promise<void>;
}

/** Gradients in this process, on the trainable model itself. */
export class LocalEngine implements GradientEngine {
  readonly devices = 1;
  readonly pids = [process.pid];

  constructor(
    private readonly model: XlstmModel,
    private readonly padId: number,
    private readonly form: FormName = 'parallel',
  ) {}

  async compute(batches: readonly Batch[]): Promise<GradientSum> {
    return gradientSum(this.model, batches, this.padId, this.form);
  }

  weightsChanged(): void {}

  async close(): Promise<void> {}
}

/**
 * Splits a batch into `parts` shards of consecutive rows whose sizes differ by at most one
 * (the first shards take the extra rows); empty shards are left out.
 */
export function splitRows(batch: Batch, parts: number): Batch[] {
  const out: Batch[] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const rows = Math.floor(batch.batch / parts) + (p < batch.batch % parts ? 1 : 0);
    if (rows === 0) continue;
    out.push({ tokens: batch.tokens.slice(start * batch.length, (start + rows) * batch.length), batch: rows, length: batch.length });
    start += rows;
  }
  return out;
}
