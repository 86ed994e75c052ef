import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeSafetensors, loadCheckpoint, saveCheckpoint, sha256Bytes, type NamedTensors } from '../../src/checkpoint/index.ts';
import { f16BitsToNumber, f32ToF16Bits } from '../../src/checkpoint/half.ts';
import { isXlstmError, type ErrorCode } from '../../src/util/errors.ts';
import { seededTensors, TINY, TINY_OBJECT, TOKENIZER_JSON } from './tiny.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'xlstm-load-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function saved(name = 'ckpt', dtype: 'F32' | 'F16' = 'F32'): Promise<string> {
  const dir = path.join(root, name);
  await saveCheckpoint(dir, { config: TINY, tensors: seededTensors(TINY, 5), tokenizerJson: TOKENIZER_JSON, meta: { step: 4 }, dtype });
  return dir;
}

/** A folder written by hand: weights, config.yaml text and optionally a meta.json matching the weights. */
async function handMade(tensors: NamedTensors, configYaml: string, withMeta: boolean): Promise<string> {
  const dir = path.join(root, 'hand');
  await mkdir(dir);
  const weights = encodeSafetensors(tensors);
  await writeFile(path.join(dir, 'model.safetensors'), weights);
  await writeFile(path.join(dir, 'config.yaml'), configYaml);
  if (withMeta) {
    await writeFile(path.join(dir, 'tokenizer.json'), '{}');
    const meta = { format_version: 1, id: 'hand', parent: null, run_id: null, step: 0, tokens_seen: 0, train_loss: null, val_loss: null, created: '2025-01-01T00:00:00Z', sha256: sha256Bytes(weights), dtype: 'F32' };
    await writeFile(path.join(dir, 'meta.json'), JSON.stringify(meta));
  }
  return dir;
}

const MODEL_YAML = `model: ${JSON.stringify(TINY_OBJECT)}\n`;

async function failure(p: Promise<unknown>, code: ErrorCode): Promise<string> {
  const error = await p.then(() => null, (e: unknown) => e);
  expect(isXlstmError(error, code), String(error)).toBe(true);
  return (error as Error).message;
}

describe('round trips', () => {
  it('F32: tensors bit-exact, config, meta, tokenizer, extra sections and optimizer state', async () => {
    const dir = path.join(root, 'full');
    const tensors = seededTensors(TINY, 9);
    const optimizer: NamedTensors = new Map([['state.m.embedding.weight', { shape: [2, 2], data: new Float32Array([1, -2, 3e-30, 4]) }]]);
    const extra = { trainer: { devices: 2, lr_schedule: 'cosine' }, data: { root: 'data/corpus' } };
    const meta = await saveCheckpoint(dir, { config: TINY, tensors, tokenizerJson: TOKENIZER_JSON, meta: { id: 'tiny-9', step: 9 }, optimizer, extraConfig: extra });
    const loaded = await loadCheckpoint(dir, { optimizer: true });
    expect(loaded.config).toEqual(TINY);
    expect(loaded.meta).toEqual(meta);
    expect(loaded.metaSynthesised).toBe(false);
    expect(loaded.tokenizerJson).toBe(TOKENIZER_JSON);
    expect(loaded.extraConfig).toEqual(extra);
    expect([...loaded.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      expect(loaded.tensors.get(name)!.shape).toEqual(t.shape);
      expect(Buffer.from(loaded.tensors.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);
    }
    expect(loaded.optimizer).toEqual(optimizer);
  });

  it('F16: every value is the nearest half of the saved one', async () => {
    const dir = await saved('half', 'F16');
    const loaded = await loadCheckpoint(dir);
    expect(loaded.meta.dtype).toBe('F16');
    const original = seededTensors(TINY, 5);
    for (const [name, t] of original) {
      const got = loaded.tensors.get(name)!.data;
      t.data.forEach((x, i) => {
        if (got[i] !== f16BitsToNumber(f32ToF16Bits(x))) throw new Error(`${name}[${i}]: ${got[i]} for ${x}`);
        if (Math.abs(got[i] - x) > Math.abs(x) * 2 ** -11 + 2 ** -25) throw new Error(`${name}[${i}] off by more than half an ulp`);
      });
    }
  });

  it('loads a file without head.weight as tied, with no head among the tensors', async () => {
    const dir = await handMade(seededTensors(TINY, 1, false), MODEL_YAML, false);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.config.tie_weights).toBe(true);
    expect(loaded.tensors.has('head.weight')).toBe(false);
  });

  it('accepts the model keys at the top level of config.yaml', async () => {
    const dir = await handMade(seededTensors(TINY, 1), `${Object.entries(TINY_OBJECT).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n')}\n`, true);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.config).toEqual(TINY);
    expect(loaded.extraConfig).toEqual({});
  });

  it('synthesises meta for a folder without meta.json (a reference checkpoint)', async () => {
    const dir = await handMade(seededTensors(TINY, 1), MODEL_YAML, false);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.metaSynthesised).toBe(true);
    expect(loaded.tokenizerJson).toBeNull();
    expect(loaded.meta).toMatchObject({ format_version: 1, id: 'hand', parent: null, run_id: null, step: 0, dtype: 'F32' });
    expect(loaded.meta.sha256).toBe(sha256Bytes(await readFile(path.join(dir, 'model.safetensors'))));
  });

  it('returns no optimizer when asked for one that the folder lacks', async () => {
    expect((await loadCheckpoint(await saved(), { optimizer: true })).optimizer).toBeUndefined();
  });
});

