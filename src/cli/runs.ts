/**
 * The composition of the run queue: how config names and inline YAML resolve (config/), how
 * checkpoint ids resolve to folders, and which tokenizer a run uses. Shared by `xlstm serve`,
 * `xlstm train` and `xlstm finetune`.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseCheckpointConfig } from '../checkpoint/index.ts';
import { loadLlmConfig, parseLlmConfig } from '../config/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { RunQueue, type CheckpointRef, type ConfigResolver, type RunQueueOptions, type TextCodec } from '../train/index.ts';
import { CHECKPOINT_ID } from '../serve/index.ts';
import type { Store } from '../store/index.ts';
import { confineName, confineRealPath } from '../util/confine.ts';
import { CONFIG_NAME } from './config-source.ts';
import { XlstmError } from '../util/errors.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * `config` is a file name under `configDir` (without .yaml), or inline YAML (anything with a
 * newline or a colon); null means the defaults. Overrides apply after it, then strict validation.
 */
export function configResolver(configDir: string, options: { readonly allowPaths?: boolean } = {}): ConfigResolver {
  return async ({ config, overrides }) => {
    if (config === null || config.trim() === '') return parseLlmConfig('{}', 'defaults', { overrides });
    // The command line names files: config/llm.yaml, ./mine.yml.
    if (options.allowPaths && /\.ya?ml$/.test(config) && !config.includes('\n')) return loadLlmConfig(config, { overrides });
    if (NAME.test(config) && !config.includes(':')) {
      const file = path.join(configDir, `${confineName(config, 'config', CONFIG_NAME)}.yaml`);
      const text = await readFile(file, 'utf8').catch(() => null);
      if (text === null) {
        throw new XlstmError('INVALID_CONFIG', `config expected the name of a file under ${configDir} or inline YAML, but got ${JSON.stringify(config)}, which is neither. Hint: list names with the configs query.`);
      }
      return parseLlmConfig(text, `${config}.yaml`, { overrides });
    }
    return parseLlmConfig(config, 'inline config', { overrides });
  };
}

/**
 * Checkpoint ids are folder names under `root`; with `allowPaths` (the command line) a value that
 * looks like a path names a checkpoint folder anywhere.
 */
export function checkpointFinder(root: string, options: { readonly allowPaths?: boolean } = {}): (idOrDir: string) => Promise<CheckpointRef> {
  return async (value) => {
    const looksLikePath = value.includes('/') || value.includes(path.sep) || value.startsWith('.');
    let dir: string;
    if (options.allowPaths && looksLikePath) dir = path.resolve(value);
    else dir = path.join(root, confineName(value, 'checkpoint', CHECKPOINT_ID));
    const weights = await stat(path.join(dir, 'model.safetensors')).catch(() => null);
    if (!weights?.isFile()) {
      throw new XlstmError('CHECKPOINT_NOT_FOUND', `checkpoint expected ${looksLikePath ? 'a checkpoint folder' : `the id of a checkpoint under ${root}`}, but got ${JSON.stringify(value)}. Hint: list ids with the checkpoints query.`);
    }
    if (!(options.allowPaths && looksLikePath)) await confineRealPath(root, value, 'checkpoint', { rootName: 'the checkpoints root' });
    const configFile = path.join(dir, 'config.yaml');
    const text = await readFile(configFile, 'utf8').catch(() => {
      throw new XlstmError('CHECKPOINT_CORRUPT', `${configFile} expected to exist, but it is missing.`);
    });
    return { id: path.basename(dir), dir, config: parseCheckpointConfig(text, configFile).config };
  };
}

/** Tokenizers built from checkpoints, by the sha256 of their tokenizer.json (building one takes seconds). */
const codecs = new Map<string, TextCodec>();

/** GPT-2 for fresh runs; a fine-tune keeps its base checkpoint's tokenizer. */
export async function defaultCodec(base: CheckpointRef | null): Promise<TextCodec> {
  if (!base) return Tokenizer.gpt2();
  const json = await readFile(path.join(base.dir, 'tokenizer.json'), 'utf8').catch(() => null);
  // A checkpoint without tokenizer.json (the PyTorch reference writes none) was trained with GPT-2's.
  if (json === null) return Tokenizer.gpt2();
  const key = createHash('sha256').update(json).digest('hex');
  let codec = codecs.get(key);
  if (!codec) {
    codec = json === Tokenizer.gpt2().toJson() ? Tokenizer.gpt2() : Tokenizer.fromJson(json);
    codecs.set(key, codec);
  }
  return codec;
}

export interface QueueSetup {
  readonly store: Store;
  readonly checkpointsRoot: string;
  readonly configDir: string;
  readonly workDir: string;
  /** Servers: datasets must lie inside this folder (see RunQueueOptions.dataRoot). */
  readonly dataRoot?: string;
  readonly allowPaths?: boolean;
  readonly backend?: string | null;
  /** Gradients in worker processes even for one device: what a server wants (see TrainingRun.isolate). */
  readonly isolate?: boolean;
  readonly log?: (line: string) => void;
  readonly codecFor?: RunQueueOptions['codecFor'];
}

export function createRunQueue(setup: QueueSetup): RunQueue {
  return new RunQueue({
    store: setup.store,
    checkpointsRoot: setup.checkpointsRoot,
    resolveConfig: configResolver(setup.configDir, { allowPaths: setup.allowPaths }),
    findCheckpoint: checkpointFinder(setup.checkpointsRoot, { allowPaths: setup.allowPaths }),
    codecFor: setup.codecFor ?? defaultCodec,
    workDir: setup.workDir,
    dataRoot: setup.dataRoot,
    backend: setup.backend ?? null,
    isolate: setup.isolate,
    log: setup.log,
  });
}
