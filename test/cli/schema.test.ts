import 'reflect-metadata';
import { promises as fsp } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { buildApiSchema, printApiSchema } from '../../src/api/schema/index.ts';
import { schemaCommand } from '../../src/cli/schema.ts';

describe('xlstm schema', () => {
  it('writes the SDL, and --check fails once the file drifts', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'xlstm-schema-'));
    const file = path.join(dir, 'schema.graphql');
    try {
      await schemaCommand(['--out', file]);
      expect(await fsp.readFile(file, 'utf8')).toBe(printApiSchema(await buildApiSchema()));
      await schemaCommand(['--out', file, '--check']);
      await fsp.appendFile(file, 'type Stale { x: Int }\n');
      await expect(schemaCommand(['--out', file, '--check'])).rejects.toThrow(/expected to match the schema built from src\/api\/schema, but it differs/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
