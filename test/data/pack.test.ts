import { describe, expect, it } from 'vitest';
import {
  PackedWindows,
  batchesPerEpoch,
  documentCount,
  epochBatches,
  sequentialBatches,
  splitCorpus,
  tokenizeDocuments,
  type TokenCorpus,
} from '../../src/data/pack.ts';

const EOS = 50256;
const PAD = 50257;

/** A toy encoder: one id per character (its code point), so expected streams are easy to write. */
const encodeChars = (text: string): number[] => Array.from(text, (c) => c.codePointAt(0)!);

/** A stream 0..n-1 of distinct ids, so every window is recognisable by its first token. */
const distinct = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

const rowsOf = (tokens: Int32Array, length: number): Int32Array[] =>
  Array.from({ length: tokens.length / length }, (_, r) => tokens.subarray(r * length, (r + 1) * length));

describe('tokenizeDocuments', () => {
  it('puts the end-of-text id after every document and records document offsets', async () => {
    const corpus = await tokenizeDocuments(['ab', 'c', 'de'], encodeChars, EOS);
    expect(Array.from(corpus.tokens)).toEqual([97, 98, EOS, 99, EOS, 100, 101, EOS]);
    expect(Array.from(corpus.offsets)).toEqual([0, 3, 5, 8]);
  });

  it('accepts async documents and rejects ids that are not non-negative integers', async () => {
    async function* docs() {
      yield 'x';
      yield 'y';
    }
    await expect(tokenizeDocuments(docs(), () => [1, -2], EOS)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(tokenizeDocuments(['a'], () => [1.5], EOS)).rejects.toThrow(/document 0 expected a non-negative integer, but got 1.5/);
  });

  it('grows past its initial buffer without losing tokens', async () => {
    const doc = 'x'.repeat(70_000);
    const corpus = await tokenizeDocuments([doc, doc], encodeChars, EOS);
    expect(corpus.tokens.length).toBe(140_002);
    expect(corpus.tokens[70_000]).toBe(EOS);
    expect(corpus.tokens[140_001]).toBe(EOS);
    expect(corpus.tokens.filter((t) => t === 120).length).toBe(140_000);
  });
});

describe('PackedWindows', () => {
  it('cuts windows of T+1 tokens with stride T and pads the last one', () => {
    const w = new PackedWindows(distinct(10), 4, PAD);
    expect(w.count).toBe(3); // ceil(9 / 4)
    const b = w.batch([0, 1, 2]);
    expect(b.batch).toBe(3);
    expect(b.length).toBe(5);
    expect(rowsOf(b.tokens, 5).map((r) => Array.from(r))).toEqual([
      [0, 1, 2, 3, 4],
      [4, 5, 6, 7, 8],
      [8, 9, PAD, PAD, PAD],
    ]);
  });

  it('needs no padding when N-1 is a multiple of T, and has no window below 2 tokens', () => {
    expect(new PackedWindows(distinct(9), 4, PAD).count).toBe(2);
    expect(new PackedWindows(distinct(1), 4, PAD).count).toBe(0);
    expect(new PackedWindows(distinct(2), 4, PAD).count).toBe(1);
  });

  it.each([
    [1, 17],
    [3, 17],
    [4, 17],
    [16, 17],
    [40, 17],
  ])('trains every (input, target) pair exactly once (T=%d, N=%d)', (T, N) => {
    const stream = distinct(N);
    const w = new PackedWindows(stream, T, PAD);
    const pairs: string[] = [];
    for (let i = 0; i < w.count; i++) {
      const row = w.batch([i]).tokens;
      for (let t = 0; t < T; t++) if (row[t + 1] !== PAD) pairs.push(`${row[t]}>${row[t + 1]}`);
    }
    expect(pairs).toEqual(Array.from({ length: N - 1 }, (_, i) => `${i}>${i + 1}`));
  });

  it('rejects a non-positive max_length', () => {
    expect(() => new PackedWindows(distinct(4), 0, PAD)).toThrow(/data.max_length expected a positive integer, but got 0/);
  });
});

describe('epochBatches', () => {
  const windows = new PackedWindows(distinct(101), 4, PAD); // 25 windows
  const options = { batchSize: 4, seed: 1234 };
  const take = (n: number, from?: { epoch: number; batch: number }, opts = options) => {
    const out = [];
    for (const item of epochBatches(windows, opts, from)) {
      out.push(item);
      if (out.length === n) break;
    }
    return out;
  };
  const firstTokens = (tokens: Int32Array) => rowsOf(tokens, 5).map((r) => r[0]);

  it('serves every window exactly once per epoch, the last batch smaller', () => {
    const epoch = take(batchesPerEpoch(windows, options));
    expect(epoch.map((b) => b.batch.batch)).toEqual([4, 4, 4, 4, 4, 4, 1]);
    const starts = epoch.flatMap((b) => firstTokens(b.batch.tokens)).sort((a, b) => a - b);
    expect(starts).toEqual(Array.from({ length: 25 }, (_, i) => i * 4));
    expect(epoch.every((b) => b.position.epoch === 0)).toBe(true);
  });

  it('shuffles: same seed same order, another seed or another epoch a different order', () => {
    const order = (seed: number, epoch: number) => take(7, { epoch, batch: 0 }, { ...options, seed }).flatMap((b) => firstTokens(b.batch.tokens));
    expect(order(1234, 0)).toEqual(order(1234, 0));
    expect(order(1234, 0)).not.toEqual(order(1235, 0));
    expect(order(1234, 1)).not.toEqual(order(1234, 0));
    expect(order(1234, 0)).not.toEqual([...order(1234, 0)].sort((a, b) => a - b));
  });

  it('resumes from any (epoch, batch) exactly as the uninterrupted run continues', () => {
    const run = take(20); // crosses two epoch boundaries (7 batches per epoch)
    for (const k of [0, 1, 6, 7, 9, 14, 19]) {
      const resumed = take(20 - k, run[k].position);
      expect(resumed.map((b) => b.position)).toEqual(run.slice(k).map((b) => b.position));
      expect(resumed.map((b) => Array.from(b.batch.tokens))).toEqual(run.slice(k).map((b) => Array.from(b.batch.tokens)));
    }
    expect(run[6].next).toEqual({ epoch: 1, batch: 0 });
    expect(run[7].position).toEqual(run[6].next);
  });

  it('drops the smaller last batch when asked', () => {
    const opts = { ...options, dropLast: true };
    expect(take(7, undefined, opts).map((b) => b.position)).toEqual([
      ...Array.from({ length: 6 }, (_, batch) => ({ epoch: 0, batch })),
      { epoch: 1, batch: 0 },
    ]);
  });

  it('refuses a resume position outside the epoch and data too small for one batch', () => {
    expect(() => take(1, { epoch: 0, batch: 7 })).toThrow(/batch in \[0, 7\), but got epoch 0, batch 7/);
    const tiny = new PackedWindows(distinct(5), 4, PAD);
    expect(() => epochBatches(tiny, { batchSize: 2, seed: 0, dropLast: true }).next()).toThrow(/packs into 1 windows/);
  });
});

describe('sequentialBatches', () => {
  it('reads all windows in order for evaluation', () => {
    const windows = new PackedWindows(distinct(30), 4, PAD); // 8 windows
    const batches = [...sequentialBatches(windows, 3)];
    expect(batches.map((b) => b.batch)).toEqual([3, 3, 2]);
    expect(batches.flatMap((b) => rowsOf(b.tokens, 5).map((r) => r[0]))).toEqual([0, 4, 8, 12, 16, 20, 24, 28]);
  });
});

describe('splitCorpus', () => {
  const corpusOf = async (n: number): Promise<TokenCorpus> =>
    tokenizeDocuments(Array.from({ length: n }, (_, i) => String.fromCodePoint(0x100 + i).repeat(1 + (i % 3))), encodeChars, EOS);
  const docsOf = (c: TokenCorpus): number[][] =>
    Array.from({ length: documentCount(c) }, (_, i) => Array.from(c.tokens.subarray(c.offsets[i], c.offsets[i + 1])));

  it('holds out round(val_split * documents) whole documents, partitioning the corpus', async () => {
    const corpus = await corpusOf(40);
    const { train, valid } = splitCorpus(corpus, 0.1, 9);
    expect(documentCount(valid!)).toBe(4);
    expect(documentCount(train)).toBe(36);
    const all = docsOf(corpus).map((d) => d.join(','));
    const parts = [...docsOf(train), ...docsOf(valid!)].map((d) => d.join(','));
    expect([...parts].sort()).toEqual([...all].sort());
    // Each part keeps the original document order.
    const rank = (d: string) => all.indexOf(d);
    for (const part of [train, valid!]) {
      const ranks = docsOf(part).map((d) => rank(d.join(',')));
      expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    }
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const corpus = await corpusOf(40);
    const pick = (seed: number) => Array.from(splitCorpus(corpus, 0.1, seed).valid!.tokens);
    expect(pick(3)).toEqual(pick(3));
    expect(pick(3)).not.toEqual(pick(4));
  });

  it('keeps at least one document on each side', async () => {
    expect(documentCount(splitCorpus(await corpusOf(3), 0.01, 0).valid!)).toBe(1);
    expect(documentCount(splitCorpus(await corpusOf(3), 0.99, 0).train)).toBe(1);
  });

  it('cuts a single document, its tail going to validation', async () => {
    const corpus = await tokenizeDocuments(['abcdefghi'], encodeChars, EOS);
    const { train, valid } = splitCorpus(corpus, 0.2, 0);
    expect([...train.tokens, ...valid!.tokens]).toEqual([...corpus.tokens]);
    expect(valid!.tokens.length).toBe(2); // 10 tokens * 0.2
  });

  it('returns no validation set for val_split 0 and rejects fractions outside [0, 1)', async () => {
    const corpus = await corpusOf(5);
    expect(splitCorpus(corpus, 0, 0)).toEqual({ train: corpus, valid: null });
    expect(() => splitCorpus(corpus, 1, 0)).toThrow(/data.val_split expected a fraction in \[0, 1\), but got 1/);
  });
});
