/**
 * Tokenises documents into one stream, splits off validation, packs the stream into windows of
 * T+1 tokens and serves them as seeded, resumable epochs of batches.
 */
import { XlstmError } from '../util/errors.ts';
import { Rng } from '../util/rng.ts';

/** Text to token ids; injected so that data/ never builds a tokenizer. */
export type Encode = (text: string) => ArrayLike<number>;

/** Documents as one token stream: document i is tokens[offsets[i], offsets[i+1]) and ends with eos. */
export interface TokenCorpus {
  readonly tokens: Int32Array;
  readonly offsets: Float64Array;
}

/** A batch of B windows of `length` = T+1 tokens, row-major: inputs are columns 0..T-1, targets 1..T. */
export interface Batch {
  readonly tokens: Int32Array;
  readonly batch: number;
  readonly length: number;
}

/** Where an epoch iterator stands: the next batch to serve is `batch` of `epoch`. */
export interface BatchPosition {
  readonly epoch: number;
  readonly batch: number;
}

/** Growable Int32 storage, so a corpus is tokenised without knowing its length first. */
class TokenBuffer {
  private data = new Int32Array(1 << 16);
  length = 0;

  push(ids: ArrayLike<number>, where: () => string): void {
    this.reserve(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
        throw new XlstmError('INVALID_INPUT', `token id at ${where()} expected a non-negative integer, but got ${id}.`);
      }
      this.data[this.length++] = id;
    }
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    let size = this.data.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Int32Array(size);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }

  finish(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

/**
 * Tokenises documents in order, each followed by `eosId`: eos separates consecutive documents and
 * also ends the last one, so the model learns where a document stops.
 */
export async function tokenizeDocuments(
  documents: AsyncIterable<string> | Iterable<string>,
  encode: Encode,
  eosId: number,
): Promise<TokenCorpus> {
  const buffer = new TokenBuffer();
  const offsets: number[] = [0];
  for await (const doc of documents) {
    buffer.push(encode(doc), () => `document ${offsets.length - 1}`);
    buffer.push([eosId], () => 'eosId');
    offsets.push(buffer.length);
  }
  return { tokens: buffer.finish(), offsets: Float64Array.from(offsets) };
}

export function documentCount(corpus: TokenCorpus): number {
  return corpus.offsets.length - 1;
}

/** A uniformly random permutation of 0..n-1 (Fisher-Yates) drawn from `rng`. */
export function permutation(n: number, rng: Rng): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/**
 * Holds out about `valSplit` of the corpus for validation when the dataset has no valid file.
 * Whole documents are held out (a seeded choice, each part kept in its original order) so no
 * document straddles the split; a single document is cut instead, its tail going to validation.
 */
export function splitCorpus(corpus: TokenCorpus, valSplit: number, seed: number): { train: TokenCorpus; valid: TokenCorpus | null } {
  if (!(valSplit >= 0 && valSplit < 1)) {
    throw new XlstmError('INVALID_CONFIG', `data.val_split expected a fraction in [0, 1), but got ${valSplit}.`);
  }
  if (valSplit === 0) return { train: corpus, valid: null };
  const n = documentCount(corpus);
  if (n === 1) {
    const length = corpus.tokens.length;
    const cut = Math.round(length * (1 - valSplit));
    if (cut < 2 || length - cut < 2) {
      throw new XlstmError(
        'INVALID_INPUT',
        `a validation split of ${valSplit} expected at least 2 tokens on each side, but the only document has ${length} tokens. ` +
          'Hint: add a valid file or set data.val_split to 0.',
      );
    }
    return {
      train: { tokens: corpus.tokens.slice(0, cut), offsets: Float64Array.of(0, cut) },
      valid: { tokens: corpus.tokens.slice(cut), offsets: Float64Array.of(0, length - cut) },
    };
  }
  const held = Math.min(n - 1, Math.max(1, Math.round(valSplit * n)));
  const isValid = new Uint8Array(n);
  permutation(n, new Rng(seed)).subarray(0, held).forEach((doc) => (isValid[doc] = 1));
  return { train: selectDocuments(corpus, isValid, 0), valid: selectDocuments(corpus, isValid, 1) };
}

function selectDocuments(corpus: TokenCorpus, marks: Uint8Array, keep: number): TokenCorpus {
  const offsets = [0];
  let total = 0;
  marks.forEach((m, i) => {
    if (m === keep) offsets.push((total += corpus.offsets[i + 1] - corpus.offsets[i]));
  });
  const tokens = new Int32Array(total);
  let at = 0;
  marks.forEach((m, i) => {
    if (m !== keep) return;
    const part = corpus.tokens.subarray(corpus.offsets[i], corpus.offsets[i + 1]);
    tokens.set(part, at);
    at += part.length;
  });
  return { tokens, offsets: Float64Array.from(offsets) };
}

/**
 * The token stream cut into windows of T+1 tokens with stride T: window i is
 * stream[i*T, i*T+T+1), so consecutive windows share one token and every (input, target) pair of
 * the stream is trained exactly once per epoch. The last window is right-padded with `padId`
 * (the loss masks padded targets).
 */
export class PackedWindows {
  /** Number of windows: ceil((N-1)/T), 0 when the stream has fewer than 2 tokens. */
  readonly count: number;

  constructor(
    readonly stream: Int32Array,
    readonly maxLength: number,
    readonly padId: number,
  ) {
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new XlstmError('INVALID_CONFIG', `data.max_length expected a positive integer, but got ${maxLength}.`);
    }
    this.count = stream.length < 2 ? 0 : Math.ceil((stream.length - 1) / maxLength);
  }

  /** T+1: tokens per window. */
  get length(): number {
    return this.maxLength + 1;
  }

  /** Writes window i at out[at, at+T+1) and returns how many of its tokens are real (not padding). */
  copyWindow(i: number, out: Int32Array, at: number): number {
    const start = i * this.maxLength;
    const end = Math.min(start + this.length, this.stream.length);
    out.set(this.stream.subarray(start, end), at);
    out.fill(this.padId, at + end - start, at + this.length);
    return end - start;
  }

  /** Gathers the given windows into one batch. */
  batch(windows: ArrayLike<number>): Batch {
    const tokens = new Int32Array(windows.length * this.length);
    for (let r = 0; r < windows.length; r++) this.copyWindow(windows[r], tokens, r * this.length);
    return { tokens, batch: windows.length, length: this.length };
  }
}

