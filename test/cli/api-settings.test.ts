import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Principal } from '../../src/api/http/index.ts';
import { apiSettings, isLoopback } from '../../src/cli/api-settings.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'xlstm-tokens-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const LONG_ADMIN = 'a'.repeat(32);
const LONG_READ = 'r'.repeat(32);

describe('apiSettings', () => {
  it('reads tokens from XLSTM_API_TOKENS and a token file, with their scopes', async () => {
    const file = path.join(dir, 'tokens');
    await writeFile(file, `# readers\n${LONG_READ}:read\n`);
    await chmod(file, 0o600);
    const s = await apiSettings({ XLSTM_API_TOKENS: `${LONG_ADMIN}:admin`, XLSTM_API_TOKENS_FILE: file }, '0.0.0.0');
    expect(s.access.enabled).toBe(true);
    expect((s.access.authenticate(`Bearer ${LONG_ADMIN}`) as Principal).scope).toBe('admin');
    expect((s.access.authenticate(`Bearer ${LONG_READ}`) as Principal).scope).toBe('read');
    expect(s.access.publicRead).toBe(false);
    expect(s.warnings).toEqual([]);
  });

  it('warns about short tokens, a token file others can read, and tokens without an admin', async () => {
    const file = path.join(dir, 'open-tokens');
    await writeFile(file, 'short:read\n');
    await chmod(file, 0o644);
    const s = await apiSettings({ XLSTM_API_TOKENS_FILE: file }, '127.0.0.1');
    expect(s.warnings).toEqual([
      expect.stringMatching(/can be read by other users \(mode 644\)/),
      expect.stringMatching(/^1 API token\(s\) are shorter than 16 characters/),
      expect.stringMatching(/no API token has scope admin/),
    ]);
  });

  it('serves without tokens on loopback (with a warning) and refuses to elsewhere unless XLSTM_ALLOW_OPEN=1', async () => {
    const local = await apiSettings({}, '127.0.0.1');
    expect(local.access.enabled).toBe(false);
    expect(local.warnings[0]).toMatch(/no API tokens: every caller may run every mutation \(loopback only\)/);
    await expect(apiSettings({}, '0.0.0.0')).rejects.toThrow(/^serving on 0\.0\.0\.0 expected API tokens .*, but got none\. Hint: set XLSTM_API_TOKENS/);
    expect((await apiSettings({ XLSTM_ALLOW_OPEN: '1' }, '0.0.0.0')).access.enabled).toBe(false);
  });

  it('switches introspection off in production unless XLSTM_INTROSPECTION=1, and reads public reads and limits', async () => {
    expect((await apiSettings({}, 'localhost')).limits.introspection).toBe(true);
    expect((await apiSettings({ NODE_ENV: 'production' }, 'localhost')).limits.introspection).toBe(false);
    expect((await apiSettings({ NODE_ENV: 'production', XLSTM_INTROSPECTION: '1' }, 'localhost')).limits.introspection).toBe(true);
    const s = await apiSettings({ XLSTM_API_TOKENS: `${LONG_ADMIN}:admin`, XLSTM_PUBLIC_READ: 'true', XLSTM_RATE_PER_SECOND: '2.5', XLSTM_MAX_QUERY_DEPTH: '8' }, '::1');
    expect(s.access.publicRead).toBe(true);
    expect(s.limits).toMatchObject({ ratePerSecond: 2.5, maxDepth: 8 });
  });

  it.each<[Record<string, string>, RegExp]>([
    [{ XLSTM_PUBLIC_READ: 'maybe' }, /^XLSTM_PUBLIC_READ expected 1 or 0 \(true or false\), but got "maybe"\./],
    [{ XLSTM_RATE_BURST: 'lots' }, /^XLSTM_RATE_BURST expected a number, but got "lots"\./],
    [{ XLSTM_MAX_QUERY_COST: '0' }, /^XLSTM_MAX_QUERY_COST expected a positive integer, but got 0\./],
    [{ XLSTM_API_TOKENS_FILE: '/nonexistent/tokens' }, /^XLSTM_API_TOKENS_FILE expected a readable file, but \/nonexistent\/tokens gave ENOENT\./],
    [{ XLSTM_API_TOKENS: 'x:root' }, /^XLSTM_API_TOKENS entry 1 scope expected one of read, admin/],
  ])('refuses %j with INVALID_CONFIG', async (env, message) => {
    await expect(apiSettings(env, 'localhost')).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(message) });
  });

  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.168.1.10', false],
  ])('treats %s as loopback: %s', (host, loopback) => {
    expect(isLoopback(host)).toBe(loopback);
  });
});
