/** Integer command-line flags with the platform's error form. */
import { XlstmError } from '../util/errors.ts';

export function intFlag(name: string, raw: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new XlstmError('INVALID_INPUT', `${name} expected an integer from ${min} to ${max}, but got ${JSON.stringify(raw)}.`);
  }
  return n;
}

export function numberFlag(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new XlstmError('INVALID_INPUT', `${name} expected a number, but got ${JSON.stringify(raw)}.`);
  return n;
}
