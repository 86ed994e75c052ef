import { describe, expect, it } from 'vitest';
import { f16BitsToNumber, f32ToF16Bits } from '../../src/checkpoint/half.ts';
import { Rng } from '../../src/util/rng.ts';

// Independent oracle: a half's value from the IEEE 754 definition, and the correctly rounded half
// of a float32 found by searching the sorted list of all finite halves (exact in float64).
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m !== 0 ? NaN : sign * Infinity;
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}
const FINITE = Array.from({ length: 0x7c00 }, (_, h) => halfValue(h)); // ascending

function nearestHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65504 + half an ulp ties to the odd-mantissa side -> inf
  let lo = 0;
  let hi = FINITE.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (FINITE[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  if (FINITE[lo] === a || lo === FINITE.length - 1) return sign | lo;
  const midpoint = (FINITE[lo] + FINITE[lo + 1]) / 2;
  if (a < midpoint) return sign | lo;
  if (a > midpoint) return sign | (lo + 1);
  return sign | (lo % 2 === 0 ? lo : lo + 1);
}

const fromBits = (bits: number): number => new Float32Array(new Uint32Array([bits]).buffer)[0];

describe('float32 -> float16', () => {
  const edge = [
    0, -0, 1, -1, 65504, 65505, 65519.99, 65520, -65520, 1e6, Infinity, -Infinity,
    2 ** -14, 2 ** -14 - 2 ** -25, 2 ** -24, 2 ** -25, 2 ** -25 + 2 ** -40, 3 * 2 ** -25, 2 ** -26, 1e-10,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2049, 2051, 0.1, 1 / 3,
    fromBits(0x00000001), fromBits(0x007fffff), fromBits(0x7f7fffff),
  ].map(Math.fround);

  it.each(edge)('rounds %s to nearest even', (x) => {
    expect(f32ToF16Bits(x)).toBe(nearestHalf(x));
  });

  it('agrees with the oracle on 200k random float32 bit patterns and near-boundary values', () => {
    const rng = new Rng(7);
    const mismatches: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      // Half of the draws are confined to the half-precision range, where rounding matters.
      const bits = i % 2 === 0 ? rng.nextUint32() : (rng.nextUint32() & 0x807fffff) | ((98 + rng.int(48)) << 23);
      const x = fromBits(bits >>> 0);
      if (Number.isNaN(x)) continue;
      if (f32ToF16Bits(x) !== nearestHalf(x)) mismatches.push(`${x} (${(bits >>> 0).toString(16)})`);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  it('keeps NaN a NaN with its sign', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xffc00000, 0x7f802000]) {
      const h = f32ToF16Bits(fromBits(bits));
      expect((h >> 10) & 31).toBe(31);
      expect(h & 1023).not.toBe(0);
      expect(h & 0x8000).toBe(bits >>> 31 ? 0x8000 : 0);
    }
  });
});

describe('float16 -> float32', () => {
  it('decodes all 65536 halves exactly', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const want = halfValue(h);
      const got = f16BitsToNumber(h);
      if (Number.isNaN(want) ? !Number.isNaN(got) : !Object.is(got, want)) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('round-trips every non-NaN half through float32', () => {
    for (let h = 0; h < 65536; h++) {
      if (((h >> 10) & 31) === 31 && (h & 1023) !== 0) continue;
      if (f32ToF16Bits(f16BitsToNumber(h)) !== h) throw new Error(`half ${h.toString(16)} did not round-trip`);
    }
  });
});
