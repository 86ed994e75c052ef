/** Streaming read of a text dataset (TinyStories-style plain text or JSONL) into documents, with up-front validation. */
import { open, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { XlstmError } from '../util/errors.ts';
import { Utf8Scanner, type ScanIssue } from './utf8-scanner.ts';

/** Separates documents in plain-text files (the TinyStories layout). */
export const DOCUMENT_SEPARATOR = '<|endoftext|>';

export const SPLITS = ['train', 'valid', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];
export type TextFormat = 'text' | 'jsonl';

const FORMATS: Readonly<Record<string, TextFormat>> = { '.txt': 'text', '.jsonl': 'jsonl' };

export interface DatasetFile {
  readonly split: SplitName;
  readonly path: string;
  readonly format: TextFormat;
}

/** Which file holds which split; `train` is required, the others optional. */
export interface DatasetLayout {
  readonly root: string;
  readonly train: DatasetFile;
  readonly valid: DatasetFile | null;
  readonly test: DatasetFile | null;
}

export interface ReadOptions {
  /** Bytes read from disk at a time (the config's data.read_chunk). */
  readonly readChunk: number;
}

export interface FileSummary extends DatasetFile {
  readonly bytes: number;
  readonly documents: number;
}

const invalid = (message: string): XlstmError => new XlstmError('INVALID_INPUT', message);

/**
 * Finds the split files under `root`: `train`, `valid` and `test` with the extension .txt or
 * .jsonl. A root that is itself a .txt or .jsonl file is a dataset with a train split only.
 */
export async function resolveDataset(root: string): Promise<DatasetLayout> {
  const info = await stat(root).catch(() => null);
  if (info === null) {
    throw invalid(`dataset root ${root} expected to exist, but got nothing at that path. Hint: check data.root.`);
  }
  if (info.isFile()) {
    return { root, train: { split: 'train', path: root, format: formatOf(root) }, valid: null, test: null };
  }
  const names = await readdir(root);
  const found: Partial<Record<SplitName, DatasetFile>> = {};
  for (const split of SPLITS) {
    const matches = Object.keys(FORMATS).map((ext) => split + ext).filter((n) => names.includes(n));
    if (matches.length > 1) {
      throw invalid(
        `dataset ${root} expected one file for the ${split} split, but got ${matches.join(' and ')}. Hint: keep only one of them.`,
      );
    }
    if (matches.length === 1) {
      const path = join(root, matches[0]);
      found[split] = { split, path, format: formatOf(path) };
    }
  }
  if (!found.train) {
    throw invalid(
      `dataset ${root} expected train.txt or train.jsonl, but got ${names.length ? names.slice(0, 10).join(', ') : 'an empty folder'}. ` +
        'Hint: name the files train.txt and valid.txt (documents separated by <|endoftext|>) or train.jsonl with a "text" field.',
    );
  }
  return { root, train: found.train, valid: found.valid ?? null, test: found.test ?? null };
}

function formatOf(path: string): TextFormat {
  const format = FORMATS[extname(path).toLowerCase()];
  if (!format) {
    throw invalid(`dataset file ${path} expected the extension .txt or .jsonl, but got "${extname(path)}".`);
  }
  return format;
}

/**
 * Reads every file of the dataset once, before any training: missing, empty, binary (NUL bytes),
 * non-UTF-8 and malformed JSONL files fail here, naming the file and the byte offset.
 */
export async function validateDataset(root: string, options: ReadOptions): Promise<{ layout: DatasetLayout; files: FileSummary[] }> {
  const layout = await resolveDataset(root);
  const files: FileSummary[] = [];
  for (const file of [layout.train, layout.valid, layout.test]) {
    if (file === null) continue;
    let documents = 0;
    for await (const _ of readDocuments(file, options)) documents += 1;
    if (documents === 0) {
      throw invalid(`dataset file ${file.path} expected at least one document, but got only whitespace or empty documents.`);
    }
    files.push({ ...file, bytes: (await stat(file.path)).size, documents });
  }
  return { layout, files };
}

/** The documents of one file, in order, trimmed of surrounding whitespace; empty documents are skipped. */
export function readDocuments(file: DatasetFile, options: ReadOptions): AsyncGenerator<string> {
  return file.format === 'text' ? textDocuments(file.path, options) : jsonlDocuments(file.path, options);
}

async function* textDocuments(path: string, options: ReadOptions): AsyncGenerator<string> {
  // The current document is kept as pieces and each chunk is searched once, so a long document
  // costs linear time; `carry` holds the chunk's last characters, where a separator cut by the
  // chunk boundary begins.
  const pieces: string[] = [];
  let carry = '';
  for await (const text of decodedChunks(path, options)) {
    const s = carry + text;
    let start = 0;
    for (let at = s.indexOf(DOCUMENT_SEPARATOR); at >= 0; at = s.indexOf(DOCUMENT_SEPARATOR, start)) {
      pieces.push(s.slice(start, at));
      const doc = pieces.join('').trim();
      pieces.length = 0;
      if (doc) yield doc;
      start = at + DOCUMENT_SEPARATOR.length;
    }
    const keep = Math.max(start, s.length - (DOCUMENT_SEPARATOR.length - 1));
    pieces.push(s.slice(start, keep));
    carry = s.slice(keep);
  }
  pieces.push(carry);
  const last = pieces.join('').trim();
  if (last) yield last;
}

async function* jsonlDocuments(path: string, options: ReadOptions): AsyncGenerator<string> {
  let line = 0;
  let lineOffset = 0;
  const parse = (rawLine: string): string | null => {
    let raw = rawLine;
    line += 1;
    const offset = lineOffset;
    lineOffset += Buffer.byteLength(rawLine) + 1;
    // The decoder keeps a byte-order mark so that offsets stay exact; JSON.parse would reject it.
    if (line === 1 && raw.startsWith('\uFEFF')) raw = raw.slice(1);
    if (raw.trim() === '') return null;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw invalid(`${path} line ${line} (byte offset ${offset}) expected a JSON object, but got invalid JSON: ${(e as Error).message}.`);
    }
    const text = typeof value === 'object' && value !== null ? (value as { text?: unknown }).text : undefined;
    if (typeof text !== 'string') {
      throw invalid(
        `${path} line ${line} (byte offset ${offset}) expected an object with a string field "text", but got ${describe(value)}. ` +
          'Hint: every JSONL line needs {"text": "..."}.',
      );
    }
    return text.trim() || null;
  };
  const pieces: string[] = [];
  for await (const text of decodedChunks(path, options)) {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      pieces.push(text.slice(start, nl));
      const doc = parse(pieces.join(''));
      pieces.length = 0;
      if (doc) yield doc;
      start = nl + 1;
    }
    pieces.push(text.slice(start));
  }
  const rest = pieces.join('');
  if (rest !== '') {
    const doc = parse(rest);
    if (doc) yield doc;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    return keys.length ? `an object with the keys ${keys.slice(0, 5).join(', ')}` : 'an empty object';
  }
  return JSON.stringify(value);
}