describe('failures', () => {
  it('reports a missing folder and a file path as CHECKPOINT_NOT_FOUND', async () => {
    const missing = path.join(root, 'nope');
    expect(await failure(loadCheckpoint(missing), 'CHECKPOINT_NOT_FOUND')).toContain(`${missing} expected to exist, but nothing is there`);
    await writeFile(path.join(root, 'file'), '');
    expect(await failure(loadCheckpoint(path.join(root, 'file')), 'CHECKPOINT_NOT_FOUND')).toContain('it is a file');
  });

  it('rejects an unknown format_version before looking at the weights', async () => {
    const dir = await saved();
    const metaFile = path.join(dir, 'meta.json');
    await writeFile(metaFile, JSON.stringify({ ...JSON.parse(await readFile(metaFile, 'utf-8')), format_version: 3 }));
    await unlink(path.join(dir, 'model.safetensors'));
    const message = await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT');
    expect(message).toContain(`${metaFile}: format_version expected 1, but got 3`);
  });

  it('rejects a meta.json that is not JSON', async () => {
    const dir = await saved();
    await writeFile(path.join(dir, 'meta.json'), '{"id": ');
    expect(await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT')).toMatch(/meta\.json: expected valid JSON/);
  });

  it('detects a changed byte in the weights through sha256', async () => {
    const dir = await saved();
    const file = path.join(dir, 'model.safetensors');
    const bytes = await readFile(file);
    const want = sha256Bytes(bytes);
    bytes[bytes.length - 3] ^= 0x40;
    await writeFile(file, bytes);
    const message = await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT');
    expect(message).toContain(`${file}: sha256 expected ${want} (from meta.json), but got ${sha256Bytes(bytes)}`);
  });

  it('reports a truncated weights file (no meta.json) with both byte lengths', async () => {
    const dir = await handMade(seededTensors(TINY, 1), MODEL_YAML, false);
    const file = path.join(dir, 'model.safetensors');
    const bytes = await readFile(file);
    await writeFile(file, bytes.subarray(0, bytes.length - 100));
    const message = await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT');
    expect(message).toContain(`expected ${bytes.length} bytes`);
    expect(message).toContain(`but the file has ${bytes.length - 100} bytes`);
  });

  it('lists every missing, unexpected and misshaped tensor in one error', async () => {
    const tensors = seededTensors(TINY, 1);
    tensors.delete('blocks.0.q.weight');
    tensors.delete('norm_f.bias');
    tensors.set('blocks.9.mystery', { shape: [3], data: new Float32Array(3) });
    tensors.set('blocks.1.up.weight', { shape: [40, 16], data: new Float32Array(640) });
    tensors.set('embedding.weight', { shape: [16, 64], data: new Float32Array(1024) });
    const dir = await handMade(tensors, MODEL_YAML, true);
    const message = await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT');
    expect(message).toContain(path.join(dir, 'model.safetensors'));
    expect(message).toContain('missing 2: blocks.0.q.weight, norm_f.bias');
    expect(message).toContain('unexpected 1: blocks.9.mystery');
    expect(message).toContain('wrong shape 2:');
    expect(message).toContain('embedding.weight expected [64, 16], but got [16, 64]');
    expect(message).toContain('blocks.1.up.weight expected [42, 16], but got [40, 16]');
  });

  it('rejects weights whose dtype differs from meta.json', async () => {
    const dir = await saved('half', 'F16');
    const metaFile = path.join(dir, 'meta.json');
    await writeFile(metaFile, JSON.stringify({ ...JSON.parse(await readFile(metaFile, 'utf-8')), dtype: 'F32' }));
    expect(await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT')).toMatch(/dtype expected F32 \(from meta\.json\), but got F16/);
  });

  it('requires tokenizer.json when meta.json is present', async () => {
    const dir = await saved();
    await unlink(path.join(dir, 'tokenizer.json'));
    expect(await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT')).toContain(`${path.join(dir, 'tokenizer.json')} expected to exist (the tokenizer)`);
  });

  it('rejects an invalid config.yaml as corrupt, naming the file and the key', async () => {
    const dir = await saved();
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, (await readFile(file, 'utf-8')).replace('head_num: 2', 'head_num: 0'));
    expect(await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT')).toContain(`${file}: model.head_num expected an integer >= 1, but got 0`);
  });

  it('rejects a folder without model.safetensors', async () => {
    const dir = await saved();
    await unlink(path.join(dir, 'model.safetensors'));
    expect(await failure(loadCheckpoint(dir), 'CHECKPOINT_CORRUPT')).toContain('model.safetensors expected to exist (the model weights)');
  });
});
