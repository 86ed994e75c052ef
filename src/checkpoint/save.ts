/** Saves a checkpoint folder (weights, config.yaml, tokenizer.json, meta.json, optional optimizer state) in one atomic step. */
import path from 'node:path';
import { validateModelConfig, type ModelConfig } from '../core/config.ts';
import { XlstmError } from '../util/errors.ts';
import { stringifyCheckpointConfig } from './config-file.ts';
import { sha256Bytes, WEIGHTS_FILE, writeFolderAtomic, type FolderFiles } from './folder.ts';
import { describeLayoutDiff, diffLayout, expectedShapes, layoutMatches } from './layout.ts';
import { checkMeta, META_FORMAT_VERSION, type Meta, type Provenance } from './meta.ts';
import { encodeSafetensors, type NamedTensors, type WriteDtype } from './safetensors.ts';

/** What the caller knows of meta.json; the rest (format_version, sha256, dtype) is computed. */
export interface MetaInput {
  /** Defaults to the folder's name. */
  readonly id?: string;
  readonly parent?: string | null;
  readonly run_id?: string | null;
  readonly step?: number;
  readonly tokens_seen?: number;
  readonly train_loss?: number | null;
  readonly val_loss?: number | null;
  /** Defaults to now. */
  readonly created?: string;
  readonly provenance?: Provenance;
}

export interface SaveCheckpointOptions {
  readonly config: ModelConfig;
  /** Every tensor of modelParams(deriveDims(config)); with tie_weights, head.weight may be left out (embedding.weight is stored in its place). */
  readonly tensors: NamedTensors;
  readonly tokenizerJson: string;
  readonly meta: MetaInput;
  /** Storage type of model.safetensors (default F32). */
  readonly dtype?: WriteDtype;
  /** Optimizer state, stored as F32 in optimizer.safetensors (half precision would damage Adam moments). */
  readonly optimizer?: NamedTensors;
  /** Other resolved config sections (optimizer, data, trainer, ...), stored beside `model:` in config.yaml. */
  readonly extraConfig?: Readonly<Record<string, unknown>>;
}

/** Writes `dir` atomically (replacing any checkpoint there) and returns the meta.json written. */
export async function saveCheckpoint(dir: string, options: SaveCheckpointOptions): Promise<Meta> {
  const config = validateModelConfig(options.config, 'saveCheckpoint config');
  const dtype = options.dtype ?? 'F32';

  // DESIGN: a checkpoint always stores head.weight, tied or not.
  let tensors = options.tensors;
  if (config.tie_weights && !tensors.has('head.weight') && tensors.has('embedding.weight')) {
    const embedding = tensors.get('embedding.weight')!;
    tensors = new Map(tensors).set('head.weight', { shape: [...embedding.shape], data: embedding.data });
  }
  const diff = diffLayout(expectedShapes(config, true), new Map([...tensors].map(([n, t]) => [n, t.shape])));
  if (!layoutMatches(diff)) {
    throw new XlstmError(
      'INVALID_INPUT',
      `saveCheckpoint tensors expected exactly the parameters of the config, but got ${describeLayoutDiff(diff)}.`,
    );
  }
  try {
    JSON.parse(options.tokenizerJson);
  } catch (e) {
    throw new XlstmError('INVALID_INPUT', `saveCheckpoint tokenizerJson expected JSON text, but got a parse error (${(e as Error).message}).`);
  }

  const weights = encodeSafetensors(tensors, { dtype });
  const input = options.meta;
  const meta = checkMeta(
    {
      ...input,
      format_version: META_FORMAT_VERSION,
      id: input.id ?? path.basename(path.resolve(dir)),
      parent: input.parent ?? null,
      run_id: input.run_id ?? null,
      step: input.step ?? 0,
      tokens_seen: input.tokens_seen ?? 0,
      train_loss: input.train_loss ?? null,
      val_loss: input.val_loss ?? null,
      created: input.created ?? new Date().toISOString(),
      sha256: sha256Bytes(weights),
      dtype,
    },
    'saveCheckpoint meta',
    'INVALID_INPUT',
  );

  const files: Array<readonly [string, Uint8Array | string]> = [[WEIGHTS_FILE, weights]];
  if (options.optimizer) files.push(['optimizer.safetensors', encodeSafetensors(options.optimizer, { dtype: 'F32' })]);
  files.push(
    ['config.yaml', stringifyCheckpointConfig(config, options.extraConfig ?? {})],
    ['tokenizer.json', options.tokenizerJson],
    // meta.json last: a folder with a readable meta.json had every other file written first.
    ['meta.json', `${JSON.stringify(meta, null, 2)}\n`],
  );
  await writeFolderAtomic(dir, files satisfies FolderFiles);
  return meta;
}
