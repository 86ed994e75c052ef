import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  listCheckpointFolders,
  listLeftoverFolders,
  repairInterruptedWrite,
  repairInterruptedWrites,
  sha256Bytes,
  sha256File,
  writeFolderAtomic,
} from '../../src/checkpoint/index.ts';
import { isXlstmError } from '../../src/util/errors.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'xlstm-folder-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('sha256', () => {
  it('matches the FIPS 180-2 test vectors for bytes and files', async () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Bytes('abc')).toBe(abc);
    const file = path.join(root, 'abc.txt');
    await writeFile(file, 'abc');
    expect(await sha256File(file)).toBe(abc);
    await writeFile(file, '');
    expect(await sha256File(file)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('writeFolderAtomic', () => {
  it('creates the folder (and its parents) with exactly the files given', async () => {
    const dest = path.join(root, 'a', 'b', 'ckpt');
    await writeFolderAtomic(dest, [
      ['one.txt', 'first'],
      ['two.bin', new Uint8Array([1, 2, 3])],
    ]);
    expect((await readdir(dest)).sort()).toEqual(['one.txt', 'two.bin']);
    expect(await readFile(path.join(dest, 'one.txt'), 'utf-8')).toBe('first');
    expect([...(await readFile(path.join(dest, 'two.bin')))]).toEqual([1, 2, 3]);
    expect(await readdir(path.join(root, 'a', 'b'))).toEqual(['ckpt']);
  });

  it('replaces an existing folder wholesale: old files that the new write lacks are gone', async () => {
    const dest = path.join(root, 'ckpt');
    await writeFolderAtomic(dest, [
      ['keep.txt', 'v1'],
      ['stale.txt', 'v1'],
    ]);
    await writeFolderAtomic(dest, [['keep.txt', 'v2']]);
    expect(await readdir(dest)).toEqual(['keep.txt']);
    expect(await readFile(path.join(dest, 'keep.txt'), 'utf-8')).toBe('v2');
    expect(await readdir(root)).toEqual(['ckpt']);
  });

  it('refuses to replace a file and leaves it alone', async () => {
    const dest = path.join(root, 'taken');
    await writeFile(dest, 'not a folder');
    const error = await writeFolderAtomic(dest, [['x', 'y']]).catch((e: unknown) => e);
    expect(isXlstmError(error, 'INVALID_INPUT')).toBe(true);
    expect(await readFile(dest, 'utf-8')).toBe('not a folder');
    expect(await readdir(root)).toEqual(['taken']);
  });

  it.each(['', '..', 'sub/file'])('rejects the file name %j', async (name) => {
    const error = await writeFolderAtomic(path.join(root, 'c'), [[name, 'x']]).catch((e: unknown) => e);
    expect(isXlstmError(error, 'INVALID_INPUT')).toBe(true);
    expect(await readdir(root)).toEqual([]);
  });
});

describe('listings', () => {
  it('lists folders holding model.safetensors, skipping dot-named temp and backup folders', async () => {
    for (const name of ['b-ckpt', 'a-ckpt', '.a-ckpt.tmp-x1', '.a-ckpt.old-x1', 'empty']) {
      await mkdir(path.join(root, name));
      if (name !== 'empty') await writeFile(path.join(root, name, 'model.safetensors'), '');
    }
    await writeFile(path.join(root, 'loose.txt'), '');
    expect(await listCheckpointFolders(root)).toEqual(['a-ckpt', 'b-ckpt']);
    expect(await listLeftoverFolders(root)).toEqual(['.a-ckpt.old-x1', '.a-ckpt.tmp-x1']);
    expect(await listCheckpointFolders(path.join(root, 'missing'))).toEqual([]);
  });
});

describe('repairInterruptedWrites', () => {
  /** A complete folder as writeFolderAtomic leaves it: one file saying which version it is. */
  const folder = async (name: string, version: string): Promise<void> => {
    await mkdir(path.join(root, name));
    await writeFile(path.join(root, name, 'version.txt'), version);
  };
  const version = (name: string): Promise<string> => readFile(path.join(root, name, 'version.txt'), 'utf8');

  it('moves the new copy in when a swap was killed between its two renames', async () => {
    await folder('.ck.old-abc123', 'old');
    await folder('.ck.tmp-abc123', 'new');
    expect(await listCheckpointFolders(root)).toEqual([]);
    expect(await repairInterruptedWrites(root)).toEqual({ restored: ['ck'], removed: ['.ck.old-abc123'] });
    expect(await version('ck')).toBe('new');
    expect(await readdir(root)).toEqual(['ck']);
  });

  it('puts the backup back when the new copy is gone too', async () => {
    await folder('.ck.old-abc123', 'old');
    expect(await repairInterruptedWrites(root)).toEqual({ restored: ['ck'], removed: [] });
    expect(await version('ck')).toBe('old');
  });

  it('drops the backup when the swap finished and only its removal was cut short', async () => {
    await folder('ck', 'new');
    await folder('.ck.old-abc123', 'old');
    expect(await repairInterruptedWrites(root)).toEqual({ restored: [], removed: ['.ck.old-abc123'] });
    expect(await version('ck')).toBe('new');
  });

  it('removes temp folders without a backup (never complete) and deletion leftovers only once they are stale', async () => {
    await folder('ck', 'current');
    await folder('.ck.tmp-zzz999', 'half');
    await folder('.deleting-gone-123', 'x');
    const now = Date.now();
    expect(await repairInterruptedWrites(root, { now: () => now })).toEqual({ restored: [], removed: [] });
    expect(await repairInterruptedWrites(root, { now: () => now + 11 * 60_000 })).toEqual({ restored: [], removed: ['.ck.tmp-zzz999', '.deleting-gone-123'] });
    expect(await readdir(root)).toEqual(['ck']);
  });

  it('repairs one destination only, leaving other folders alone', async () => {
    await folder('.a.old-abc123', 'a-old');
    await folder('.b.old-def456', 'b-old');
    expect(await repairInterruptedWrite(path.join(root, 'a'))).toEqual({ restored: ['a'], removed: [] });
    expect((await readdir(root)).sort()).toEqual(['.b.old-def456', 'a']);
  });

  it('handles names with dots', async () => {
    await folder('.run.v2-last.old-abc123', 'old');
    await folder('.run.v2-last.tmp-abc123', 'new');
    await repairInterruptedWrites(root);
    expect(await version('run.v2-last')).toBe('new');
  });
});
