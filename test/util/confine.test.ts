import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { confineName, confinePath, confineRealPath, isInside, MAX_PATH_CHARS } from '../../src/util/confine.ts';
import { XlstmError } from '../../src/util/errors.ts';

const base = mkdtempSync(path.join(tmpdir(), 'xlstm-confine-'));
const root = path.join(base, 'root');
const outside = path.join(base, 'outside');
mkdirSync(path.join(root, 'inner', 'deep'), { recursive: true });
mkdirSync(outside);
writeFileSync(path.join(outside, 'secret.txt'), 'secret');
writeFileSync(path.join(root, 'inner', 'data.txt'), 'data');
symlinkSync(outside, path.join(root, 'escape'));
symlinkSync(path.join(root, 'inner'), path.join(root, 'alias'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const RULE = { what: 'a thing id', hint: 'list the things.' };

function refusal(fn: () => unknown): XlstmError {
  try {
    fn();
  } catch (e) {
    if (e instanceof XlstmError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('confineName', () => {
  it.each(['tiny', 'run-1.v2_last', 'A', 'x'.repeat(128)])('accepts %j', (name) => {
    expect(confineName(name, 'id', RULE)).toBe(name);
  });

  it.each<[unknown, string]>([
    ['', 'is empty'],
    ['..', "contains '..'"],
    ['a..b', "contains '..'"],
    ['a/b', 'contains a path separator'],
    ['a\\b', 'contains a path separator'],
    ['/etc', 'contains a path separator'],
    ['.hidden', 'starts with "."'],
    ['-flag', 'starts with "-"'],
    ['a\0b', 'contains a NUL byte'],
    ['a b', "has characters other than letters, digits, '.', '_' and '-'"],
    ['x'.repeat(129), 'is longer than 128 characters'],
    [42, 'is not a string'],
  ])('refuses %j: it %s', (name, why) => {
    const e = refusal(() => confineName(name, 'input.id', RULE));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/^input\.id expected a thing id, but got .+\. Hint: it /);
    expect(e.message).toContain(`Hint: it ${why}; list the things.`);
  });

  it('shows over-long values shortened, with their length', () => {
    expect(refusal(() => confineName('y'.repeat(5000), 'id', RULE)).message).toMatch(/but got "y{77}\.\.\." \(5000 characters\)\./);
  });
});

describe('confinePath', () => {
  it('resolves relative paths against the root (or a given base) and accepts absolute paths inside', () => {
    expect(confinePath(root, 'inner/data.txt', 'p')).toBe(path.join(root, 'inner', 'data.txt'));
    expect(confinePath(root, path.join(root, 'inner'), 'p')).toBe(path.join(root, 'inner'));
    expect(confinePath(root, '.', 'p')).toBe(root);
    expect(confinePath(root, 'root/inner', 'p', { base })).toBe(path.join(root, 'inner'));
  });

  it.each<[string, string]>([
    ['../outside/secret.txt', "has a '..' segment"],
    ['inner/../../outside', "has a '..' segment"],
    ['inner\\..\\..', "has a '..' segment"],
    ['/etc/passwd', 'is outside the data root'],
    ['', 'is empty'],
    ['inner/\0/x', 'contains a NUL byte'],
    [`${'d/'.repeat(MAX_PATH_CHARS / 2)}x`, `is longer than ${MAX_PATH_CHARS} characters`],
    [`inner/${'n'.repeat(256)}`, 'has a name longer than 255 characters'],
  ])('refuses %j: it %s', (candidate, why) => {
    const e = refusal(() => confinePath(root, candidate, 'data.root', { rootName: 'the data root' }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(new RegExp(`^data\\.root expected a path inside the data root ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, but got `));
    expect(e.message).toContain(`Hint: it ${why};`);
  });

  it('refuses a sibling folder whose name starts like the root', () => {
    expect(() => confinePath(root, `${root}-evil/x`, 'p')).toThrow(/is outside the root/);
    expect(isInside(root, `${root}-evil`)).toBe(false);
    expect(isInside(root, root)).toBe(true);
  });

  it('refuses relative paths that a base puts outside the root', () => {
    expect(() => confinePath(root, 'outside', 'p', { base })).toThrow(/is outside the root/);
  });
});

describe('confineRealPath', () => {
  it('accepts paths inside, through links that stay inside, and paths that do not exist yet', async () => {
    expect(await confineRealPath(root, 'inner/data.txt', 'p')).toBe(path.join(root, 'inner', 'data.txt'));
    expect(await confineRealPath(root, 'alias/data.txt', 'p')).toBe(path.join(root, 'alias', 'data.txt'));
    expect(await confineRealPath(root, 'inner/not/yet/here', 'p')).toBe(path.join(root, 'inner', 'not', 'yet', 'here'));
  });

  it.each(['escape', 'escape/secret.txt', 'escape/missing/file'])('refuses %j, which leads through a link out of the root', async (candidate) => {
    await expect(confineRealPath(root, candidate, 'dataset', { rootName: 'the data root' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/^dataset expected a path inside the data root .*\. Hint: it leads through a symbolic link to .*outside.*, outside the data root;/),
    });
  });
});
