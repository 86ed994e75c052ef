import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  type NamedTensors,
} from '../../src/checkpoint/index.ts';
import { isXlstmError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'xlstm-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A safetensors file assembled by hand, independent of the encoder under test. */
function build(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function bytesOf(values: number[], kind: 'f32' | 'f64' | 'u16'): Uint8Array {
  const size = kind === 'f64' ? 8 : kind === 'f32' ? 4 : 2;
  const view = new DataView(new ArrayBuffer(values.length * size));
  values.forEach((v, i) => {
    if (kind === 'f64') view.setFloat64(8 * i, v, true);
    else if (kind === 'f32') view.setFloat32(4 * i, v, true);
    else view.setUint16(2 * i, v, true);
  });
  return new Uint8Array(view.buffer);
}

async function fileWith(name: string, bytes: Uint8Array): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return file;
}

describe('encode and decode', () => {
  it('round-trips F32 exactly, including -0, infinities and subnormals', () => {
    const rng = new Rng(1);
    const a = new Float32Array(37).map(() => rng.normal());
    a.set([-0, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38], 0);
    const tensors: NamedTensors = new Map([
      ['b.weight', { shape: [37], data: a }],
      ['a.scalar', { shape: [], data: new Float32Array([42.5]) }],
      ['c.empty', { shape: [0, 3], data: new Float32Array(0) }],
    ]);
    const bytes = encodeSafetensors(tensors);
    // The header is space-padded so the data starts on an 8-byte boundary.
    expect(Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true)) % 8).toBe(0);
    const back = decodeSafetensors(bytes, 'mem').tensors;
    expect([...back.keys()].sort()).toEqual(['a.scalar', 'b.weight', 'c.empty']);
    for (const [name, t] of tensors) {
      expect(back.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(back.get(name)!.data).map((v) => Object.is(v, -0) ? '-0' : v)).toEqual(
        Array.from(t.data).map((v) => Object.is(v, -0) ? '-0' : v),
      );
    }
  });

  it('round-trips F16 within half precision: subnormals, infinities, -0 and overflow', () => {
    const values = [1, -2.5, 0.1, 65504, 70000, -1e9, 2 ** -24, 3 * 2 ** -24, 2 ** -26, 1e-3, -0, Infinity, -Infinity, NaN];
    const want = [1, -2.5, 0.0999755859375, 65504, Infinity, -Infinity, 2 ** -24, 3 * 2 ** -24, 0, 0.0010004043579101562, -0, Infinity, -Infinity, NaN];
    const rng = new Rng(2);
    const random = Array.from({ length: 1000 }, () => rng.normal() * 10);
    const data = Float32Array.from([...values, ...random]);
    const bytes = encodeSafetensors(new Map([['x', { shape: [data.length], data }]]), { dtype: 'F16' });
    const { header, tensors } = decodeSafetensors(bytes, 'mem');
    expect(header.tensors.get('x')!.dtype).toBe('F16');
    const got = tensors.get('x')!.data;
    want.forEach((w, i) => {
      if (Number.isNaN(w)) expect(got[i]).toBeNaN();
      else expect(Object.is(got[i], w), `value ${values[i]}: got ${got[i]}, want ${w}`).toBe(true);
    });
    random.forEach((x, i) => {
      // Normal halves: the rounding error is at most half an ulp, 2^-11 relative.
      const y = got[values.length + i];
      expect(Math.abs(y - Math.fround(x))).toBeLessThanOrEqual(Math.abs(Math.fround(x)) * 2 ** -11 + 2 ** -25);
    });
  });

  it('reads BF16 and F64 from hand-built files', async () => {
    const bf16 = [0x3f80, 0xc000, 0x7f80, 0xff80, 0x0001, 0x8000, 0x3eaa, 0x7fc0];
    const f64 = [1 / 3, 1e-50, 1e300, -0, 3.5, -1e-40];
    const bfBytes = bytesOf(bf16, 'u16');
    const f64Bytes = bytesOf(f64, 'f64');
    const data = new Uint8Array(bfBytes.length + f64Bytes.length);
    data.set(f64Bytes, 0);
    data.set(bfBytes, f64Bytes.length);
    const header = {
      __metadata__: { format: 'pt' },
      wide: { dtype: 'F64', shape: [2, 3], data_offsets: [0, 48] },
      brain: { dtype: 'BF16', shape: [8], data_offsets: [48, 64] },
    };
    const file = await fileWith('mixed.safetensors', build(header, data));
    const { tensors, header: h } = await readSafetensors(file);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(tensors.get('wide')!.shape).toEqual([2, 3]);
    expect(Array.from(tensors.get('wide')!.data)).toEqual(f64.map(Math.fround));
    const b = Array.from(tensors.get('brain')!.data);
    expect(b.slice(0, 7)).toEqual([1, -2, Infinity, -Infinity, 2 ** -133, -0, Math.fround(0.33203125)]);
    expect(b[7]).toBeNaN();
  });

  it('reads the header alone without the data', async () => {
    const file = await fileWith('h.safetensors', build({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, bytesOf([1, 2], 'f32')));
    const header = await readSafetensorsHeader(file);
    expect(header.tensors.get('t')).toEqual({ name: 't', dtype: 'F32', shape: [2], begin: 0, end: 8 });
    expect(header.fileSize).toBe(8 + header.headerLength + 8);
  });

  it('refuses to encode data that does not match its shape', () => {
    const bad: NamedTensors = new Map([['x', { shape: [2, 2], data: new Float32Array(3) }]]);
    expect(() => encodeSafetensors(bad)).toThrow(/tensor "x" expected a Float32Array of 4 values for shape \[2,2\], but got 3 values/);
  });
});

