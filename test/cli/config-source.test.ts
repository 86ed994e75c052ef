import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { configFolderSource } from '../../src/cli/config-source.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'xlstm-config-source-'));
writeFileSync(path.join(dir, 'llm.yaml'), 'seed_everything: 3\n');
writeFileSync(path.join(dir, '..odd.yaml'), 'seed_everything: 4\n');
writeFileSync(path.join(path.dirname(dir), 'outside-config.yaml'), 'seed_everything: 5\n');
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(path.join(path.dirname(dir), 'outside-config.yaml'), { force: true });
});

describe('configFolderSource', () => {
  const source = configFolderSource(dir);

  it('reads a config by name and lists only names that are safe to ask for', async () => {
    expect((await source.get('llm'))?.values).toMatchObject({ seed_everything: 3 });
    expect(await source.get('absent')).toBeNull();
    expect((await source.list()).map((e) => e.name)).toEqual(['llm']);
  });

  it.each(['../outside-config', '/etc/passwd', 'a\0b', '.hidden', 'x'.repeat(129)])('refuses the name %j with INVALID_INPUT', async (name) => {
    await expect(source.get(name)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/^name expected a config name .*, but got .*\. Hint: it /) });
  });
});
