import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.ts';
import { Utf8Scanner } from '../../src/data/utf8-scanner.ts';

function scan(bytes: Uint8Array, chunk: number) {
  const s = new Utf8Scanner();
  for (let i = 0; i < bytes.length; i += chunk) {
    const issue = s.push(bytes.subarray(i, i + chunk));
    if (issue) return issue;
  }
  return s.end();
}

const strictlyValid = (bytes: Uint8Array): boolean => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
};

/** Independent oracle: the first issue starts where the longest valid prefix ends. */
function oracleOffset(bytes: Uint8Array): number | null {
  if (strictlyValid(bytes)) return null;
  let best = 0;
  for (let k = 0; k <= bytes.length; k++) if (strictlyValid(bytes.subarray(0, k))) best = k;
  return best;
}

describe('Utf8Scanner', () => {
  it.each([
    ['lone continuation byte', [0x41, 0x80, 0x41], 1],
    ['overlong two-byte form', [0x41, 0x42, 0xc0, 0xaf], 2],
    ['UTF-16 surrogate', [0x41, 0xed, 0xa0, 0x80], 1],
    ['code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
    ['character cut by the end of the file', [0x61, 0x62, 0xe2, 0x82], 2],
    ['lead byte followed by ASCII', [0xe2, 0x28, 0xa1], 0],
  ])('reports a %s at byte offset %d', (_name, bytes, offset) => {
    for (const chunk of [1, 2, 64]) expect(scan(Uint8Array.from(bytes), chunk)).toEqual({ kind: 'utf8', offset });
  });

  it('reports the first NUL byte as binary', () => {
    expect(scan(Uint8Array.from([0x68, 0x69, 0x00, 0xff]), 1)).toEqual({ kind: 'nul', offset: 2 });
  });

  it('accepts every character class split across chunks of any size', () => {
    const bytes = new TextEncoder().encode('plain ASCII, é ß, € 中文, 😀 𝄞, end');
    for (let chunk = 1; chunk <= 8; chunk++) expect(scan(bytes, chunk)).toBeNull();
  });

  it('agrees with TextDecoder on validity and with the longest valid prefix on the offset (random bytes)', () => {
    const rng = new Rng(7);
    // Mostly whole characters of every width, sometimes a stray or partial byte sequence.
    const good = ['a', 'é', '€', '中', '😀'].map((c) => Array.from(new TextEncoder().encode(c)));
    const bad = [[0x80], [0xbf], [0xc0], [0xc2], [0xe0, 0x80], [0xe2, 0x82], [0xed, 0xa0], [0xf0, 0x80], [0xf4, 0x90], [0xf5], [0xff]];
    let valid = 0;
    for (let n = 0; n < 3000; n++) {
      const pieces = Array.from({ length: 1 + rng.int(5) }, () => (rng.uniform() < 0.9 ? good[rng.int(good.length)] : bad[rng.int(bad.length)]));
      const bytes = Uint8Array.from(pieces.flat());
      const expected = oracleOffset(bytes);
      const got = scan(bytes, 1 + rng.int(3));
      if (expected === null) valid += 1;
      expect(got === null ? null : got.offset, `bytes ${Array.from(bytes, (b) => b.toString(16)).join(' ')}`).toBe(expected);
    }
    expect(valid).toBeGreaterThan(100);
  });
});
