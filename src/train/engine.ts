/**
 * Where a training step runs: in this process, or in data-parallel worker processes (workers.ts).
 * Either way one step is one update from the gradient of the step's whole batch.
 */
import type { FormName, XlstmModel } from '../core/index.ts';
import type { Batch } from '../data/index.ts';
import type { AdamW } from './adamw.ts';
import { localStep, type StepOutcome } from './step.ts';

export interface StepEngine {
  /** Workers computing (1 for the local engine). */
  readonly devices: number;
  /** Their process ids (this process for the local engine). */
  readonly pids: readonly number[];
  /**
   * One update from the step's micro-batches at learning rate `lr`; `step` is its 1-based number,
   * for messages. Failures are applyGradientSum's, and a failed step changes nothing.
   */
  step(batches: readonly Batch[], lr: number, step: number): Promise<StepOutcome>;
  /** Brings the trainer's model and optimizer up to date, before they are evaluated or saved. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Steps in this process, on the trainable model and its optimizer themselves. */
export class LocalEngine implements StepEngine {
  readonly devices = 1;
  readonly pids = [process.pid];

  constructor(
    private readonly model: XlstmModel,
    private readonly optimizer: AdamW,
    private readonly padId: number,
    private readonly form: FormName = 'parallel',
  ) {}

  step(batches: readonly Batch[], lr: number, step: number): Promise<StepOutcome> {
    return localStep(this.model, this.optimizer, batches, { padId: this.padId, lr, step, form: this.form });
  }

  async sync(): Promise<void> {}

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