export interface EpochOptions {
  readonly batchSize: number;
  readonly seed: number;
  /** Validation and tests read windows in order; training shuffles (default true). */
  readonly shuffle?: boolean;
  /** Drop the last, smaller batch of an epoch instead of serving it (default false). */
  readonly dropLast?: boolean;
}

export function batchesPerEpoch(windows: PackedWindows, options: EpochOptions): number {
  checkBatchSize(options.batchSize);
  return options.dropLast ? Math.floor(windows.count / options.batchSize) : Math.ceil(windows.count / options.batchSize);
}

/**
 * The window order of one epoch. Epoch e uses the (e+1)-th fork of Rng(seed), so any epoch is
 * reproducible on its own without replaying the ones before it.
 */
export function epochOrder(windows: PackedWindows, seed: number, epoch: number, shuffle = true): Uint32Array {
  if (!shuffle) return Uint32Array.from({ length: windows.count }, (_, i) => i);
  const root = new Rng(seed);
  let rng = root.fork();
  for (let e = 0; e < epoch; e++) rng = root.fork();
  return permutation(windows.count, rng);
}

/**
 * Batches from `from` onwards, epoch after epoch without end (the caller stops on max_steps or
 * max_epochs). Each item carries `next`: the position to store with a checkpoint taken after
 * this batch, so a resumed run continues with exactly the batches an uninterrupted one would see.
 */
export function* epochBatches(
  windows: PackedWindows,
  options: EpochOptions,
  from: BatchPosition = { epoch: 0, batch: 0 },
): Generator<{ position: BatchPosition; next: BatchPosition; batch: Batch }> {
  const perEpoch = batchesPerEpoch(windows, options);
  if (perEpoch === 0) {
    throw new XlstmError(
      'INVALID_INPUT',
      `an epoch expected at least one batch of ${options.batchSize} windows, but the data packs into ${windows.count} windows. ` +
        'Hint: lower data.batch_size or data.max_length, or add data.',
    );
  }
  checkPosition(from, perEpoch);
  for (let epoch = from.epoch; ; epoch++) {
    const order = epochOrder(windows, options.seed, epoch, options.shuffle ?? true);
    for (let b = epoch === from.epoch ? from.batch : 0; b < perEpoch; b++) {
      const rows = order.subarray(b * options.batchSize, Math.min((b + 1) * options.batchSize, order.length));
      const next = b + 1 < perEpoch ? { epoch, batch: b + 1 } : { epoch: epoch + 1, batch: 0 };
      yield { position: { epoch, batch: b }, next, batch: windows.batch(rows) };
    }
  }
}

/** One pass over the windows in order, for evaluation. */
export function* sequentialBatches(windows: PackedWindows, batchSize: number): Generator<Batch> {
  checkBatchSize(batchSize);
  const rows = new Uint32Array(batchSize);
  for (let start = 0; start < windows.count; start += batchSize) {
    const n = Math.min(batchSize, windows.count - start);
    for (let r = 0; r < n; r++) rows[r] = start + r;
    yield windows.batch(rows.subarray(0, n));
  }
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new XlstmError('INVALID_CONFIG', `data.batch_size expected a positive integer, but got ${batchSize}.`);
  }
}

function checkPosition(from: BatchPosition, perEpoch: number): void {
  const ok = Number.isInteger(from.epoch) && from.epoch >= 0 && Number.isInteger(from.batch) && from.batch >= 0 && from.batch < perEpoch;
  if (!ok) {
    throw new XlstmError(
      'INVALID_INPUT',
      `resume position expected an epoch >= 0 and a batch in [0, ${perEpoch}), but got epoch ${from.epoch}, batch ${from.batch}. ` +
        'Hint: the data or data.batch_size changed since the checkpoint was written.',
    );
  }
}
