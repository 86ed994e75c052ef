/** A run queue over a temp store, with the tiny model's inline config and the character codec. */
import path from 'node:path';
import { createRunQueue } from '../../../src/cli/runs.ts';
import { openStore, type Store } from '../../../src/store/index.ts';
import type { RunQueue } from '../../../src/train/index.ts';
import { CharCodec } from './char-codec.ts';
import { tempDir } from './run-helpers.ts';

export interface QueueFixture {
  readonly home: string;
  readonly checkpoints: string;
  readonly store: Store;
  readonly queue: RunQueue;
}

/** A queue under a fresh XLSTM_HOME (or `home`, to reopen one after a "restart"). */
export function openQueue(home = tempDir('home')): QueueFixture {
  const store = openStore(home);
  const checkpoints = path.join(home, 'checkpoints');
  const queue = createRunQueue({
    store,
    checkpointsRoot: checkpoints,
    configDir: path.join(home, 'config'),
    workDir: home,
    codecFor: () => new CharCodec(),
    backend: 'cpu',
  });
  return { home, checkpoints, store, queue };
}

/** Inline YAML for the tiny model on `root`; `extra` lines are appended under trainer:. */
export function tinyYaml(root: string, trainer: Record<string, unknown> = {}): string {
  const t = { max_steps: 4, warmup_steps: 0, lr_schedule: 'constant', val_check_interval: 2, log_every_n_steps: 1, ...trainer };
  return [
    'seed_everything: 5',
    'model: {vocab_size: 64, num_layers: 1, signature: [1, 1], inp_dim: 16, head_dim: 8, head_num: 2, p_factor: [2, 1.3333333], ker_size: 4}',
    'optimizer: {lr: 0.01}',
    `data: {root: ${JSON.stringify(root)}, max_length: 16, batch_size: 8, val_split: 0}`,
    `trainer: ${JSON.stringify({ ...t, checkpoint: { save_last: true, save_top_k: 0, every_n_steps: 0, ...((trainer.checkpoint as object) ?? {}) } })}`,
    'inference: {prompts: [abca], token_lim: 3, use_top_k: 0, temperature: 0}',
  ].join('\n');
}
