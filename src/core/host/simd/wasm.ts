/**
 * A minimal WebAssembly binary writer for the host kernels' SIMD code: functions over one imported memory,
 * written as nested expressions (each helper returns the bytes that leave its value on the stack).
 * No toolchain is involved: the kernels are generated at start-up, specialised to the model's widths.
 */

export type Code = number[];

export const enum Ty {
  i32 = 0x7f,
  f32 = 0x7d,
  f64 = 0x7c,
  v128 = 0x7b,
}

/** Unsigned LEB128, as the binary format writes indices and sizes. */
export function uleb(n: number): Code {
  const out: Code = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): Code {
  const out: Code = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const f32Bytes = (x: number): Code => Array.from(new Uint8Array(Float32Array.of(x).buffer));
const cat = (...parts: Code[]): Code => parts.flat();

/** One function: its signature, its locals (after the parameters) and its body. */
export class Fn {
  readonly locals: Ty[] = [];
  body: Code = [];

  constructor(
    readonly name: string,
    readonly params: readonly Ty[],
    readonly results: readonly Ty[],
  ) {}

  /** A new local of type `t`; its index. */
  local(t: Ty): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }
}

/** The largest memory a module may import: all of wasm32's 4 GiB, in 64 KiB pages. */
const MAX_PAGES = 65536;

/**
 * The module: every function exported under its name, memory imported as env.memory. With `shared`, the import
 * is a shared memory (limits flag 3, which requires a maximum), as threads that work in one memory need.
 */
