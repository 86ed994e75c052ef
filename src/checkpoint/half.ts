/** Bit-exact conversions between float32 and the 16-bit float formats of safetensors (F16, BF16). */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * float32 -> IEEE 754 binary16 bits, rounding to nearest with ties to even. Values at or beyond
 * 65520 (65504 plus half an ulp) become infinities, values below 2^-25 become signed zeros, and
 * NaN stays a quiet NaN (its top payload bits kept).
 */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: the 24-bit significand (implicit 1 included) loses 126 - exp bits.
    const shift = 126 - exp;
    if (shift > 24) return sign;
    const full = mant | 0x800000;
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h += 1;
    return sign | h;
  }
  // A carry out of the mantissa correctly bumps the exponent (and reaches 0x7c00 = inf).
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1;
  return sign | h;
}

/** binary16 bits -> float32 bits (exact: every half is a float32). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    let e = 113; // a subnormal m * 2^-24 renormalised: exponent -14 - shifts, biased 127
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e -= 1;
    }
    return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
  }
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
}

let f16Table: Uint32Array | null = null;

/** float32 bit patterns of all 65536 halves, built on first use (256 KiB). */
export function f16ToF32BitsTable(): Uint32Array {
  if (f16Table === null) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** binary16 bits -> the float32 value as a number. */
export function f16BitsToNumber(h: number): number {
  scratchU32[0] = f16ToF32BitsTable()[h & 0xffff];
  return scratchF32[0];
}
