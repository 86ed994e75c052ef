import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';

import { buildGpt2TokenizerJson } from '../../src/tokenizer/index.ts';

describe('buildGpt2TokenizerJson', () => {
  const json = buildGpt2TokenizerJson();
  const spec = JSON.parse(json);

  it('is built once and then served from memory', () => {
    expect(buildGpt2TokenizerJson()).toBe(json);
  });

  it("holds GPT-2's 50257 tokens and 50000 merges, the header line of vocab.bpe left out", () => {
    expect(Object.keys(spec.model.vocab)).toHaveLength(50257);
    expect(spec.model.merges).toHaveLength(50000);
    // vocab.bpe line 2 is the first merge, "Ġ t" (space + t); no merge is the "#version: 0.2" header.
    expect(spec.model.merges[0]).toBe('Ġ t');
    expect(spec.model.merges.filter((m: string) => m.startsWith('#version'))).toEqual([]);
  });

  it('orders merges by rank: merge i produces token 256 + i', () => {
    // GPT-2's vocabulary is the 256 byte tokens followed by one token per merge, in merge order.
    const misplaced = spec.model.merges
      .map((m: string, i: number) => [m, i] as const)
      .filter(([m, i]: readonly [string, number]) => spec.model.vocab[m.replace(' ', '')] !== 256 + i);
    expect(misplaced.slice(0, 3)).toEqual([]);
  });

  it('declares <|endoftext|> 50256 and <|pad|> 50257 as special added tokens, and byte-level parts with GPT-2 settings', () => {
    expect(spec.added_tokens.map((t: { id: number; content: string; special: boolean }) => [t.id, t.content, t.special])).toEqual([
      [50256, '<|endoftext|>', true],
      [50257, '<|pad|>', true],
    ]);
    expect(spec.model.vocab['<|endoftext|>']).toBe(50256);
    expect(spec.model.type).toBe('BPE');
    expect(spec.normalizer).toBeNull();
    expect(spec.pre_tokenizer).toMatchObject({ type: 'ByteLevel', add_prefix_space: false, use_regex: true });
    expect(spec.decoder.type).toBe('ByteLevel');
  });

  it('loads in @huggingface/tokenizers and gives the well-known GPT-2 ids', () => {
    const hf = new HfTokenizer(spec, {});
    // GPT-2: "Hello" = 15496, " world" = 995, <|endoftext|> = 50256.
    expect(hf.encode('Hello world<|endoftext|>').ids).toEqual([15496, 995, 50256]);
    expect(hf.token_to_id('<|pad|>')).toBe(50257);
  });
});
