/** How many threads decode a served model: the serve setting, the machine's cores by default, and the backend's say. */
import os from 'node:os';
import { XlstmError } from '../util/errors.ts';

/** Backends whose decode can move to worker threads (each thread starts its own instance). */
const POOL_BACKENDS: ReadonlySet<string> = new Set(['cpu', 'wasm']);

/**
 * The setting (`--decode-threads`, XLSTM_DECODE_THREADS) as a number: an integer >= 1, where 1 decodes in the
 * serving thread; absent means one thread per core (os.availableParallelism()).
 */
export function resolveDecodeThreads(setting: number | undefined): number {
  const threads = setting ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new XlstmError('INVALID_CONFIG', `decode threads expected an integer >= 1, but got ${threads}. Hint: use 1 to decode in the serving thread.`);
  }
  return threads;
}

/** The threads a model on `backend` decodes with: device backends (webgpu, tensorflow) keep decoding in process. */
export function decodeThreadsOn(backend: string, threads: number): number {
  return POOL_BACKENDS.has(backend) ? threads : 1;
}
