import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DOCUMENT_SEPARATOR, readDocuments, resolveDataset, validateDataset, type DatasetFile } from '../../src/data/reader.ts';
import { isXlstmError } from '../../src/util/errors.ts';

const base = mkdtempSync(join(tmpdir(), 'xlstm-reader-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

let counter = 0;
/** A fresh dataset folder holding the given files. */
function dataset(files: Record<string, string | Uint8Array>): string {
  const root = join(base, `d${counter++}`);
  mkdirSync(root);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(root, name), content);
  return root;
}

async function collect(file: DatasetFile, readChunk: number): Promise<string[]> {
  const docs: string[] = [];
  for await (const d of readDocuments(file, { readChunk })) docs.push(d);
  return docs;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => Array.from(p)));

describe('resolveDataset', () => {
  it('finds train, valid and test files of either format', async () => {
    const root = dataset({ 'train.txt': 'a', 'valid.jsonl': '{"text":"b"}', 'notes.md': 'x' });
    const layout = await resolveDataset(root);
    expect(layout.train).toEqual({ split: 'train', path: join(root, 'train.txt'), format: 'text' });
    expect(layout.valid).toEqual({ split: 'valid', path: join(root, 'valid.jsonl'), format: 'jsonl' });
    expect(layout.test).toBeNull();
  });

  it('treats a root that is a single file as a train-only dataset', async () => {
    const root = dataset({ 'stories.jsonl': '{"text":"a"}' });
    const layout = await resolveDataset(join(root, 'stories.jsonl'));
    expect(layout.train.format).toBe('jsonl');
    expect(layout.valid).toBeNull();
  });
});

