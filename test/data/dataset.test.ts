import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareDataset } from '../../src/data/dataset.ts';
import { readDocuments } from '../../src/data/reader.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';

const base = mkdtempSync(join(tmpdir(), 'xlstm-dataset-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const EOS = 50256;
const PAD = 50257;
const encodeChars = (text: string): number[] => Array.from(text, (c) => c.codePointAt(0)!);
const options = { encode: encodeChars, eosId: EOS, padId: PAD, maxLength: 8, readChunk: 5, valSplit: 0.25, seed: 3 };

function dataset(name: string, files: Record<string, string | Uint8Array>): string {
  const root = join(base, name);
  mkdirSync(root);
  for (const [file, content] of Object.entries(files)) writeFileSync(join(root, file), content);
  return root;
}

describe('prepareDataset', () => {
  it('uses the valid file when there is one', async () => {
    const root = dataset('with-valid', { 'train.txt': 'one<|endoftext|>two', 'valid.txt': 'three' });
    const data = await prepareDataset(root, options);
    expect(data.validSource).toBe('file');
    expect(Array.from(data.train.stream)).toEqual([...encodeChars('one'), EOS, ...encodeChars('two'), EOS]);
    expect(Array.from(data.valid!.stream)).toEqual([...encodeChars('three'), EOS]);
    expect(data.test).toBeNull();
  });

  it('splits validation off train when there is no valid file', async () => {
    const docs = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
    const root = dataset('split', { 'train.jsonl': docs.map((text) => JSON.stringify({ text })).join('\n') });
    const data = await prepareDataset(root, options);
    expect(data.validSource).toBe('split');
    const validDocs = String.fromCodePoint(...data.valid!.stream).split(String.fromCodePoint(EOS)).filter(Boolean);
    const trainDocs = String.fromCodePoint(...data.train.stream).split(String.fromCodePoint(EOS)).filter(Boolean);
    expect(validDocs).toHaveLength(2);
    expect([...trainDocs, ...validDocs].sort()).toEqual([...docs].sort());
    expect(data.train.maxLength).toBe(8);
  });

  it('has no validation set for val_split 0', async () => {
    const root = dataset('no-valid', { 'train.txt': 'only text here' });
    expect((await prepareDataset(root, { ...options, valSplit: 0 })).valid).toBeNull();
  });

  it('validates every file before tokenising any', async () => {
    const root = dataset('bad-test', { 'train.txt': 'fine', 'test.txt': Uint8Array.of(0x61, 0xff) });
    let calls = 0;
    const encode = (t: string) => (calls++, encodeChars(t));
    await expect(prepareDataset(root, { ...options, encode })).rejects.toThrow(/test\.txt expected UTF-8 text, but got an invalid UTF-8 sequence at byte offset 1/);
    expect(calls).toBe(0);
  });
});

describe('prepareDataset with the GPT-2 tokenizer on the bundled corpus', () => {
  it('packs valid.txt so that the documents decode back, separated by eos', async () => {
    const tok = Tokenizer.gpt2();
    const file = 'data/corpus/valid.txt';
    const docs: string[] = [];
    for await (const d of readDocuments({ split: 'train', path: file, format: 'text' }, { readChunk: 4096 })) docs.push(d);

    const data = await prepareDataset(file, { ...options, encode: (t) => tok.encode(t), eosId: tok.eosId, padId: tok.padId, maxLength: 128, readChunk: 4096, valSplit: 0.3 });
    expect(data.validSource).toBe('split');
    const decodeDocs = (stream: Int32Array) => {
      const out: string[] = [];
      let start = 0;
      stream.forEach((id, i) => {
        if (id === tok.eosId) {
          out.push(tok.decode(Array.from(stream.subarray(start, i))));
          start = i + 1;
        }
      });
      expect(start).toBe(stream.length); // the stream ends with eos
      return out;
    };
    const train = decodeDocs(data.train.stream);
    const valid = decodeDocs(data.valid!.stream);
    expect([train.length, valid.length]).toEqual([5, 2]); // round(0.3 * 7) = 2 held out
    expect([...train, ...valid].sort()).toEqual([...docs].sort());
    expect(data.train.count).toBe(Math.ceil((data.train.stream.length - 1) / 128));
  });
});
