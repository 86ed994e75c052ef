import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { StopMatcher } from '../../src/serve/index.ts';

/** The oracle: where, in the whole text, the earliest stop string ends (or -1). */
function earliestEnd(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && (best < 0 || at + s.length < best)) best = at + s.length;
  }
  return best;
}

/** Feeds pieces until a stop is found; returns the text kept (up to and including the stop string). */
function streamed(pieces: readonly string[], stops: readonly string[]): string {
  const m = new StopMatcher(stops);
  let out = '';
  for (const p of pieces) {
    const cut = m.feed(p);
    if (cut >= 0) return out + p.slice(0, cut);
    out += p;
  }
  return out;
}

describe('StopMatcher', () => {
  it.each([
    { pieces: ['Hello', ' wor', 'ld!'], stops: ['world'], kept: 'Hello world' },
    { pieces: ['a\n', '\nb'], stops: ['\n\n'], kept: 'a\n\n' },
    { pieces: ['x', 'y', 'z'], stops: ['q'], kept: 'xyz' },
    { pieces: ['abcSTOPdef'], stops: ['STOP', 'cS'], kept: 'abcS' },
    { pieces: ['', 'END'], stops: ['END'], kept: 'END' },
  ])('stops $pieces at $stops keeping $kept', ({ pieces, stops, kept }) => {
    expect(streamed(pieces, stops)).toBe(kept);
  });

  it('finds the same earliest stop as a search of the whole text, however the text is split', () => {
    const alphabet = fc.constantFrom('a', 'b', '\n', 'é', ' ');
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: alphabet, maxLength: 6 }), { maxLength: 12 }),
        fc.array(fc.string({ unit: alphabet, minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
        (pieces, stops) => {
          const whole = pieces.join('');
          const end = earliestEnd(whole, stops);
          expect(streamed(pieces, stops)).toBe(end < 0 ? whole : whole.slice(0, end));
        },
      ),
      { numRuns: 500, seed: 42 },
    );
  });
});
