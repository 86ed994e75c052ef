/** Where the run queue of a server may read from: config names, checkpoint ids and datasets, each confined to its root. */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../src/backend/select.ts';
import { checkpointFinder, configResolver, createRunQueue } from '../../src/cli/runs.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import type { RunQueue } from '../../src/train/index.ts';
import { CharCodec } from '../train/support/char-codec.ts';
import { tinyYaml } from '../train/support/queue.ts';
import { tempDir } from '../train/support/run-helpers.ts';
import { writeRepeatDataset } from '../train/support/synthetic.ts';

describe('a server run queue with a data root', () => {
  let home: string;
  let dataRoot: string;
  let outside: string;
  let store: Store;
  let queue: RunQueue;

  beforeAll(async () => {
    await selectBackend('cpu');
    home = tempDir('runs-confine');
    dataRoot = path.join(home, 'data');
    writeRepeatDataset(path.join(dataRoot, 'ok'), 1);
    outside = writeRepeatDataset(path.join(home, 'elsewhere'), 2);
    symlinkSync(outside, path.join(dataRoot, 'link-out'));
    store = openStore(home);
    queue = createRunQueue({ store, checkpointsRoot: path.join(home, 'checkpoints'), configDir: path.join(home, 'config'), workDir: home, dataRoot, codecFor: () => new CharCodec(), backend: 'cpu' });
  });

  afterAll(async () => {
    await queue?.close();
    store?.close();
  });

  it('queues a run whose dataset is inside the data root', async () => {
    const run = await queue.startTraining({ config: tinyYaml('data/ok') });
    expect(run.phase).toBe('QUEUED');
    expect(queue.cancel(run.id).phase).toBe('CANCELLED');
  });

  it.each<[string, () => string, RegExp]>([
    ['an absolute path outside', () => outside, /Hint: it is outside the data root;/],
    ['a path with ..', () => 'data/../elsewhere', /Hint: it has a '\.\.' segment;/],
    ['a link pointing out', () => 'data/link-out', /Hint: it leads through a symbolic link to .*elsewhere, outside the data root;/],
    ['/etc/passwd', () => '/etc/passwd', /Hint: it is outside the data root;/],
  ])('refuses a dataset at %s, starting nothing', async (_name, dataset, message) => {
    const before = store.runs.list().items.length;
    await expect(queue.startTraining({ config: tinyYaml(dataset()) })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/^data\.root expected a path inside the data root /) });
    await expect(queue.startTraining({ config: tinyYaml(dataset()) })).rejects.toThrow(message);
    expect(store.runs.list().items.length).toBe(before);
  });
});

describe('config names and checkpoint ids', () => {
  let root: string;
  beforeAll(() => {
    root = tempDir('ids');
    mkdirSync(path.join(root, 'checkpoints'));
    mkdirSync(path.join(root, 'config'));
  });

  it.each(['a..b', 'x'.repeat(200)])('refuses the config name %j', async (name) => {
    await expect(configResolver(path.join(root, 'config'))({ config: name, overrides: [] })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/^config expected a config name \(a file under the config folder, without \.yaml\), but got /),
    });
  });

  it.each(['../etc', '/etc', 'a/b', '.hidden', 'a\0b', ''])('refuses the checkpoint id %j', async (id) => {
    await expect(checkpointFinder(path.join(root, 'checkpoints'))(id)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/^checkpoint expected a checkpoint id \(a folder name of letters, digits, '\.', '_' or '-'\), but got /),
    });
  });

  it('refuses a checkpoint folder that is a link out of the root', async () => {
    const elsewhere = path.join(root, 'elsewhere-ck');
    mkdirSync(elsewhere);
    writeFileSync(path.join(elsewhere, 'model.safetensors'), '');
    symlinkSync(elsewhere, path.join(root, 'checkpoints', 'linked'));
    await expect(checkpointFinder(path.join(root, 'checkpoints'))('linked')).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/Hint: it leads through a symbolic link to .*elsewhere-ck, outside the checkpoints root;/),
    });
  });
});
