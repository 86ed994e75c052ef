import { beforeAll, describe, expect, it } from 'vitest';

import { StreamDecoder, Tokenizer } from '../../src/tokenizer/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { tokenizerCorpus } from './corpus.ts';

let tok: Tokenizer;
beforeAll(() => {
  tok = Tokenizer.gpt2();
});

/** Pushes ids one by one; returns each push's text and the flush. */
function stream(ids: readonly number[], decoder = new StreamDecoder(tok)): { pieces: string[]; rest: string } {
  const pieces = ids.map((id) => decoder.push(id));
  return { pieces, rest: decoder.flush() };
}

// A surrogate without its partner means a code point was cut in two.
const HALF_CHARACTER = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Ids of the single-byte tokens, by byte value (GPT-2 has one token per byte). */
function singleByteIds(): Map<number, number> {
  const ids = new Map<number, number>();
  for (let id = 0; id < tok.eosId; id++) {
    const bytes = tok.tokenBytes(id);
    if (bytes.length === 1) ids.set(bytes[0], id);
  }
  return ids;
}

describe('StreamDecoder on encoded text', () => {
  const corpus = tokenizerCorpus(7, 2000);

  it('emits pieces that join to decode(ids), whole characters only, no U+FFFD, nothing left to flush', () => {
    const bad: unknown[] = [];
    for (const s of corpus) {
      const ids = tok.encode(s);
      const { pieces, rest } = stream(ids);
      const ok =
        pieces.join('') + rest === tok.decode(ids) &&
        rest === '' &&
        pieces.every((p) => !p.includes('\ufffd') && !HALF_CHARACTER.test(p));
      if (!ok && bad.push({ s, pieces, rest }) >= 5) break;
    }
    expect(bad).toEqual([]);
  });

  it.each(['🤗', '🦜 ', ' 🧑🏽‍🚀 landed', '日本', '\u{20000}x', 'é'])(
    'emits every character of %j in one piece, never split between two',
    (text) => {
      const { pieces } = stream(tok.encode(text));
      expect(pieces.flatMap((p) => [...p])).toEqual([...text]);
    },
  );

  it('emits a four-byte emoji split over several tokens in one piece, with its last token', () => {
    const ids = tok.encode('🤗');
    expect(ids.length).toBeGreaterThan(1);
    expect(stream(ids).pieces).toEqual([...ids.slice(1).map(() => ''), '🤗']);
  });

  it('emits special tokens as their text', () => {
    const ids = [...tok.encode('end'), tok.eosId, tok.padId];
    expect(stream(ids).pieces).toEqual(['end', '<|endoftext|>', '<|pad|>']);
  });

  it('starts afresh after flush', () => {
    const decoder = new StreamDecoder(tok);
    const [first] = tok.encode('🤗');
    decoder.push(first);
    expect(decoder.flush()).toBe('\ufffd');
    expect(stream(tok.encode('ok 🤗'), decoder).pieces.join('')).toBe('ok 🤗');
  });
});

describe('StreamDecoder on invalid byte sequences', () => {
  it('never throws and always joins to decode(ids), on random ids of every kind', () => {
    const rng = new Rng(99);
    const bytes = singleByteIds();
    const bad: unknown[] = [];
    for (let n = 0; n < 2000; n++) {
      const ids = Array.from({ length: 1 + rng.int(12) }, () => {
        const kind = rng.int(10);
        if (kind < 6) return bytes.get(0x80 + rng.int(0x80))!; // lead and continuation bytes, mostly mismatched
        if (kind < 9) return rng.int(tok.eosId);
        return rng.int(2) ? tok.eosId : tok.padId;
      });
      const { pieces, rest } = stream(ids);
      const ok = pieces.join('') + rest === tok.decode(ids) && (rest === '' || rest === '\ufffd');
      if (!ok && bad.push({ ids, pieces, rest }) >= 5) break;
    }
    expect(bad).toEqual([]);
  });

  it('holds an unfinished character back, and flush alone turns it into U+FFFD', () => {
    const bytes = singleByteIds();
    const ids = [...tok.encode('ok'), bytes.get(0xf0)!, bytes.get(0x9f)!, bytes.get(0xa4)!];
    const { pieces, rest } = stream(ids);
    expect(pieces).toEqual(['ok', '', '', '']);
    expect(rest).toBe('\ufffd');
    expect(pieces.join('') + rest).toBe(tok.decode(ids));
  });

  it('emits U+FFFD for an impossible byte at once, while a cut-off character before a special token still matches decode', () => {
    const bytes = singleByteIds();
    expect(stream([bytes.get(0xff)!, ...tok.encode('a')]).pieces).toEqual(['\ufffd', 'a']);
    const ids = [bytes.get(0xe2)!, bytes.get(0x82)!, tok.eosId];
    const { pieces, rest } = stream(ids);
    expect(pieces.join('') + rest).toBe(tok.decode(ids));
    expect(pieces.join('') + rest).toBe('\ufffd<|endoftext|>');
  });
});
