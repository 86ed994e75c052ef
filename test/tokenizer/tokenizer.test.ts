import { Tiktoken } from 'js-tiktoken/lite';
import r50kBase from 'js-tiktoken/ranks/r50k_base';
import { beforeAll, describe, expect, it } from 'vitest';

import { Tokenizer } from '../../src/tokenizer/index.ts';
import { isXlstmError } from '../../src/util/errors.ts';
import { tokenizerCorpus } from './corpus.ts';

// The oracle: js-tiktoken's r50k_base, OpenAI's GPT-2 ranks, an implementation independent of ours.
let oracle: Tiktoken;
let tok: Tokenizer;
const corpus = tokenizerCorpus(20240531, 2000);

beforeAll(() => {
  oracle = new Tiktoken(r50kBase);
  tok = Tokenizer.gpt2();
});

/** The failures (at most five, for a readable diff) of a per-string check over the corpus. */
function failures<T>(check: (s: string) => T | undefined): T[] {
  const out: T[] = [];
  for (const s of corpus) {
    const bad = check(s);
    if (bad !== undefined && out.push(bad) >= 5) break;
  }
  return out;
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, (at += p.length) - p.length);
  return all;
};

describe('Tokenizer.gpt2', () => {
  it('has GPT-2 ids for the special tokens and 50258 ids in all', () => {
    expect([tok.eosId, tok.padId, tok.vocabSize]).toEqual([50256, 50257, 50258]);
    expect(Tokenizer.gpt2()).toBe(tok);
  });

  it('is exercised on 2000 generated strings plus edge cases, none of them U+FFFD', () => {
    expect(corpus.length).toBeGreaterThan(2050);
    expect(corpus).toContain('');
    expect(corpus.filter((s) => s.includes('\ufffd'))).toEqual([]);
  });

  it("encodes every string to js-tiktoken r50k_base's ids (allowedSpecial 'all')", () => {
    expect(
      failures((s) => {
        const [ours, theirs] = [tok.encode(s), oracle.encode(s, 'all')];
        return ours.join() === theirs.join() ? undefined : { s, ours, theirs };
      }),
    ).toEqual([]);
  });

  it('decodes every encoding back to the original string', () => {
    expect(failures((s) => (tok.decode(tok.encode(s)) === s ? undefined : s))).toEqual([]);
  });

  it("spells every encoding with tokens whose bytes concatenate to the text's UTF-8", () => {
    const utf8 = new TextEncoder();
    expect(
      failures((s) => {
        const bytes = concat(tok.encode(s).map((id) => tok.tokenBytes(id)));
        return Buffer.from(bytes).equals(utf8.encode(s)) ? undefined : s;
      }),
    ).toEqual([]);
  });

  it('gives every token the bytes js-tiktoken decodes it from', () => {
    const utf8 = new TextDecoder(); // js-tiktoken's own settings, so lossy bytes compare equal
    const bad: number[] = [];
    for (let id = 0; id < 50257; id++) {
      if (utf8.decode(tok.tokenBytes(id)) !== oracle.decode([id])) bad.push(id);
    }
    expect(bad.slice(0, 5)).toEqual([]);
  });
});

describe('special tokens', () => {
  it.each([
    ['<|endoftext|>', [50256]],
    ['a<|endoftext|>b', [64, 50256, 65]],
    ['<|endoftext|><|endoftext|>', [50256, 50256]],
  ])('encodes %j with <|endoftext|> as eosId', (text, ids) => {
    expect(tok.encode(text)).toEqual(ids);
    expect(tok.decode(ids)).toBe(text);
  });

  it('encodes <|pad|> in text as ordinary characters, never as padId', () => {
    const ids = tok.encode('x<|pad|> <|pad|>');
    expect(ids).toEqual(oracle.encode('x<|pad|> <|pad|>', 'all'));
    expect(ids).not.toContain(tok.padId);
  });

  it('decodes padId and eosId to their token strings', () => {
    expect(tok.decode([tok.padId])).toBe('<|pad|>');
    expect(tok.decode([tok.eosId, tok.padId, 15496])).toBe('<|endoftext|><|pad|>Hello');
    expect(new TextDecoder().decode(tok.tokenBytes(tok.padId))).toBe('<|pad|>');
  });
});

