/**
 * How data-parallel workers and the trainer swap weights and gradients: as files in a private
 * temporary folder, with only their paths in the IPC messages. Node's child-process IPC moves
 * the 40.3 MB of weights each way in 0.45-0.9 s (measured here), which was most of a 2-worker CPU step; a file in
 * the page cache is written and read in a few milliseconds.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A folder for one worker pool's files; removed by `remove`. */
export function makeExchange(): { readonly dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xlstm-exchange-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes the array to `dir/name` and returns its path. */
export function putArray(dir: string, name: string, data: Float32Array): string {
  const file = path.join(dir, name);
  writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return file;
}

/** Reads an array written by putArray. */
export function takeArray(file: string): Float32Array {
  const bytes = readFileSync(file);
  // A large read has a buffer of its own; a small one may sit unaligned in Node's pool.
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(new Uint8Array(bytes).buffer);
}

/** The files of workers that own shards of the flat weight vector (flat-layout.ts). */
export interface ShardFiles {
  /** The weights: each worker writes its shard after an update and reads the others' before computing. */
  readonly weights: string;
  /** AdamW's moments: written by the trainer at start, by each worker for its shard when the trainer pulls. */
  readonly m: string;
  readonly v: string;
  /** Worker w's gradient sum, of which it writes only the other workers' shards. */
  readonly grads: readonly string[];
}

export function shardFiles(dir: string, parts: number): ShardFiles {
  return {
    weights: path.join(dir, 'weights.f32'),
    m: path.join(dir, 'exp_avg.f32'),
    v: path.join(dir, 'exp_avg_sq.f32'),
    grads: Array.from({ length: parts }, (_, w) => path.join(dir, `grads-${w}.f32`)),
  };
}

/**
 * A float32 file that several processes read and write by element ranges, in place: no truncation
 * and no fresh buffers. On this VM the first touch of a page is what costs (a new 40 MB array takes
 * ~130 ms to fill, a reused one 2 ms; readFileSync of 40 MB ~150 ms, readSync into a reused array
 * 3-15 ms), so a step's transfers go between long-lived arrays and long-lived files.
 */
export class RangeFile {
  private constructor(private readonly fd: number) {}

  /** Creates (or empties) the file with room for `floats` values. */
  static create(file: string, floats: number): RangeFile {
    const fd = openSync(file, 'w+');
    ftruncateSync(fd, floats * 4);
    return new RangeFile(fd);
  }

  static open(file: string): RangeFile {
    return new RangeFile(openSync(file, 'r+'));
  }

  /** Writes data[at, at + (end - start)) to the file's elements [start, end). */
  write(data: Float32Array, start: number, end: number, at = start): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset + at * 4, (end - start) * 4);
    for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done, start * 4 + done);
  }

  /** Reads the file's elements [start, end) into into[at, at + (end - start)). */
  read(into: Float32Array, start: number, end: number, at = start): void {
    const bytes = new Uint8Array(into.buffer, into.byteOffset + at * 4, (end - start) * 4);
    for (let done = 0; done < bytes.length; ) {
      const n = readSync(this.fd, bytes, done, bytes.length - done, start * 4 + done);
      if (n === 0) {
        throw new Error(`exchange file expected ${end} float32 values, but it ends at byte ${start * 4 + done}. Hint: something truncated the pool's temporary folder.`);
      }
      done += n;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
