/**
 * The safetensors format: an unsigned 64-bit little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`, then the
 * tensor bytes (offsets relative to the end of the header), little-endian and row-major.
 * Everything read is checked; every failure is CHECKPOINT_CORRUPT naming the file.
 */
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { XlstmError } from '../util/errors.ts';
import { f16ToF32BitsTable, f32ToF16Bits } from './half.ts';

/** Tensors as they cross the checkpoint layer: row-major float32 data with a PyTorch-layout shape. */
export type NamedTensors = Map<string, { shape: number[]; data: Float32Array }>;

export type TensorDtype = 'F64' | 'F32' | 'F16' | 'BF16';
export type WriteDtype = 'F32' | 'F16';

export const DTYPE_BYTES: Readonly<Record<TensorDtype, number>> = Object.freeze({ F64: 8, F32: 4, F16: 2, BF16: 2 });
const READABLE = Object.keys(DTYPE_BYTES) as TensorDtype[];

export interface TensorEntry {
  readonly name: string;
  readonly dtype: TensorDtype;
  readonly shape: readonly number[];
  /** Byte range inside the data section (after the header). */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly file: string;
  /** N, the JSON header's byte length; the data section starts at byte 8 + N. */
  readonly headerLength: number;
  readonly fileSize: number;
  /** Entries in the header's own order. */
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  readonly metadata: Readonly<Record<string, string>>;
}

// The format's own reader refuses headers above 100 MB; a larger length means a damaged file.
const MAX_HEADER_BYTES = 100_000_000;
const ENTRY_KEYS = ['dtype', 'shape', 'data_offsets'];

function corrupt(file: string, message: string): XlstmError {
  return new XlstmError('CHECKPOINT_CORRUPT', `${file}: ${message}`);
}

const TRUNCATED_HINT = 'Hint: the file is truncated or is not a safetensors file; save or copy it again.';

