/** What a user asks for when starting a run, before it is resolved into a full run config. */

/** startTraining / `xlstm train`. */
export interface TrainingRequest {
  /** A config name (a file under the config folder, without .yaml) or inline YAML; null: config/llm.yaml's defaults. */
  readonly config?: string | null;
  /** Dotted-key overrides such as `trainer.max_steps=10`, applied after the config. */
  readonly overrides?: readonly string[] | null;
  /** trainer.devices, applied last. */
  readonly devices?: number | null;
}

/** startFineTune / `xlstm finetune`: every field but checkpoint and dataset has a default. */
export interface FineTuneRequest {
  /** A checkpoint id (or, from the command line, a checkpoint folder). */
  readonly checkpoint: string;
  /** A text or JSONL file, or a folder with train (and optionally valid, test) files. */
  readonly dataset: string;
  /** Optimizer steps (default 100). */
  readonly steps?: number | null;
  /** Peak learning rate (default 1e-4). */
  readonly learningRate?: number | null;
  /** Rows per micro-batch over all devices (default 8). */
  readonly batchSize?: number | null;
  readonly devices?: number | null;
  /** Tokens per row (default 128). */
  readonly maxLength?: number | null;
  /** Default: a tenth of the steps. */
  readonly warmupSteps?: number | null;
  /** Steps between evaluations (default: a fifth of the steps). */
  readonly valCheckInterval?: number | null;
  readonly seed?: number | null;
  /** Further dotted-key overrides (model keys come from the checkpoint and cannot be overridden). */
  readonly overrides?: readonly string[] | null;
}

/** Dotted-key overrides of a fine-tune, from its request (explicit fields win over `overrides`). */
export function fineTuneOverrides(request: FineTuneRequest): Record<string, unknown> {
  const steps = request.steps ?? 100;
  const out: Record<string, unknown> = {};
  for (const item of request.overrides ?? []) {
    const eq = item.indexOf('=');
    out[eq > 0 ? item.slice(0, eq).trim() : item] = eq > 0 ? item.slice(eq + 1) : '';
  }
  const set = (key: string, value: unknown): void => {
    if (value !== undefined && value !== null) out[key] = value;
  };
  set('data.root', request.dataset);
  set('trainer.max_steps', steps);
  out['trainer.max_epochs'] = null;
  set('optimizer.lr', request.learningRate ?? 1e-4);
  set('data.batch_size', request.batchSize ?? 8);
  set('data.max_length', request.maxLength ?? 128);
  set('trainer.devices', request.devices);
  set('trainer.warmup_steps', request.warmupSteps ?? (Number.isInteger(steps) && steps > 0 ? Math.floor(steps / 10) : 0));
  set('trainer.val_check_interval', request.valCheckInterval ?? (Number.isInteger(steps) && steps > 0 ? Math.max(1, Math.floor(steps / 5)) : 1));
  set('seed_everything', request.seed);
  return out;
}