export function moduleBytes(fns: readonly Fn[], options: { shared?: boolean } = {}): Uint8Array<ArrayBuffer> {
  const section = (id: number, items: Code[]): Code => {
    const body = cat(uleb(items.length), ...items);
    return cat([id], uleb(body.length), body);
  };
  const types = fns.map((f) => cat([0x60], uleb(f.params.length), [...f.params], uleb(f.results.length), [...f.results]));
  const name = (s: string): Code => {
    const bytes = Array.from(new TextEncoder().encode(s));
    return cat(uleb(bytes.length), bytes);
  };
  const limits = options.shared ? cat([0x03], uleb(1), uleb(MAX_PAGES)) : cat([0x00], uleb(1));
  const memoryImport = cat(name('env'), name('memory'), [0x02], limits);
  const code = fns.map((f) => {
    const locals = f.locals.map((t) => cat(uleb(1), [t]));
    const body = cat(uleb(locals.length), ...locals, f.body, [0x0b]);
    return cat(uleb(body.length), body);
  });
  return Uint8Array.from(
    cat(
      [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
      section(1, types),
      section(2, [memoryImport]),
      section(3, fns.map((_, i) => uleb(i))),
      section(7, fns.map((f, i) => cat(name(f.name), [0x00], uleb(i)))),
      section(10, code),
    ),
  );
}

// ---- scalar instructions

export const get = (l: number): Code => cat([0x20], uleb(l));
export const set = (l: number, v: Code): Code => cat(v, [0x21], uleb(l));
export const i32 = (n: number): Code => cat([0x41], sleb(n | 0));
export const f32 = (x: number): Code => cat([0x43], f32Bytes(x));
export const bin = (op: number) => (a: Code, b: Code): Code => cat(a, b, [op]);
export const un = (op: number) => (a: Code): Code => cat(a, [op]);
export const add = bin(0x6a);
export const sub = bin(0x6b);
export const mul = bin(0x6c);
export const geS = bin(0x4e);
export const fadd = bin(0x92);
export const fdiv = bin(0x95);
export const fmax = bin(0x97);
export const shl = bin(0x74);
export const fabs = un(0x8b);
export const fsqrt = un(0x91);
export const ret = (v: Code): Code => cat(v, [0x0f]);

/** f32 at address a + offset (bytes); a 4-byte alignment hint. */
export const fload = (a: Code, offset = 0): Code => cat(a, [0x2a, 0x02], uleb(offset));
export const fstore = (a: Code, v: Code, offset = 0): Code => cat(a, v, [0x38, 0x02], uleb(offset));

/** `for (l = from; l < to; l += step) body`, with `to` evaluated on every pass. */
export function loop(l: number, from: Code, to: Code, step: number, body: Code): Code {
  // block { loop { br_if 1 (l >= to); body; l += step; br 0 } }
  const exit = cat(geS(get(l), to), [0x0d], uleb(1));
  const next = cat(set(l, add(get(l), i32(step))), [0x0c], uleb(0));
  return cat(set(l, from), [0x02, 0x40, 0x03, 0x40], exit, body, next, [0x0b, 0x0b]);
}

/** `if (cond) then` */
export const when = (cond: Code, then: Code): Code => cat(cond, [0x04, 0x40], then, [0x0b]);

// ---- SIMD instructions (0xfd prefix)

export const simd = (op: number): Code => cat([0xfd], uleb(op));
export const vbin = (op: number) => (a: Code, b: Code): Code => cat(a, b, simd(op));
export const vun = (op: number) => (a: Code): Code => cat(a, simd(op));

/** 16 bytes at a + offset; a 4-byte alignment hint (float32 rows need not be 16-byte aligned). */
export const vload = (a: Code, offset = 0): Code => cat(a, simd(0x00), [0x02], uleb(offset));
export const vstore = (a: Code, v: Code, offset = 0): Code => cat(a, v, simd(0x0b), [0x02], uleb(offset));
/** The f32 at a + offset in all four lanes (one broadcast load, where f32.load then splat takes a load and a shuffle). */
export const vloadSplat = (a: Code, offset = 0): Code => cat(a, simd(0x09), [0x02], uleb(offset));
export const vconst = (x: number): Code => cat(simd(0x0c), f32Bytes(x), f32Bytes(x), f32Bytes(x), f32Bytes(x));
/** Four lanes of the 32-bit pattern `bits`. */
export const vbits = (bits: number): Code => {
  const b = Array.from(new Uint8Array(Uint32Array.of(bits >>> 0).buffer));
  return cat(simd(0x0c), b, b, b, b);
};
/** Bits of a where mask is set, of b elsewhere. */
export const vselect = (a: Code, b: Code, mask: Code): Code => cat(a, b, mask, simd(0x52));
export const splat = vun(0x13);
export const lane = (v: Code, i: number): Code => cat(v, simd(0x1f), [i]);
/** v with lane i replaced by the f32 x. */
export const replaceLane = (v: Code, i: number, x: Code): Code => cat(v, x, simd(0x20), [i]);
/** Byte shuffle of two vectors: lanes[k] picks byte k of the result from the 32 bytes of (a, b). */
export const shuffle = (a: Code, b: Code, lanes: number[]): Code => cat(a, b, simd(0x0d), lanes);
export const anyTrue = vun(0x53);
export const vadd = vbin(0xe4);
export const vsub = vbin(0xe5);
export const vmul = vbin(0xe6);
export const vdiv = vbin(0xe7);
export const vsqrt = vun(0xe3);
export const f32x4Neg = vun(0xe1);
export const vabs = vun(0xe0);
/** pmin(a, b) = b < a ? b : a; pmax(a, b) = a < b ? b : a (NaN in b is never taken). */
export const vpmin = vbin(0xea);
export const vpmax = vbin(0xeb);
/** IEEE min/max per lane (NaN in either gives NaN), as Math.min and Math.max. */
export const vmin = vbin(0xe8);
export const vmax = vbin(0xe9);
export const veq = vbin(0x41);
export const vlt = vbin(0x43);
export const i32x4Add = vbin(0xae);
export const i32x4Shl = (a: Code, bits: number): Code => cat(a, i32(bits), simd(0xab));
export const i32x4Splat = (n: number): Code => cat(i32(n), simd(0x11));
export const f64x2Promote = vun(0x5f);
export const f64x2Add = vbin(0xf0);
export const f64Lane = (v: Code, i: number): Code => cat(v, simd(0x21), [i]);
