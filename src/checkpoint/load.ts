/**
 * Loads a checkpoint folder, checking in order: the folder, meta.json and its format_version, the
 * weights' sha256, the safetensors header, then every tensor name and shape against config.yaml.
 *
 * A folder without meta.json is accepted: that is what the PyTorch reference (`xlstm_ref.py init`)
 * writes. Its sha256 cannot be checked (there is nothing to check against), and a meta is
 * synthesised: id = folder name, no parent or run, step 0, losses null, created = the weights
 * file's mtime, sha256 and dtype from the file itself; `metaSynthesised` says so. tokenizer.json
 * is then optional (null when absent); with a meta.json it is required.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ModelConfig } from '../core/config.ts';
import { XlstmError } from '../util/errors.ts';
import { parseCheckpointConfig } from './config-file.ts';
import { sha256Bytes, WEIGHTS_FILE } from './folder.ts';
import { describeLayoutDiff, diffLayout, expectedShapes, layoutMatches } from './layout.ts';
import { META_FORMAT_VERSION, validateMeta, type Meta } from './meta.ts';
import { decodeSafetensors, decodeTensor, headerLengthOf, parseHeader, type NamedTensors } from './safetensors.ts';

export interface LoadedCheckpoint {
  readonly dir: string;
  /** The validated model config; tie_weights is true when the file has no head.weight. */
  readonly config: ModelConfig;
  /** Every tensor of the file as float32 (no head.weight when tied). */
  readonly tensors: NamedTensors;
  readonly meta: Meta;
  /** True when meta.json was absent and `meta` was made up at load. */
  readonly metaSynthesised: boolean;
  /** tokenizer.json's text, or null for a checkpoint without one (reference checkpoints). */
  readonly tokenizerJson: string | null;
  /** config.yaml's sections other than model (trainer, optimizer, ...), as saved. */
  readonly extraConfig: Readonly<Record<string, unknown>>;
  /** optimizer.safetensors, when asked for and present. */
  readonly optimizer?: NamedTensors;
}

export interface LoadCheckpointOptions {
  /** Also read optimizer.safetensors (left undefined in the result when the folder has none). */
  readonly optimizer?: boolean;
}

const corrupt = (message: string): XlstmError => new XlstmError('CHECKPOINT_CORRUPT', message);

/** A file's bytes, or null when it does not exist. */
async function readOptional(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

async function readRequired(file: string, why: string): Promise<Buffer> {
  const bytes = await readOptional(file);
  if (bytes === null) throw corrupt(`${file} expected to exist (${why}), but it is missing. Hint: save the checkpoint again.`);
  return bytes;
}

function parseJson(bytes: Buffer, file: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf-8'));
  } catch (e) {
    throw corrupt(`${file}: expected valid JSON, but got a parse error (${(e as Error).message}).`);
  }
}

export async function loadCheckpoint(dir: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const folder = await stat(dir).catch(() => null);
  if (!folder?.isDirectory()) {
    throw new XlstmError(
      'CHECKPOINT_NOT_FOUND',
      `checkpoint folder ${dir} expected to exist, but ${folder ? 'it is a file' : 'nothing is there'}. Hint: check the path or list the checkpoints.`,
    );
  }

  const metaFile = path.join(dir, 'meta.json');
  const metaBytes = await readOptional(metaFile);
  const storedMeta = metaBytes === null ? null : validateMeta(parseJson(metaBytes, metaFile), metaFile);

  const weightsFile = path.join(dir, WEIGHTS_FILE);
  const weights = await readRequired(weightsFile, 'the model weights');
  const sha256 = sha256Bytes(weights);
  if (storedMeta && sha256 !== storedMeta.sha256) {
    throw corrupt(
      `${weightsFile}: sha256 expected ${storedMeta.sha256} (from meta.json), but got ${sha256}. Hint: the weights changed after the save; restore the file or delete the checkpoint.`,
    );
  }

  const headerLength = headerLengthOf(weights.subarray(0, 8), weights.byteLength, weightsFile);
  const header = parseHeader(weights.subarray(8, 8 + headerLength), weights.byteLength, weightsFile);
  if (storedMeta) {
    const other = [...header.tensors.values()].find((t) => t.dtype !== storedMeta.dtype);
    if (other) throw corrupt(`${weightsFile}: tensor "${other.name}" dtype expected ${storedMeta.dtype} (from meta.json), but got ${other.dtype}.`);
  }

  const configFile = path.join(dir, 'config.yaml');
  const parsed = parseCheckpointConfig((await readRequired(configFile, 'the model config')).toString('utf-8'), configFile);
  const hasHead = header.tensors.has('head.weight');
  const config: ModelConfig = hasHead ? parsed.config : Object.freeze({ ...parsed.config, tie_weights: true });
  const diff = diffLayout(expectedShapes(config, hasHead), new Map([...header.tensors].map(([n, t]) => [n, t.shape])));
  if (!layoutMatches(diff)) {
    throw corrupt(
      `${weightsFile}: tensors expected to match ${configFile}, but got ${describeLayoutDiff(diff)}. Hint: the weights and config.yaml come from different models.`,
    );
  }
  const tensors: NamedTensors = new Map();
  for (const entry of header.tensors.values()) {
    tensors.set(entry.name, { shape: [...entry.shape], data: decodeTensor(weights, header, entry) });
  }

  const tokenizerFile = path.join(dir, 'tokenizer.json');
  const tokenizerBytes = storedMeta ? await readRequired(tokenizerFile, 'the tokenizer') : await readOptional(tokenizerFile);
  const tokenizerJson = tokenizerBytes === null ? null : tokenizerBytes.toString('utf-8');
  if (tokenizerBytes !== null) parseJson(tokenizerBytes, tokenizerFile);

  const meta =
    storedMeta ??
    validateMeta(
      {
        format_version: META_FORMAT_VERSION,
        id: path.basename(path.resolve(dir)),
        parent: null,
        run_id: null,
        step: 0,
        tokens_seen: 0,
        train_loss: null,
        val_loss: null,
        created: (await stat(weightsFile)).mtime.toISOString(),
        sha256,
        dtype: header.tensors.values().next().value?.dtype ?? 'F32',
        provenance: { notes: 'meta.json was absent (as in checkpoints of the PyTorch reference); synthesised at load' },
      },
      metaFile,
    );

  let optimizer: NamedTensors | undefined;
  if (options.optimizer) {
    const optimizerFile = path.join(dir, 'optimizer.safetensors');
    const bytes = await readOptional(optimizerFile);
    if (bytes !== null) optimizer = decodeSafetensors(bytes, optimizerFile).tensors;
  }

  return Object.freeze({
    dir,
    config,
    tensors,
    meta,
    metaSynthesised: storedMeta === null,
    tokenizerJson,
    extraConfig: parsed.extra,
    ...(optimizer ? { optimizer } : {}),
  });
}
