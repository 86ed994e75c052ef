import { describe, expect, it } from 'vitest';
import { validateMeta } from '../../src/checkpoint/index.ts';
import { isXlstmError } from '../../src/util/errors.ts';

const GOOD = {
  format_version: 1,
  id: 'tiny-step-20',
  parent: 'tiny-init',
  run_id: 'run-7',
  step: 20,
  tokens_seen: 40960,
  train_loss: 3.25,
  val_loss: null,
  created: '2025-03-01T12:30:00.000Z',
  sha256: 'ab'.repeat(32),
  dtype: 'F16',
  provenance: { command: 'xlstm finetune', data: 'data/corpus', notes: 'smoke test', extra: { lr: 0.001 } },
};

describe('validateMeta', () => {
  it('accepts a complete meta.json and freezes it', () => {
    const meta = validateMeta(structuredClone(GOOD), 'c/meta.json');
    expect(meta).toEqual(GOOD);
    expect(Object.isFrozen(meta)).toBe(true);
    expect(Object.isFrozen(meta.provenance)).toBe(true);
  });

  it('accepts nulls for parent, run_id and the losses, and no provenance', () => {
    const { provenance: _p, ...rest } = GOOD;
    const meta = validateMeta({ ...rest, parent: null, run_id: null, train_loss: null }, 'm.json');
    expect(meta.parent).toBeNull();
    expect('provenance' in meta).toBe(false);
  });

  const CASES: Array<[string, Record<string, unknown>, string]> = [
    ['a newer format_version', { format_version: 2 }, 'format_version expected 1, but got 2. Hint:'],
    ['a missing format_version', { format_version: undefined }, 'format_version expected 1, but got nothing'],
    ['an unknown key', { loss: 1 }, 'has unknown key loss. Hint: allowed keys are format_version'],
    ['an empty id', { id: '' }, 'id expected a non-empty string, but got ""'],
    ['a numeric parent', { parent: 3 }, 'parent expected a non-empty string or null, but got 3'],
    ['a negative step', { step: -1 }, 'step expected an integer >= 0, but got -1'],
    ['a fractional tokens_seen', { tokens_seen: 1.5 }, 'tokens_seen expected an integer >= 0, but got 1.5'],
    ['a string loss', { train_loss: '3.2' }, 'train_loss expected a finite number or null, but got "3.2"'],
    ['a date that is not ISO 8601', { created: 'March 1st' }, 'created expected an ISO 8601 time'],
    ['an impossible date', { created: '2025-13-45T00:00:00Z' }, 'created expected an ISO 8601 time'],
    ['a short sha256', { sha256: 'abc' }, 'sha256 expected 64 lowercase hex digits, but got "abc"'],
    ['an uppercase sha256', { sha256: 'AB'.repeat(32) }, 'sha256 expected 64 lowercase hex digits'],
    ['an unknown dtype', { dtype: 'I8' }, 'dtype expected one of F32, F16, BF16, F64, but got "I8"'],
    ['a provenance list', { provenance: ['x'] }, 'provenance expected an object'],
    ['a numeric provenance.command', { provenance: { command: 5 } }, 'provenance.command expected a string, but got 5'],
  ];

  it.each(CASES)('rejects %s', (_label, patch, expected) => {
    const raw: Record<string, unknown> = { ...structuredClone(GOOD), ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete raw[k];
    let error: unknown;
    try {
      validateMeta(raw, 'ckpt/meta.json');
    } catch (e) {
      error = e;
    }
    expect(isXlstmError(error, 'CHECKPOINT_CORRUPT')).toBe(true);
    expect((error as Error).message).toContain('ckpt/meta.json');
    expect((error as Error).message).toContain(expected);
  });

  it('rejects a meta.json that is not an object', () => {
    expect(() => validateMeta([1], 'm.json')).toThrow('m.json expected a JSON object of checkpoint metadata, but got [1]');
  });
});
