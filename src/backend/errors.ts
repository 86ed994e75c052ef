/** Turns the wasm backend's heap exhaustion into a platform error that says what happened and what to do. */
import { XlstmError } from '../util/errors.ts';

/**
 * The wasm heap stops near 4 GiB; past it tfjs's wasm module aborts ("Aborted()") or traps
 * ("memory access out of bounds"), and the module is unusable afterwards.
 */
const HEAP_FAILURES = [/memory access out of bounds/i, /^Aborted\(/, /Cannot enlarge memory/i, /out of memory/i];

/** A clear XlstmError for a wasm heap failure; any other error is returned unchanged. */
export function explainBackendError(e: unknown, backend: string): unknown {
  const message = e instanceof Error ? e.message : String(e);
  if (!HEAP_FAILURES.some((re) => re.test(message))) return e;
  return new XlstmError(
    'BACKEND',
    `the ${backend} backend expected its tensors to fit in its heap (about 4 GiB on wasm), but it ran out (${message.split('.')[0]}). ` +
      'Hint: use a smaller batch size or sequence length (or trainer.accumulate_grad_batches), or another backend; restart the process, the wasm module cannot recover.',
    { cause: e },
  );
}
