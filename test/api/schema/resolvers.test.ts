import 'reflect-metadata';
import { promises as fsp } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { configFolderSource } from '../../../src/cli/config-source.ts';
import { startTestServer, type TestServer } from '../../support/api-server.ts';
import { writeTinyCheckpoint } from '../../support/tiny-checkpoint.ts';

let t: TestServer;
let configDir: string;

beforeAll(async () => {
  configDir = await mkdtemp(path.join(tmpdir(), 'xlstm-configs-'));
  await fsp.copyFile(new URL('../../../config/llm.yaml', import.meta.url), path.join(configDir, 'llm.yaml'));
  await fsp.writeFile(path.join(configDir, 'broken.yaml'), 'model:\n  inp_dim: -3\n');
  t = await startTestServer({ ids: ['tiny', 'second'], defaultId: 'tiny', configs: configFolderSource(configDir) });
});

afterAll(async () => {
  await t?.close();
  if (configDir) await fsp.rm(configDir, { recursive: true, force: true });
});

describe('checkpoint queries', () => {
  it('pages through checkpoints with cursors', async () => {
    const page = `query($after: String) { checkpoints(first: 1, after: $after) { items { id } totalCount hasNextPage endCursor } }`;
    type Page = { checkpoints: { items: { id: string }[]; totalCount: number; hasNextPage: boolean; endCursor: string } };
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const r: Page['checkpoints'] = (await t.query<Page>(page, { after })).data!.checkpoints;
      expect(r.totalCount).toBe(2);
      seen.push(...r.items.map((i) => i.id));
      if (!r.hasNextPage) break;
      after = r.endCursor;
    }
    expect(seen.sort()).toEqual(['second', 'tiny']);
  });

  it('describes one checkpoint: config, meta, size, sha256, parent and whether it is loaded', async () => {
    const r = await t.query(`{
      checkpoint(id: "tiny") { id parent step sha256 dtype sizeBytes loaded isDefault
        config { vocabSize numLayers signature inpDim headDim headNum pFactor kerSize tieWeights } }
      missing: checkpoint(id: "nope") { id }
    }`);
    const meta = JSON.parse(await fsp.readFile(path.join(t.root, 'tiny', 'meta.json'), 'utf8')) as { sha256: string };
    expect(r.data).toEqual({
      checkpoint: {
        id: 'tiny',
        parent: null,
        step: 0,
        sha256: meta.sha256,
        dtype: 'F32',
        sizeBytes: expect.any(Number),
        loaded: true,
        isDefault: true,
        config: { vocabSize: 50258, numLayers: 1, signature: [1, 1], inpDim: 16, headDim: 8, headNum: 2, pFactor: [2, 1.3333333], kerSize: 4, tieWeights: false },
      },
      missing: null,
    });
  });

  it('filters by parent', async () => {
    await writeTinyCheckpoint(t.root, 'child', 3, { parent: 'second' });
    try {
      const r = await t.query('{ checkpoints(filter: { parent: "second" }) { items { id parent } } }');
      expect(r.data).toEqual({ checkpoints: { items: [{ id: 'child', parent: 'second' }] } });
    } finally {
      await fsp.rm(path.join(t.root, 'child'), { recursive: true });
    }
  });
});

describe('models', () => {
  it('loads, lists and unloads models', async () => {
    const loaded = await t.query('mutation { loadModel(checkpoint: "second") { checkpoint phase backend parameterCount stateBytesPerSequence } }');
    expect(loaded.data).toEqual({
      loadModel: { checkpoint: 'second', phase: 'READY', backend: 'cpu', parameterCount: expect.any(Number), stateBytesPerSequence: expect.any(Number) },
    });
    const models = (await t.query<{ models: { checkpoint: string }[] }>('{ models { checkpoint } }')).data!.models.map((m) => m.checkpoint);
    expect(models.sort()).toEqual(['second', 'tiny']);
    const refused = await t.query('mutation { deleteCheckpoint(id: "second") }');
    expect(refused.errors?.[0].message).toMatch(/^id expected a checkpoint that is not loaded, but "second" is loaded\. Hint: run unloadModel first\./);
    expect((await t.query('mutation { unloadModel(checkpoint: "second") }')).data).toEqual({ unloadModel: true });
    expect((await t.query('mutation { unloadModel(checkpoint: "second") }')).data).toEqual({ unloadModel: false });
  });

  it('refuses to delete the default checkpoint, and deletes another', async () => {
    const refused = await t.query('mutation { deleteCheckpoint(id: "tiny") }');
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(refused.errors?.[0].message).toMatch(/^id expected a checkpoint other than the default/);
    await writeTinyCheckpoint(t.root, 'scrap', 4);
    expect((await t.query('mutation { deleteCheckpoint(id: "scrap") }')).data).toEqual({ deleteCheckpoint: true });
    expect((await t.query('{ checkpoint(id: "scrap") { id } }')).data).toEqual({ checkpoint: null });
  });

  it('reports health: backend, version, uptime and sequence counts', async () => {
    const r = await t.query('{ health { phase backend backendDetail version uptimeSeconds activeSequences queuedSequences modelsLoaded } }');
    expect(r.data).toEqual({
      health: { phase: 'SERVING', backend: 'cpu', backendDetail: 'plain JavaScript kernels', version: '0.0.0-test', uptimeSeconds: expect.any(Number), activeSequences: 0, queuedSequences: 0, modelsLoaded: 1 },
    });
  });
});

describe('configs', () => {
  it('lists config files with parsed values, raw YAML and validation errors', async () => {
    const r = await t.query<{ configs: { name: string; valid: boolean; errors: string[]; values: { model?: { head_num: number } } | null; yaml: string }[] }>(
      '{ configs { name valid errors values yaml } }',
    );
    const [broken, llm] = r.data!.configs;
    expect(broken).toMatchObject({ name: 'broken', valid: false, values: null, yaml: 'model:\n  inp_dim: -3\n' });
    expect(broken.errors[0]).toMatch(/broken\.yaml.*inp_dim.*expected/);
    expect(llm).toMatchObject({ name: 'llm', valid: true, errors: [] });
    expect(llm.values?.model?.head_num).toBe(4);
  });

  it('finds one config by name, and null for an absent one', async () => {
    const r = await t.query('{ llm: config(name: "llm") { name valid } absent: config(name: "absent") { name } }');
    expect(r.data).toEqual({ llm: { name: 'llm', valid: true }, absent: null });
  });
});
