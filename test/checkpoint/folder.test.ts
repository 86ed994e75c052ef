import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  listCheckpointFolders,
  listLeftoverFolders,
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