describe('validateDataset errors, before any training', () => {
  const cases: Array<[string, () => string, RegExp]> = [
    ['a missing root', () => join(base, 'does-not-exist'), /does-not-exist expected to exist, but got nothing/],
    ['a folder without a train file', () => dataset({ 'valid.txt': 'a' }), /expected train\.txt or train\.jsonl, but got valid\.txt/],
    ['two train files', () => dataset({ 'train.txt': 'a', 'train.jsonl': '{"text":"a"}' }), /expected one file for the train split, but got train\.txt and train\.jsonl/],
    ['an empty file', () => dataset({ 'train.txt': 'story', 'valid.txt': '' }), /valid\.txt expected text, but got an empty file \(0 bytes\)/],
    ['a file of only separators and whitespace', () => dataset({ 'train.txt': `\n${DOCUMENT_SEPARATOR}\n  \n` }), /train\.txt expected at least one document/],
    ['a binary file (NUL byte)', () => dataset({ 'train.txt': concat(utf8('héllo'), Uint8Array.of(0, 1, 2)) }), /train\.txt expected UTF-8 text, but got a NUL byte at byte offset 6/],
    ['invalid UTF-8 (Latin-1 é) at a given offset', () => dataset({ 'train.txt': concat(utf8('ok €\n'), Uint8Array.of(0x63, 0x61, 0x66, 0xe9)) }), /train\.txt expected UTF-8 text, but got an invalid UTF-8 sequence at byte offset 10/],
    ['a test file with a truncated character', () => dataset({ 'train.txt': 'a', 'test.txt': concat(utf8('ab'), Uint8Array.of(0xe2, 0x82)) }), /test\.txt expected UTF-8 text, but got an invalid UTF-8 sequence at byte offset 2/],
    ['JSONL lines without "text"', () => dataset({ 'train.jsonl': '{"text":"a"}\n{"body":"é"}\n' }), /train\.jsonl line 2 \(byte offset 13\) expected an object with a string field "text", but got an object with the keys body/],
    ['JSONL with a non-string text', () => dataset({ 'train.jsonl': '{"text":5}\n' }), /line 1 \(byte offset 0\) expected an object with a string field "text", but got an object with the keys text/],
    ['JSONL with invalid JSON', () => dataset({ 'train.jsonl': '{"text":"é"}\n\n{"text": oops}\n' }), /train\.jsonl line 3 \(byte offset 15\) expected a JSON object, but got invalid JSON/],
    ['a root file with an unknown extension', () => join(dataset({ 'data.csv': 'a,b' }), 'data.csv'), /data\.csv expected the extension \.txt or \.jsonl, but got "\.csv"/],
  ];

  it.each(cases)('rejects %s with INVALID_INPUT naming the file', async (_name, make, message) => {
    const root = make();
    for (const readChunk of [1, 4096]) {
      const error = await validateDataset(root, { readChunk }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isXlstmError(error, 'INVALID_INPUT'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('rejects a non-positive read_chunk as a config error', async () => {
    const root = dataset({ 'train.txt': 'a' });
    await expect(validateDataset(root, { readChunk: 0 })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });

  it('summarises a valid dataset', async () => {
    const root = dataset({ 'train.txt': `a${DOCUMENT_SEPARATOR}b${DOCUMENT_SEPARATOR}`, 'valid.jsonl': '{"text":"c"}\n' });
    const { files } = await validateDataset(root, { readChunk: 3 });
    expect(files.map((f) => [f.split, f.documents, f.bytes])).toEqual([
      ['train', 2, 28],
      ['valid', 1, 13],
    ]);
  });

  it('accepts the bundled corpus (data/corpus)', async () => {
    const { files } = await validateDataset('data/corpus', { readChunk: 1 << 16 });
    expect(files.map((f) => [f.split, f.documents])).toEqual([
      ['train', 131],
      ['valid', 7],
    ]);
  });
});

describe('readDocuments', () => {
  // Multi-byte characters sit right next to the separator and the chunk size varies, so chunk
  // boundaries fall inside characters and inside the separator.
  const docs = ['Once upon a time, 🐉 found €5.', 'Zweite Geschichte: Größe ß.', '中文故事。\nline two', 'last 😀'];

  it.each([1, 2, 3, 5, 7, 13, 64, 1 << 16])('splits TinyStories text into documents with read_chunk %d', async (readChunk) => {
    const text = '\uFEFF' + docs.map((d) => `${d}\n${DOCUMENT_SEPARATOR}\n`).join('') + '\n';
    const root = dataset({ 'train.txt': text });
    const naive = text.replace('\uFEFF', '').split(DOCUMENT_SEPARATOR).map((d) => d.trim()).filter(Boolean);
    expect(await collect({ split: 'train', path: join(root, 'train.txt'), format: 'text' }, readChunk)).toEqual(naive);
    expect(naive).toEqual(docs);
  });

  it('handles adjacent separators and a cut-off separator at every chunk size', async () => {
    const text = `${DOCUMENT_SEPARATOR}${DOCUMENT_SEPARATOR}a<|endoftext${DOCUMENT_SEPARATOR}b<|endof`;
    const root = dataset({ 'train.txt': text });
    for (let readChunk = 1; readChunk <= 16; readChunk++) {
      expect(await collect({ split: 'train', path: join(root, 'train.txt'), format: 'text' }, readChunk)).toEqual(['a<|endoftext', 'b<|endof']);
    }
  });

  it('keeps a file without separators as one document', async () => {
    const root = dataset({ 'train.txt': '  one long text\n\nwith paragraphs  ' });
    expect(await collect({ split: 'train', path: join(root, 'train.txt'), format: 'text' }, 4)).toEqual(['one long text\n\nwith paragraphs']);
  });

  it.each([1, 3, 11, 4096])('reads the "text" field of JSONL lines with read_chunk %d', async (readChunk) => {
    const lines = docs.map((text, i) => JSON.stringify({ id: i, text }));
    const root = dataset({ 'train.jsonl': '\uFEFF' + lines.join('\r\n') + '\r\n\n' });
    expect(await collect({ split: 'train', path: join(root, 'train.jsonl'), format: 'jsonl' }, readChunk)).toEqual(docs);
  });
});
