import { describe, expect, it } from 'vitest';
import { explainBackendError } from '../../src/backend/errors.ts';
import { XlstmError } from '../../src/util/errors.ts';

describe('explainBackendError', () => {
  // The first two messages are what tfjs-backend-wasm 4.22 threw on this machine when a process
  // kept allocating past 4 GiB (RuntimeError "Aborted()..."), and what a trap inside XNNPACK says.
  it.each([
    [new Error('Aborted(). Build with -sASSERTIONS for more info.')],
    [new Error('memory access out of bounds')],
    [new RangeError('Cannot enlarge memory arrays')],
  ])('turns %s into a BACKEND error with a hint', (e) => {
    const out = explainBackendError(e, 'wasm');
    expect(out).toBeInstanceOf(XlstmError);
    expect((out as XlstmError).code).toBe('BACKEND');
    expect((out as XlstmError).message).toMatch(/wasm backend expected its tensors to fit in its heap .* Hint: use a smaller batch size/);
  });

  it('passes other errors through untouched', () => {
    const e = new TypeError('x is not a function');
    expect(explainBackendError(e, 'wasm')).toBe(e);
  });
});
