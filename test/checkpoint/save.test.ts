import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadCheckpoint, readSafetensorsHeader, saveCheckpoint, sha256File, listLeftoverFolders } from '../../src/checkpoint/index.ts';
import { isXlstmError } from '../../src/util/errors.ts';
import { seededTensors, TINY, TINY_OBJECT, TOKENIZER_JSON } from './tiny.ts';

// Failure injection: the real file system, except that chosen calls fail as a full disk would.
const faults = vi.hoisted(() => ({ openEndsWith: null as string | null, renameNumber: 0, renames: 0 }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const diskFull = (): Error => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  const open: typeof actual.open = async (file, ...rest) => {
    if (faults.openEndsWith !== null && String(file).endsWith(faults.openEndsWith)) throw diskFull();
    return actual.open(file, ...rest);
  };
  const rename: typeof actual.rename = async (from, to) => {
    faults.renames += 1;
    if (faults.renames === faults.renameNumber) throw diskFull();
    return actual.rename(from, to);
  };
  return { ...actual, default: { ...actual, open, rename }, open, rename };
});

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'xlstm-save-'));
  Object.assign(faults, { openEndsWith: null, renameNumber: 0, renames: 0 });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const save = (dir: string, step: number, extra: Partial<Parameters<typeof saveCheckpoint>[1]> = {}) =>
  saveCheckpoint(dir, {
    config: TINY,
    tensors: seededTensors(TINY, step),
    tokenizerJson: TOKENIZER_JSON,
    meta: { step, created: '2025-01-02T03:04:05.000Z' },
    ...extra,
  });

describe('saveCheckpoint', () => {
  it('writes the five files with the model keys under model: and the extra sections beside them', async () => {
    const dir = path.join(root, 'ckpt');
    const meta = await save(dir, 3, {
      optimizer: new Map([['adam.m', { shape: [2], data: new Float32Array([1, 2]) }]]),
      extraConfig: { trainer: { devices: 2 } },
      meta: { step: 3, parent: 'base', run_id: 'r1', tokens_seen: 99, train_loss: 2.5, provenance: { command: 'test' } },
    });
    expect((await readdir(dir)).sort()).toEqual(['config.yaml', 'meta.json', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.json']);
    expect(parse(await readFile(path.join(dir, 'config.yaml'), 'utf-8'))).toEqual({ model: TINY_OBJECT, trainer: { devices: 2 } });
    expect(JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf-8'))).toEqual(meta);
    expect(meta).toMatchObject({ format_version: 1, id: 'ckpt', parent: 'base', run_id: 'r1', step: 3, tokens_seen: 99, train_loss: 2.5, val_loss: null, dtype: 'F32' });
    expect(meta.sha256).toBe(await sha256File(path.join(dir, 'model.safetensors')));
    expect(await readFile(path.join(dir, 'tokenizer.json'), 'utf-8')).toBe(TOKENIZER_JSON);
  });

  it('stores head.weight (a copy of embedding.weight) for a tied model given without a head', async () => {
    const dir = path.join(root, 'tied');
    const tied = { ...TINY, tie_weights: true };
    await saveCheckpoint(dir, { config: tied, tensors: seededTensors(TINY, 1, false), tokenizerJson: '{}', meta: {} });
    const header = await readSafetensorsHeader(path.join(dir, 'model.safetensors'));
    expect(header.tensors.get('head.weight')?.shape).toEqual([64, 16]);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.config.tie_weights).toBe(true);
    expect(loaded.tensors.get('head.weight')!.data).toEqual(loaded.tensors.get('embedding.weight')!.data);
  });

  it('lists every missing, unexpected and misshaped tensor in one INVALID_INPUT', async () => {
    const tensors = seededTensors(TINY, 0);
    tensors.delete('blocks.0.q.bias');
    tensors.set('blocks.0.extra', { shape: [1], data: new Float32Array(1) });
    tensors.set('norm_f.weight', { shape: [15], data: new Float32Array(15) });
    const error = await saveCheckpoint(path.join(root, 'x'), { config: TINY, tensors, tokenizerJson: '{}', meta: {} }).catch((e: unknown) => e);
    expect(isXlstmError(error, 'INVALID_INPUT')).toBe(true);
    expect((error as Error).message).toMatch(/missing 1: blocks\.0\.q\.bias; unexpected 1: blocks\.0\.extra; wrong shape 1: norm_f\.weight expected \[16\], but got \[15\]/);
    expect(await readdir(root)).toEqual([]);
  });

  it.each<[string, Partial<Parameters<typeof saveCheckpoint>[1]>, RegExp]>([
    ['tokenizer text that is not JSON', { tokenizerJson: '{' }, /tokenizerJson expected JSON text/],
    ['a model key in extraConfig', { extraConfig: { model: {} } }, /extraConfig expected sections other than model/],
    ['a negative step', { meta: { step: -2 } }, /saveCheckpoint meta: step expected an integer >= 0, but got -2/],
    ['an unknown meta key', { meta: { loss: 1 } as never }, /saveCheckpoint meta has unknown key loss/],
  ])('rejects %s before writing anything', async (_label, patch, expected) => {
    const error = await save(path.join(root, 'x'), 0, patch).catch((e: unknown) => e);
    expect(isXlstmError(error, 'INVALID_INPUT')).toBe(true);
    expect((error as Error).message).toMatch(expected);
    expect(await readdir(root)).toEqual([]);
  });
});

describe('atomic replacement', () => {
  it('keeps the previous checkpoint intact, and lists no temp folder, when a file write fails', async () => {
    const dir = path.join(root, 'ckpt');
    const before = await save(dir, 1, { optimizer: new Map([['m', { shape: [1], data: new Float32Array([7]) }]]) });
    faults.openEndsWith = 'meta.json';
    const error = await save(dir, 2).catch((e: unknown) => e);
    expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    faults.openEndsWith = null;
    expect(await readdir(root)).toEqual(['ckpt']);
    expect(await listLeftoverFolders(root)).toEqual([]);
    const loaded = await loadCheckpoint(dir, { optimizer: true });
    expect(loaded.meta).toEqual(before);
    expect(loaded.tensors.get('embedding.weight')!.data).toEqual(seededTensors(TINY, 1).get('embedding.weight')!.data);
    expect(loaded.optimizer?.get('m')?.data).toEqual(new Float32Array([7]));
  });

  it('restores the previous checkpoint when the final rename fails', async () => {
    const dir = path.join(root, 'ckpt');
    const before = await save(dir, 1);
    faults.renames = 0;
    faults.renameNumber = 2; // 1: old folder -> backup, 2: new folder -> dest
    const error = await save(dir, 2).catch((e: unknown) => e);
    expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(await readdir(root)).toEqual(['ckpt']);
    expect((await loadCheckpoint(dir)).meta).toEqual(before);
  });

  it('leaves nothing behind when a first save fails', async () => {
    faults.openEndsWith = 'tokenizer.json';
    await expect(save(path.join(root, 'fresh'), 0)).rejects.toThrow('ENOSPC');
    expect(await readdir(root)).toEqual([]);
  });

  it('replaces a checkpoint completely when the save succeeds', async () => {
    const dir = path.join(root, 'ckpt');
    await save(dir, 1, { optimizer: new Map([['m', { shape: [1], data: new Float32Array([7]) }]]) });
    const after = await save(dir, 2);
    expect(await readdir(root)).toEqual(['ckpt']);
    const loaded = await loadCheckpoint(dir, { optimizer: true });
    expect(loaded.meta).toEqual(after);
    expect(loaded.optimizer).toBeUndefined();
  });
});
