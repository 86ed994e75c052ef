/**
 * The instructions the sampling kernels need beyond wasm.ts: lane masks and comparisons, lane extraction,
 * float64 and int32 scalars, and a while loop; each helper returns the bytes that leave its value on the stack.
 */
import { bin, shuffle, simd, uleb, un, vbin, vun, type Code } from './wasm.ts';

// ---- float32x4 comparisons: all-ones lanes where true (NaN compares false)

export const vgt = vbin(0x44);
export const vge = vbin(0x46);

// ---- lane masks and int32x4

export const vand = vbin(0x4e);
export const vor = vbin(0x50);
export const i32x4Eq = vbin(0x37);
export const i32x4LeS = vbin(0x3d);
export const i32x4GtS = vbin(0x3b);
export const i32x4SplatOf = vun(0x11);
export const i32x4Add = vbin(0xae);
/** Bit i set when lane i's sign bit is (so, of a comparison's mask, when lane i compared true). */
export const i32x4Bitmask = vun(0xa4);
export const i32Lane = (v: Code, i: number): Code => [...v, ...simd(0x1b), i];

// ---- scalars

export const f64 = (x: number): Code => [0x44, ...new Uint8Array(Float64Array.of(x).buffer)];
export const dload = (a: Code, offset = 0): Code => [...a, 0x2b, 0x03, ...uleb(offset)];
export const dstore = (a: Code, v: Code, offset = 0): Code => [...a, ...v, 0x39, 0x03, ...uleb(offset)];
export const dadd = bin(0xa0);
export const promote = un(0xbb);
export const istore = (a: Code, v: Code, offset = 0): Code => [...a, ...v, 0x36, 0x02, ...uleb(offset)];
export const iand = bin(0x71);
export const ieq = bin(0x46);
export const ishrU = bin(0x76);
export const ictz = un(0x68);
export const igtS = bin(0x4a);

/** `while (cond) body`, with cond evaluated before every pass. */
export const whileDo = (cond: Code, body: Code): Code => [0x02, 0x40, 0x03, 0x40, ...cond, 0x45, 0x0d, 0x01, ...body, 0x0c, 0x00, 0x0b, 0x0b];

// ---- float64x2 halves of a float32x4

export const f32x4Demote = vun(0x5e);
/** Lanes 2 and 3 of v moved to lanes 0 and 1, for f64x2Promote (which reads the low two). */
export const highPair = (v: Code): Code => shuffle(v, v, [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]);
/** Two f64x2 rounded to float32 as one f32x4: lanes 0, 1 of each demoted half (demote zeroes lanes 2, 3). */
export const joinPairs = (lo: Code, hi: Code): Code => shuffle(f32x4Demote(lo), f32x4Demote(hi), [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
