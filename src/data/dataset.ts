/** Turns a dataset root into packed train / valid / test windows: validate, tokenise, split, pack. */
import { XlstmError } from '../util/errors.ts';
import { PackedWindows, splitCorpus, tokenizeDocuments, type Encode, type TokenCorpus } from './pack.ts';
import { readDocuments, validateDataset, type DatasetFile, type DatasetLayout, type FileSummary } from './reader.ts';

export interface DatasetOptions {
  readonly encode: Encode;
  readonly eosId: number;
  readonly padId: number;
  /** T: tokens the model sees per row; windows hold T+1. */
  readonly maxLength: number;
  readonly readChunk: number;
  /** Fraction held out for validation when the dataset has no valid file. */
  readonly valSplit: number;
  readonly seed: number;
}

export interface PreparedDataset {
  readonly layout: DatasetLayout;
  readonly files: readonly FileSummary[];
  readonly train: PackedWindows;
  readonly valid: PackedWindows | null;
  readonly test: PackedWindows | null;
  /** Where validation came from: its own file, a split of train, or nowhere (val_split 0). */
  readonly validSource: 'file' | 'split' | 'none';
}

/** Every file is validated before the first one is tokenised, so bad data fails before any work. */
export async function prepareDataset(root: string, options: DatasetOptions): Promise<PreparedDataset> {
  const { layout, files } = await validateDataset(root, options);
  const load = (file: DatasetFile): Promise<TokenCorpus> =>
    tokenizeDocuments(readDocuments(file, options), options.encode, options.eosId);
  const pack = (corpus: TokenCorpus): PackedWindows => new PackedWindows(corpus.tokens, options.maxLength, options.padId);

  let train = await load(layout.train);
  let valid: TokenCorpus | null = null;
  let validSource: PreparedDataset['validSource'] = 'none';
  if (layout.valid) {
    valid = await load(layout.valid);
    validSource = 'file';
  } else if (options.valSplit > 0) {
    ({ train, valid } = splitCorpus(train, options.valSplit, options.seed));
    validSource = 'split';
  }
  const packed = pack(train);
  if (packed.count === 0) {
    throw new XlstmError('INVALID_INPUT', `train split of ${root} expected at least 2 tokens, but got ${train.tokens.length}.`);
  }
  return {
    layout,
    files,
    train: packed,
    valid: valid ? pack(valid) : null,
    test: layout.test ? pack(await load(layout.test)) : null,
    validSource,
  };
}
