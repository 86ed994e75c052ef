/**
 * A tiny GPT-2-vocabulary checkpoint for serving tests: V = 50258 (the GPT-2 tokenizer needs it), d=16, nh=2,
 * dh=8, signature (1,1), one layer, k=4, built with XlstmModel.init from a seed and saved with saveCheckpoint.
 * Nothing is downloaded.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { currentBackend, selectBackend } from '../../src/backend/select.ts';
import { saveCheckpoint, type MetaInput } from '../../src/checkpoint/index.ts';
import { validateModelConfig, XlstmModel, type ModelConfig } from '../../src/core/index.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { TINY_ONE_LAYER } from './tiny-model.ts';

/** The one-layer tiny model with GPT-2's vocabulary, so the real tokenizer can drive it. */
export const TINY_SERVE_CONFIG: ModelConfig = validateModelConfig({ ...TINY_ONE_LAYER, vocab_size: 50258 });

/** Writes a seeded tiny checkpoint as root/id and returns its folder. */
export async function writeTinyCheckpoint(root: string, id: string, seed = 7, meta: MetaInput = {}): Promise<string> {
  if (!currentBackend()) await selectBackend('cpu');
  const model = XlstmModel.init(TINY_SERVE_CONFIG, seed);
  const dir = path.join(root, id);
  try {
    await saveCheckpoint(dir, {
      config: TINY_SERVE_CONFIG,
      tensors: model.toArrays(),
      tokenizerJson: Tokenizer.gpt2().toJson(),
      meta: { provenance: { command: `writeTinyCheckpoint seed ${seed}` }, ...meta },
    });
  } finally {
    model.dispose();
  }
  return dir;
}

/** A temporary checkpoints root holding one tiny checkpoint per id; remove() deletes it. */
export async function tinyRoot(ids: readonly string[] = ['tiny']): Promise<{ root: string; remove(): Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), 'xlstm-serve-'));
  for (const [i, id] of ids.entries()) await writeTinyCheckpoint(root, id, 7 + i);
  return { root, remove: () => rm(root, { recursive: true, force: true }) };
}
