/** The events a training run yields, in order: start, then steps, evaluations and checkpoints, then done. */

export type ProgressEvent = StartEvent | StepEvent | EvalEvent | CheckpointEvent | DoneEvent;

export interface StartEvent {
  readonly kind: 'start';
  /** Updates already done (non-zero when resuming). */
  readonly step: number;
  readonly maxSteps: number;
  readonly resumed: boolean;
  readonly parameters: number;
  readonly trainWindows: number;
  readonly validWindows: number;
  readonly devices: number;
  /** Process ids computing gradients (the trainer's own for one device). */
  readonly workerPids: readonly number[];
  /** Counted targets per full step (batch_size x accumulation x max_length, less padding). */
  readonly tokensPerStep: number;
}

export interface StepEvent {
  readonly kind: 'step';
  /** 1-based number of the update just applied. */
  readonly step: number;
  readonly maxSteps: number;
  readonly loss: number;
  readonly lr: number;
  readonly gradNorm: number;
  readonly clipped: boolean;
  /** Trained target tokens per second of this step (gradients and update). */
  readonly tokensPerSecond: number;
  readonly tokensSeen: number;
  /** The epoch the next batch comes from. */
  readonly epoch: number;
}

export interface EvalEvent {
  readonly kind: 'eval';
  readonly step: number;
  /** Mean loss over the validation windows; null when the run has no validation data. */
  readonly valLoss: number | null;
  /** One continuation per inference prompt, prompt included. */
  readonly samples: readonly string[];
}

export interface CheckpointEvent {
  readonly kind: 'checkpoint';
  readonly step: number;
  /** The folder name, which is also meta.json's id. */
  readonly id: string;
  readonly dir: string;
  /** last: the resumable latest state (with optimizer state); best: ranked by validation loss. */
  readonly reason: 'last' | 'best';
  readonly parentId: string | null;
  readonly tokensSeen: number;
  readonly trainLoss: number | null;
  readonly valLoss: number | null;
  /** Best-k checkpoints of this run that dropped out of the ranking and were deleted. */
  readonly removed: readonly string[];
}

export interface DoneEvent {
  readonly kind: 'done';
  readonly step: number;
  readonly reason: 'completed' | 'cancelled';
}