// A valid two-tensor file, then one corruption per case.
const A = bytesOf([1, 2, 3, 4, 5, 6], 'f32'); // F32 [2, 3]: 24 bytes
const B = bytesOf([0x3c00, 0x4000, 0x4200, 0x4400], 'u16'); // F16 [4]: 8 bytes
const GOOD_HEADER = {
  a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
  b: { dtype: 'F16', shape: [4], data_offsets: [24, 32] },
};
const GOOD_DATA = new Uint8Array([...A, ...B]);
const good = (): Uint8Array => build(GOOD_HEADER, GOOD_DATA);
const withHeader = (patch: Record<string, unknown>): Uint8Array => build({ ...GOOD_HEADER, ...patch }, GOOD_DATA);
const withLength = (n: bigint): Uint8Array => {
  const bytes = good();
  new DataView(bytes.buffer).setBigUint64(0, n, true);
  return bytes;
};

const CASES: Array<[string, () => Uint8Array, RegExp]> = [
  ['an empty file', () => new Uint8Array(0), /expected at least 8 bytes \(the header length\), but got 0 bytes/],
  ['a 5-byte file', () => new Uint8Array(5), /expected at least 8 bytes \(the header length\), but got 5 bytes/],
  ['a header length beyond the file', () => withLength(10_000n), /header length expected at most \d+ bytes .*but got 10000/],
  ['a huge header length (2^62)', () => withLength(2n ** 62n), /header length expected at most \d+ bytes .*but got 4611686018427387904/],
  ['a header length of 0', () => withLength(0n), /header length expected at least 2 bytes/],
  ['a header that is not UTF-8', () => build(null, GOOD_DATA, '{"a":"\u00ff"}').map((v, i) => (i === 14 ? 0xff : v)), /header expected UTF-8 JSON/],
  ['a header that is not JSON', () => build(null, GOOD_DATA, '{"a": [1, 2'), /header expected valid JSON, but got a parse error/],
  ['a header that is a JSON list', () => build([1, 2], new Uint8Array(0)), /header expected a JSON object, but got \[1,2\]/],
  ['an entry that is not an object', () => withHeader({ b: 7 }), /tensor "b" expected an object \{dtype, shape, data_offsets\}, but got 7/],
  ['an entry with an extra key', () => withHeader({ b: { ...GOOD_HEADER.b, stride: 1 } }), /tensor "b" expected exactly the keys dtype, shape, data_offsets/],
  ['an entry without data_offsets', () => withHeader({ b: { dtype: 'F16', shape: [4] } }), /tensor "b" expected exactly the keys/],
  ['an unknown dtype', () => withHeader({ b: { ...GOOD_HEADER.b, dtype: 'I64' } }), /tensor "b" dtype expected one of F64, F32, F16, BF16, but got "I64"/],
  ['a negative dimension', () => withHeader({ b: { ...GOOD_HEADER.b, shape: [-4] } }), /tensor "b" shape expected a list of integers >= 0, but got \[-4\]/],
  ['a fractional dimension', () => withHeader({ b: { ...GOOD_HEADER.b, shape: [2.5] } }), /tensor "b" shape expected a list of integers >= 0/],
  ['offsets of the wrong length', () => withHeader({ b: { ...GOOD_HEADER.b, data_offsets: [24] } }), /tensor "b" data_offsets expected \[begin, end\]/],
  ['offsets with begin > end', () => withHeader({ b: { ...GOOD_HEADER.b, data_offsets: [32, 24] } }), /tensor "b" data_offsets expected \[begin, end\] with 0 <= begin <= end, but got \[32,24\]/],
  ['a shape that disagrees with the byte length', () => withHeader({ b: { ...GOOD_HEADER.b, shape: [5] } }), /tensor "b" \(F16 \[5\]\) expected 10 bytes, but data_offsets \[24,32\] give 8/],
  ['a dtype that disagrees with the byte length', () => withHeader({ b: { ...GOOD_HEADER.b, dtype: 'F32' } }), /tensor "b" \(F32 \[4\]\) expected 16 bytes/],
  ['overlapping tensors', () => build({ a: GOOD_HEADER.a, b: { dtype: 'F16', shape: [4], data_offsets: [16, 24] } }, GOOD_DATA.subarray(0, 24)), /tensor "b" expected to start at data byte 24 \(where "a" ends\), but it starts at 16, overlapping "a"/],
  ['a gap between tensors', () => build({ a: GOOD_HEADER.a, b: { dtype: 'F16', shape: [4], data_offsets: [28, 36] } }, new Uint8Array(36)), /tensor "b" expected to start at data byte 24 .*but it starts at 28, leaving 4 bytes that no tensor owns/],
  ['data that does not start at 0', () => build({ b: { dtype: 'F16', shape: [4], data_offsets: [8, 16] } }, new Uint8Array(16)), /tensor "b" expected to start at data byte 0 \(the start of the data section\)/],
  ['a truncated file', () => good().subarray(0, good().length - 10), /expected (\d+) bytes \(8 \+ header \d+ \+ data 32\), but the file has \d+ bytes.*truncated/],
  ['trailing bytes', () => new Uint8Array([...good(), 0, 0, 0]), /but the file has \d+ bytes \(3 trailing bytes no tensor owns\)/],
  ['a metadata value that is not a string', () => withHeader({ __metadata__: { step: 3 } }), /header __metadata__ expected a mapping of strings to strings, but got \{"step":3\}/],
];