/** Validates the 8-byte length prefix against the file size before anything is allocated for the header. */
export function headerLengthOf(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw corrupt(file, `expected at least 8 bytes (the header length), but got ${fileSize} bytes. ${TRUNCATED_HINT}`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  const room = fileSize - 8;
  if (n > BigInt(room) || n > BigInt(MAX_HEADER_BYTES)) {
    throw corrupt(
      file,
      `header length expected at most ${Math.min(room, MAX_HEADER_BYTES)} bytes (file size ${fileSize} minus 8), but got ${n}. ${TRUNCATED_HINT}`,
    );
  }
  if (n < 2n) throw corrupt(file, `header length expected at least 2 bytes (a JSON object), but got ${n}. ${TRUNCATED_HINT}`);
  return Number(n);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const show = (v: unknown): string => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/** Parses and checks the JSON header; `fileSize` lets it prove the data section is exactly covered. */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerLength = headerBytes.byteLength;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw corrupt(file, `header expected UTF-8 JSON, but got bytes that are not UTF-8. ${TRUNCATED_HINT}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `header expected valid JSON, but got a parse error (${(e as Error).message}). ${TRUNCATED_HINT}`);
  }
  if (!isPlainObject(json)) throw corrupt(file, `header expected a JSON object, but got ${show(json)}.`);

  let metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, info] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(info, file);
      continue;
    }
    entries.push(checkEntry(name, info, file));
  }

  // The data section must be covered exactly once: sorted by offset, each tensor starts where the previous ends.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: TensorEntry | null = null;
  for (const t of byOffset) {
    if (t.begin !== covered) {
      const after = previous ? `where "${previous.name}" ends` : 'the start of the data section';
      const problem = t.begin < covered ? `overlapping "${previous?.name}"` : `leaving ${t.begin - covered} bytes that no tensor owns`;
      throw corrupt(file, `tensor "${t.name}" expected to start at data byte ${covered} (${after}), but it starts at ${t.begin}, ${problem}.`);
    }
    covered = t.end;
    previous = t;
  }
  const expectedSize = 8 + headerLength + covered;
  if (fileSize < expectedSize) {
    throw corrupt(
      file,
      `expected ${expectedSize} bytes (8 + header ${headerLength} + data ${covered}), but the file has ${fileSize} bytes. ${TRUNCATED_HINT}`,
    );
  }
  if (fileSize > expectedSize) {
    throw corrupt(
      file,
      `expected ${expectedSize} bytes (8 + header ${headerLength} + data ${covered}), but the file has ${fileSize} bytes (${fileSize - expectedSize} trailing bytes no tensor owns). Hint: the file was damaged or appended to; save it again.`,
    );
  }
  return Object.freeze({
    file,
    headerLength,
    fileSize,
    tensors: new Map(entries.map((t) => [t.name, t])),
    metadata: Object.freeze(metadata),
  });
}

function checkMetadata(info: unknown, file: string): Record<string, string> {
  if (info === null) return {};
  if (!isPlainObject(info) || !Object.values(info).every((v) => typeof v === 'string')) {
    throw corrupt(file, `header __metadata__ expected a mapping of strings to strings, but got ${show(info)}.`);
  }
  return { ...(info as Record<string, string>) };
}

function checkEntry(name: string, info: unknown, file: string): TensorEntry {
  const where = `tensor "${name}"`;
  if (!isPlainObject(info)) throw corrupt(file, `${where} expected an object {dtype, shape, data_offsets}, but got ${show(info)}.`);
  const extra = Object.keys(info).filter((k) => !ENTRY_KEYS.includes(k));
  const missing = ENTRY_KEYS.filter((k) => !(k in info));
  if (extra.length > 0 || missing.length > 0) {
    throw corrupt(file, `${where} expected exactly the keys ${ENTRY_KEYS.join(', ')}, but got ${show(Object.keys(info))}.`);
  }
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string' || !(READABLE as string[]).includes(dtype)) {
    throw corrupt(file, `${where} dtype expected one of ${READABLE.join(', ')}, but got ${show(dtype)}.`);
  }
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw corrupt(file, `${where} shape expected a list of integers >= 0, but got ${show(shape)}.`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((n) => Number.isSafeInteger(n) && n >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw corrupt(file, `${where} data_offsets expected [begin, end] with 0 <= begin <= end, but got ${show(offsets)}.`);
  }
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const bytes = count * DTYPE_BYTES[dtype as TensorDtype];
  const [begin, end] = offsets as [number, number];
  if (!Number.isSafeInteger(bytes) || end - begin !== bytes) {
    throw corrupt(
      file,
      `${where} (${dtype} ${show(shape)}) expected ${bytes} bytes, but data_offsets ${show(offsets)} give ${end - begin}.`,
    );
  }
  return Object.freeze({ name, dtype: dtype as TensorDtype, shape: Object.freeze([...(shape as number[])]), begin, end });
}

/** Decodes one tensor from the whole file's bytes, widening F16/BF16 exactly and rounding F64 to float32. */
export function decodeTensor(bytes: Uint8Array, header: SafetensorsHeader, entry: TensorEntry): Float32Array {
  const start = 8 + header.headerLength + entry.begin;
  const count = (entry.end - entry.begin) / DTYPE_BYTES[entry.dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, entry.end - entry.begin);
  const out = new Float32Array(count);
  switch (entry.dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16': {
      // Write bit patterns through an integer view: no float round trip that could touch NaN payloads.
      const table = f16ToF32BitsTable();
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = table[view.getUint16(2 * i, true)];
      break;
    }
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
  }
  return out;
}

/** A parsed file: checked header and every tensor as float32. */
export interface SafetensorsFile {
  readonly header: SafetensorsHeader;
  readonly tensors: NamedTensors;
}

/** Decodes a whole file held in memory. */
export function decodeSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const n = headerLengthOf(bytes.subarray(0, 8), bytes.byteLength, file);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.byteLength, file);
  const tensors: NamedTensors = new Map();
  for (const entry of header.tensors.values()) {
    tensors.set(entry.name, { shape: [...entry.shape], data: decodeTensor(bytes, header, entry) });
  }
  return { header, tensors };
}

function notFound(file: string, e: unknown): never {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new XlstmError('CHECKPOINT_NOT_FOUND', `${file} expected to exist, but it does not.`, { cause: e });
  }
  throw e;
}

/** Reads only the header: 8 bytes, then N bytes once N is known to fit the file. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await open(file, 'r').catch((e: unknown) => notFound(file, e));
  try {
    const { size } = await fh.stat();
    const prefix = new Uint8Array(8);
    const got = (await fh.read(prefix, 0, 8, 0)).bytesRead;
    const n = headerLengthOf(prefix.subarray(0, got), size, file);
    const headerBytes = new Uint8Array(n);
    await fh.read(headerBytes, 0, n, 8);
    return parseHeader(headerBytes, size, file);
  } finally {
    await fh.close();
  }
}

/** Reads and decodes a whole file. */
export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  // Stat first so a directory or a missing file fails clearly before reading.
  await stat(file).catch((e: unknown) => notFound(file, e));
  return decodeSafetensors(await readFile(file), file);
}

export interface EncodeOptions {
  /** Storage type of every tensor (default F32). F16 rounds to nearest even; overflow becomes infinity. */
  readonly dtype?: WriteDtype;
  /** String metadata; defaults to {format: 'pt'}, which PyTorch-side loaders expect. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Encodes tensors, sorted by name, into one buffer; the header is space-padded so data starts 8-byte aligned. */
export function encodeSafetensors(tensors: NamedTensors, options: EncodeOptions = {}): Buffer {
  const dtype = options.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') {
    throw new XlstmError('INVALID_INPUT', `safetensors dtype expected F32 or F16, but got ${show(dtype)}.`);
  }
  const size = DTYPE_BYTES[dtype];
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const name of names) {
    const { shape, data } = tensors.get(name)!;
    checkTensorInput(name, shape, data);
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + data.length * size] };
    offset += data.length * size;
  }
  header.__metadata__ = { ...(options.metadata ?? { format: 'pt' }) };
  let json = Buffer.from(JSON.stringify(header), 'utf-8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);

  const out = Buffer.allocUnsafe(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  const view = new DataView(out.buffer, out.byteOffset + 8 + json.length, offset);
  let at = 0;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    if (dtype === 'F32') {
      for (let i = 0; i < data.length; i++, at += 4) view.setFloat32(at, data[i], true);
    } else {
      for (let i = 0; i < data.length; i++, at += 2) view.setUint16(at, f32ToF16Bits(data[i]), true);
    }
  }
  return out;
}

function checkTensorInput(name: string, shape: readonly number[], data: unknown): void {
  if (name === '' || name === '__metadata__') {
    throw new XlstmError('INVALID_INPUT', `tensor name expected a non-empty name other than __metadata__, but got ${show(name)}.`);
  }
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new XlstmError('INVALID_INPUT', `tensor "${name}" shape expected a list of integers >= 0, but got ${show(shape)}.`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (!(data instanceof Float32Array) || data.length !== count) {
    const got = data instanceof Float32Array ? `${data.length} values` : `a ${(data as object)?.constructor?.name ?? typeof data}`;
    throw new XlstmError(
      'INVALID_INPUT',
      `tensor "${name}" expected a Float32Array of ${count} values for shape ${show(shape)}, but got ${got}.`,
    );
  }
}

/** Writes one file (not atomic: checkpoint folders get their atomicity from folder.ts). */
export async function writeSafetensors(file: string, tensors: NamedTensors, options: EncodeOptions = {}): Promise<void> {
  await writeFile(file, encodeSafetensors(tensors, options));
}