/**
 * The file's text, `readChunk` bytes at a time, through a streaming decoder, so a character cut
 * by a chunk boundary is completed by the next chunk rather than replaced.
 */
async function* decodedChunks(path: string, options: ReadOptions): AsyncGenerator<string> {
  const size = options.readChunk;
  if (!Number.isInteger(size) || size < 1) {
    throw new XlstmError('INVALID_CONFIG', `data.read_chunk expected a positive integer number of bytes, but got ${size}.`);
  }
  const handle = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw invalid(`dataset file ${path} expected to be readable, but got ${e.code ?? e.message}.`);
  });
  try {
    const { size: bytes } = await handle.stat();
    if (bytes === 0) throw invalid(`dataset file ${path} expected text, but got an empty file (0 bytes).`);
    const scanner = new Utf8Scanner();
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    const buffer = Buffer.allocUnsafe(Math.min(size, bytes));
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      const issue = scanner.push(chunk);
      if (issue) throw scanError(path, issue);
      const text = decoder.decode(chunk, { stream: true });
      if (text) yield text;
    }
    const issue = scanner.end();
    if (issue) throw scanError(path, issue);
    const tail = decoder.decode();
    if (tail) yield tail;
  } finally {
    await handle.close();
  }
}

function scanError(path: string, issue: ScanIssue): XlstmError {
  return issue.kind === 'nul'
    ? invalid(`dataset file ${path} expected UTF-8 text, but got a NUL byte at byte offset ${issue.offset}. Hint: this looks like a binary file.`)
    : invalid(`dataset file ${path} expected UTF-8 text, but got an invalid UTF-8 sequence at byte offset ${issue.offset}. Hint: re-encode the file as UTF-8.`);
}
