/**
 * What a training run reads from its resolved config (the sections of config/llm.yaml), declared
 * here so that train/ depends on the shape, not on the config layer that parses it.
 */
import type { ModelConfig } from '../core/index.ts';

export interface RunConfig {
  readonly seed_everything: number;
  readonly model: ModelConfig;
  readonly optimizer: {
    readonly lr: number;
    readonly betas: readonly [number, number];
    readonly weight_decay: number;
    readonly eps: number;
  };
  readonly data: {
    readonly root: string;
    readonly max_length: number;
    readonly batch_size: number;
    readonly read_chunk: number;
    readonly val_split: number;
  };
  readonly trainer: {
    readonly max_steps: number | null;
    readonly max_epochs: number | null;
    readonly devices: number;
    readonly grad_clip: number;
    readonly accumulate_grad_batches: number;
    readonly warmup_steps: number;
    readonly lr_schedule: string;
    readonly min_lr_ratio: number;
    readonly val_check_interval: number;
    readonly log_every_n_steps: number;
    readonly checkpoint: {
      readonly save_last: boolean;
      readonly save_top_k: number;
      readonly every_n_steps: number;
      readonly dir: string;
    };
  };
  readonly inference: {
    readonly prompts: readonly string[];
    readonly token_lim: number;
    readonly use_top_k: number;
    readonly temperature: number;
  };
}

/**
 * Text <-> token ids for a run: the GPT-2 Tokenizer satisfies it; tests use a small character
 * codec so that a vocabulary of 64 suffices.
 */
export interface TextCodec {
  readonly eosId: number;
  readonly padId: number;
  /** Ids run from 0 to vocabSize - 1. */
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** Stored as the checkpoint's tokenizer.json. */
  toJson(): string;
}