describe('corrupt files', () => {
  it('accepts the uncorrupted file the cases start from', async () => {
    const file = await fileWith('good.safetensors', good());
    const { tensors } = await readSafetensors(file);
    expect(Array.from(tensors.get('a')!.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(tensors.get('b')!.data)).toEqual([1, 2, 3, 4]);
  });

  it.each(CASES)('rejects %s naming the file and the expectation', async (label, make, expected) => {
    const file = await fileWith(`${label.replace(/\W+/g, '-')}.safetensors`, make());
    for (const read of [readSafetensors, readSafetensorsHeader]) {
      const error = await read(file).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isXlstmError(error, 'CHECKPOINT_CORRUPT'), `${read.name}: ${String(error)}`).toBe(true);
      const message = (error as Error).message;
      expect(message.startsWith(`${file}: `)).toBe(true);
      expect(message).toMatch(expected);
    }
  });

  it('names both byte lengths of a truncated file', async () => {
    const bytes = good();
    const file = await fileWith('cut.safetensors', bytes.subarray(0, bytes.length - 10));
    await expect(readSafetensors(file)).rejects.toThrow(`expected ${bytes.length} bytes`);
    await expect(readSafetensors(file)).rejects.toThrow(`but the file has ${bytes.length - 10} bytes`);
  });

  it('reports a missing file as CHECKPOINT_NOT_FOUND', async () => {
    const error = await readSafetensors(path.join(dir, 'nope.safetensors')).catch((e: unknown) => e);
    expect(isXlstmError(error, 'CHECKPOINT_NOT_FOUND')).toBe(true);
  });
});