describe('decode', () => {
  it('decodes [] to the empty string', () => {
    expect(tok.decode([])).toBe('');
  });

  it('keeps spaces before punctuation (no clean-up of " ." or " \'s")', () => {
    const text = "a . b , c 's d n't";
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('replaces bytes that are not UTF-8 with U+FFFD, as js-tiktoken does', () => {
    const ids = [...tok.encode('🤗').slice(0, 1), 64]; // a character cut after its first token
    expect(tok.decode(ids)).toBe(oracle.decode(ids));
    expect(tok.decode(ids)).toContain('\ufffd');
  });

  it('turns a lone surrogate into U+FFFD, as UTF-8 cannot carry it', () => {
    expect(tok.decode(tok.encode('a\ud800b'))).toBe('a\ufffdb');
  });

  it.each([[-1], [50258], [1.5], [Number.NaN]])('rejects token id %s with INVALID_INPUT', (id) => {
    for (const call of [() => tok.decode([1, id]), () => tok.tokenBytes(id)]) {
      let caught: unknown;
      try {
        call();
      } catch (e) {
        caught = e;
      }
      expect(isXlstmError(caught, 'INVALID_INPUT')).toBe(true);
      expect((caught as Error).message).toMatch(/expected an integer in \[0, 50258\), but got .+\. Hint: /);
    }
  });
});

describe('tokenizer.json round trip', () => {
  it('loads its own toJson() into a tokenizer that encodes and decodes identically', () => {
    const copy = Tokenizer.fromJson(tok.toJson());
    expect(copy.vocabSize).toBe(tok.vocabSize);
    expect(copy.toJson()).toBe(tok.toJson());
    expect(copy.decode([copy.padId])).toBe('<|pad|>');
    expect(
      failures((s) => {
        const [a, b] = [tok.encode(s), copy.encode(s)];
        return a.join() === b.join() && copy.decode(b) === s ? undefined : s;
      }),
    ).toEqual([]);
  });

  // Small specs: each breaks one assumption, and fromJson must catch it before anything else goes wrong.
  const special = (id: number, content: string) => ({ id, content, special: true });
  const spec = (change: (s: Record<string, any>) => void = () => {}): string => {
    const s: Record<string, any> = {
      model: { type: 'BPE', vocab: { a: 0 }, merges: [] },
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
      post_processor: null,
      decoder: { type: 'ByteLevel' },
      added_tokens: [special(50256, '<|endoftext|>'), special(50257, '<|pad|>')],
    };
    change(s);
    return JSON.stringify(s);
  };
  it.each([
    ['not JSON', '{"model":', /expected valid JSON/],
    ['a WordPiece model', spec((s) => (s.model.type = 'WordPiece')), /expected model BPE.*but got model WordPiece/],
    ['a normalizer', spec((s) => (s.normalizer = { type: 'NFC' })), /normalizer none, but got .*normalizer NFC/],
    ['no <|pad|>', spec((s) => s.added_tokens.pop()), /expected special added token <\|pad\|> with id 50257, but got none/],
    ['<|endoftext|> moved', spec((s) => (s.added_tokens[0].id = 7)), /<\|endoftext\|> with id 50256, but got id 7/],
    ['a third added token', spec((s) => s.added_tokens.push(special(50258, '<|user|>'))), /only the added tokens .* but got 3/],
    ['<|pad|> not special', spec((s) => (s.added_tokens[1].special = false)), /with id 50257, but got id 50257, special false/],
    ['a gap in the ids', spec(), /a token for every id below 50258, but got none for id 1/],
    ['a token outside the byte alphabet', spec((s) => (s.model.vocab = { 'a b': 0 })), /byte-level characters in token 0, but got "a b"/],
  ])('rejects %s with INVALID_CONFIG', (_name, json, message) => {
    let caught: unknown;
    try {
      Tokenizer.fromJson(json);
    } catch (e) {
      caught = e;
    }
    expect(isXlstmError(caught, 'INVALID_CONFIG')).toBe(true);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).toMatch(/Hint: /);
  });
});
