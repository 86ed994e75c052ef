/** Synthetic training data: documents that repeat a random 4-letter pattern, written as a dataset folder. */
import { TINY_ONE_LAYER } from '../../support/tiny-model.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from '../../../src/core/index.ts';
import { DEFAULT_LLM_CONFIG } from '../../../src/config/index.ts';
import type { RunConfig } from '../../../src/train/index.ts';
import { Rng } from '../../../src/util/rng.ts';

/** DESIGN's tiny model with one layer (one mLSTM and one sLSTM block), V = 64. */
export const TINY_TRAIN_MODEL: ModelConfig = TINY_ONE_LAYER;

/**
 * Each document is one pattern of 4 letters (from a small alphabet) repeated: after the first
 * period the next character is always the one 4 places back, which the causal conv can see.
 */
export function writeRepeatDataset(dir: string, seed: number, documents = 64, length = 40): string {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(seed);
  const letters = 'abcdefgh';
  const doc = (): string => {
    const pattern = Array.from({ length: 4 }, () => letters[rng.int(letters.length)]).join('');
    return pattern.repeat(Math.ceil(length / 4)).slice(0, length);
  };
  const join = (n: number): string => Array.from({ length: n }, doc).join('<|endoftext|>');
  writeFileSync(path.join(dir, 'train.txt'), join(documents));
  writeFileSync(path.join(dir, 'valid.txt'), join(8));
  return dir;
}

/** A run config for the tiny model on `root`: small batches, no warm-up, no samples unless asked. */
export function tinyRunConfig(root: string, overrides: { trainer?: Partial<RunConfig['trainer']>; data?: Partial<RunConfig['data']>; optimizer?: Partial<RunConfig['optimizer']>; inference?: Partial<RunConfig['inference']> } = {}): RunConfig {
  const d = DEFAULT_LLM_CONFIG;
  return {
    seed_everything: 3,
    model: TINY_TRAIN_MODEL,
    optimizer: { ...d.optimizer, lr: 1e-2, ...overrides.optimizer },
    data: { ...d.data, root, max_length: 16, batch_size: 8, val_split: 0, ...overrides.data },
    trainer: {
      ...d.trainer,
      max_steps: 10,
      warmup_steps: 0,
      lr_schedule: 'constant',
      val_check_interval: 1000,
      checkpoint: { save_last: false, save_top_k: 0, every_n_steps: 0, dir: 'checkpoints' },
      ...overrides.trainer,
    },
    inference: { prompts: [], token_lim: 4, use_top_k: 0, temperature: 0, ...overrides.inference },
  };
}
