import * as hf from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';

import { byteLevelToBytesInto } from '../../src/tokenizer/byte-level.ts';

/** Our reading of one token, as an array, or null when it is not byte-level. */
function toBytes(token: string): number[] | null {
  const out = new Uint8Array(token.length);
  const n = byteLevelToBytesInto(token, out, 0);
  return n < 0 ? null : [...out.subarray(0, n)];
}

describe('byteLevelToBytesInto', () => {
  // The oracle: @huggingface/tokenizers' own byte decoder table, an independent copy of GPT-2's bytes_to_unicode.
  // The package's typings do not resolve under NodeNext (extensionless re-exports), hence the cast.
  const { ByteLevelDecoder } = hf as unknown as {
    ByteLevelDecoder: new (config: { type: 'ByteLevel' }) => { byte_decoder: Record<string, string | number> };
  };
  const table = new ByteLevelDecoder({ type: 'ByteLevel' }).byte_decoder;

  it('maps all 256 characters of the alphabet to the bytes the library maps them to', () => {
    const chars = Object.keys(table);
    expect(chars).toHaveLength(256);
    // The library's values are numeric strings despite its typings (it inverts an object), hence Number().
    expect(chars.filter((c) => toBytes(c)?.[0] !== Number(table[c]))).toEqual([]);
    expect(new Set(chars.map((c) => toBytes(c)?.[0])).size).toBe(256);
  });

  it('spells printable bytes as themselves and moves space and controls above U+00FF', () => {
    expect(toBytes('Hello!')).toEqual([...Buffer.from('Hello!')]);
    expect(toBytes('\u0120world')).toEqual([0x20, ...Buffer.from('world')]); // Ġ is the space
    expect(toBytes('\u0100\u010a\u0143')).toEqual([0x00, 0x0a, 0xad]); // NUL, LF, soft hyphen
  });

  it.each([' ', '\n', '\u00ad', '\u0144', '日', 'ab c'])('rejects %j, which is outside the alphabet', (token) => {
    expect(toBytes(token)).toBeNull();
  });

  it('writes at the offset it is given', () => {
    const out = new Uint8Array(4);
    expect(byteLevelToBytesInto('ab', out, 2)).toBe(2);
    expect([...out]).toEqual([0, 0, 0x61, 0x62]);
  });
});
