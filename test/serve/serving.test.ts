import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../src/backend/select.ts';
import { CheckpointCatalogue, pageOf, Serving, type GenerateEvent, type GenerateStream } from '../../src/serve/index.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { XlstmError } from '../../src/util/errors.ts';
import { tinyRoot, writeTinyCheckpoint } from '../support/tiny-checkpoint.ts';

let root: string;
let remove: () => Promise<void>;
let serving: Serving;
const tokenizer = Tokenizer.gpt2();

beforeAll(async () => {
  await selectBackend('cpu');
  ({ root, remove } = await tinyRoot(['tiny', 'other']));
  await fsp.writeFile(path.join(root, 'DEFAULT'), 'tiny\n');
  serving = await Serving.open({ checkpointsRoot: root, limits: { maxPromptTokens: 8 } });
  await serving.loadDefault();
});

afterAll(async () => {
  await serving?.close();
  await remove?.();
});

async function collect(stream: GenerateStream): Promise<GenerateEvent[]> {
  const events: GenerateEvent[] = [];
  for await (const e of stream) events.push(e);
  return events;
}

async function caught(p: Promise<unknown> | (() => unknown)): Promise<XlstmError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof XlstmError) return e;
    throw e;
  }
  throw new Error('expected an XlstmError');
}

describe('CheckpointCatalogue', () => {
  it('takes the default from the DEFAULT file, or the only folder', async () => {
    expect((await CheckpointCatalogue.open(root)).defaultId).toBe('tiny');
    const single = await tinyRoot(['solo']);
    try {
      expect((await CheckpointCatalogue.open(single.root)).defaultId).toBe('solo');
    } finally {
      await single.remove();
    }
  });

  it.each(['../tiny', 'a/b', '.hidden', '', 'x'.repeat(200), '..'])('confines id %j to the root', async (id) => {
    const e = await caught(() => serving.catalogue.dirOf(id));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/expected a checkpoint id \(a folder name of letters, digits/);
  });

  it('puts back, when it opens, a checkpoint whose replacement was killed between its two renames', async () => {
    const crashed = await tinyRoot(['ck']);
    try {
      // What writeFolderAtomic leaves when killed after moving the old folder aside and before moving the new one in.
      await fsp.rename(path.join(crashed.root, 'ck'), path.join(crashed.root, '.ck.old-abc123'));
      const catalogue = await CheckpointCatalogue.open(crashed.root);
      expect(await catalogue.ids()).toEqual(['ck']);
      expect((await catalogue.info('ck'))?.meta.id).toBe('ck');
    } finally {
      await crashed.remove();
    }
  });

  it('refuses a checkpoint folder that is a link out of the root', async () => {
    const outside = await tinyRoot(['elsewhere']);
    try {
      await fsp.symlink(path.join(outside.root, 'elsewhere'), path.join(root, 'linked'));
      // Links are not listed as checkpoints, so the id is unknown here; the real path is checked as well.
      expect((await caught(() => serving.catalogue.requireDir('linked'))).code).toBe('CHECKPOINT_NOT_FOUND');
    } finally {
      await fsp.rm(path.join(root, 'linked'), { force: true });
      await outside.remove();
    }
  });

  it('describes a checkpoint from meta.json and config.yaml, with its size', async () => {
    const info = await serving.catalogue.info('tiny');
    expect(info?.meta.id).toBe('tiny');
    expect(info?.config.vocab_size).toBe(50258);
    expect(info?.isDefault).toBe(true);
    const files = await fsp.readdir(path.join(root, 'tiny'));
    let size = 0;
    for (const f of files) size += (await fsp.stat(path.join(root, 'tiny', f))).size;
    expect(info?.sizeBytes).toBe(size);
    expect(await serving.catalogue.info('absent')).toBeNull();
  });

  it('lists newest first and filters by parent and id', async () => {
    await writeTinyCheckpoint(root, 'child-1', 11, { parent: 'tiny', created: '2030-01-01T00:00:00Z' });
    try {
      const all = await serving.catalogue.list();
      expect(all[0].id).toBe('child-1');
      expect((await serving.catalogue.list({ parent: 'tiny' })).map((c) => c.id)).toEqual(['child-1']);
      expect((await serving.catalogue.list({ idContains: 'OTH' })).map((c) => c.id)).toEqual(['other']);
    } finally {
      await fsp.rm(path.join(root, 'child-1'), { recursive: true });
    }
  });

  it('pages with opaque cursors and refuses a cursor it never gave', () => {
    const items = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id }));
    const first = pageOf(items, 2);
    expect(first.items.map((i) => i.id)).toEqual(['a', 'b']);
    expect(first.hasNextPage).toBe(true);
    const second = pageOf(items, 2, first.endCursor);
    expect(second.items.map((i) => i.id)).toEqual(['c', 'd']);
    const last = pageOf(items, 2, second.endCursor);
    expect([last.items.map((i) => i.id), last.hasNextPage, last.totalCount]).toEqual([['e'], false, 5]);
    expect(() => pageOf(items, 2, 'bm9wZQ')).toThrow(/after expected a cursor from an earlier page/);
  });
});

describe('Serving', () => {
  it('streams each token as soon as it exists, with positions after the prompt and UTF-8-safe text', async () => {
    const prompt = 'Once upon a time';
    const events = await collect(await serving.generate({ prompts: [prompt], maxTokens: 40, seed: 3 }));
    const tokens = events.filter((e) => e.kind === 'token');
    const finish = events.at(-1);
    expect(finish).toMatchObject({ kind: 'finish', promptIndex: 0, finishReason: 'LENGTH', generatedTokens: 40, seed: 3 });
    const promptLength = tokenizer.encode(prompt).length;
    expect(tokens.map((t) => t.position)).toEqual(tokens.map((_, i) => promptLength + i));
    // The oracle is the tokenizer's own decode of all ids: the streamed text is it, less a dangling partial character.
    const text = tokens.map((t) => t.text).join('');
    const decoded = tokenizer.decode(tokens.map((t) => t.tokenId));
    expect(decoded.startsWith(text)).toBe(true);
    expect(decoded.slice(text.length)).toMatch(/^\uFFFD*$/);
    // No lone surrogate: every piece is whole characters.
    for (const t of tokens) expect(t.text).toBe(Buffer.from(t.text, 'utf8').toString('utf8'));
    expect(tokens.every((t) => t.logprob <= 0)).toBe(true);
  });

  it('reproduces a run from the seed it reports, and differs with another seed', async () => {
    const ids = (events: GenerateEvent[]) => events.flatMap((e) => (e.kind === 'token' ? [e.tokenId] : []));
    const first = await collect(await serving.generate({ prompts: ['Hello'], maxTokens: 12 }));
    const seed = (first.at(-1) as { seed: number }).seed;
    const again = await collect(await serving.generate({ prompts: ['Hello'], maxTokens: 12, seed }));
    const other = await collect(await serving.generate({ prompts: ['Hello'], maxTokens: 12, seed: seed + 1 }));
    expect(ids(again)).toEqual(ids(first));
    expect(ids(other)).not.toEqual(ids(first));
  });

  it('stops right after a stop string, cutting the token that completes it', async () => {
    const greedy = { prompts: ['The'], maxTokens: 20, temperature: 0, seed: 1 };
    const full = (await collect(await serving.generate(greedy))).flatMap((e) => (e.kind === 'token' ? [e.text] : []));
    const text = full.join('');
    // A stop string that ends inside the fifth token's text.
    const before = full.slice(0, 4).join('');
    const stop = text.slice(before.length - 2, before.length + 1);
    const events = await collect(await serving.generate({ ...greedy, stop: [stop] }));
    const kept = events.flatMap((e) => (e.kind === 'token' ? [e.text] : [])).join('');
    const end = text.indexOf(stop) + stop.length;
    expect(kept).toBe(text.slice(0, end));
    expect(events.at(-1)).toMatchObject({ finishReason: 'STOP' });
  });

  it('runs several prompts of one request side by side, each finishing once', async () => {
    const events = await collect(await serving.generate({ prompts: ['a', 'bb bb', 'c c c'], maxTokens: 5, seed: 9 }));
    const finishes = events.filter((e) => e.kind === 'finish').map((e) => e.promptIndex).sort();
    expect(finishes).toEqual([0, 1, 2]);
    for (const i of [0, 1, 2]) expect(events.filter((e) => e.kind === 'token' && e.promptIndex === i)).toHaveLength(5);
  });

  it('refuses a prompt longer than the token limit, naming it', async () => {
    const e = await caught(serving.generate({ prompts: ['short', 'one two three four five six seven eight nine'] }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/^input\.prompts expected at most 8 tokens in prompt 1, but got 9\./);
  });

  it('tells an unknown checkpoint from one that is not loaded', async () => {
    expect((await caught(serving.generate({ prompts: ['a'], checkpoint: 'nope' }))).code).toBe('CHECKPOINT_NOT_FOUND');
    const notLoaded = await caught(serving.generate({ prompts: ['a'], checkpoint: 'other' }));
    expect(notLoaded.code).toBe('MODEL_NOT_LOADED');
    expect(notLoaded.message).toMatch(/loadModel\(checkpoint: "other"\)/);
  });

  it('cancels open streams with CANCELLED when their model is unloaded, and frees it', async () => {
    await serving.registry.load('other');
    expect(serving.registry.list().find((m) => m.id === 'other')).toMatchObject({ phase: 'ready', parameterCount: expect.any(Number) });
    const stream = await serving.generate({ prompts: ['a'], checkpoint: 'other', maxTokens: 1000, seed: 1 });
    const first = await stream.next();
    expect(first.value).toMatchObject({ kind: 'token' });
    await serving.registry.unload('other');
    const rest: GenerateEvent[] = [];
    for await (const e of stream) rest.push(e);
    expect(rest.at(-1)).toMatchObject({ kind: 'finish', finishReason: 'CANCELLED' });
    expect(serving.registry.isLoaded('other')).toBe(false);
  });

  it('refuses to delete the default or a loaded checkpoint, and deletes another', async () => {
    expect((await caught(serving.deleteCheckpoint('tiny'))).message).toMatch(/^id expected a checkpoint other than the default/);
    await writeTinyCheckpoint(root, 'doomed', 5);
    await serving.registry.load('doomed');
    expect((await caught(serving.deleteCheckpoint('doomed'))).message).toMatch(/^id expected a checkpoint that is not loaded/);
    await serving.registry.unload('doomed');
    await serving.deleteCheckpoint('doomed');
    expect(await serving.catalogue.info('doomed')).toBeNull();
    expect((await fsp.readdir(root)).filter((n) => n.includes('doomed'))).toEqual([]);
  });
});

describe('Serving on decode threads', () => {
  it('streams exactly the in-process events for a seed; a crashed decode thread ends its streams with ERROR, and serving goes on', async () => {
    const pooled = await Serving.open({ checkpointsRoot: root, limits: { maxPromptTokens: 8 }, decodeThreads: 2 });
    try {
      await pooled.loadDefault();
      const target = await pooled.registry.target();
      expect(target.scheduler.decodeWorkers).toHaveLength(2);
      const request = { prompts: ['Once upon', 'a time', 'The'], maxTokens: 12, seed: 21 };
      const tokens = (events: GenerateEvent[]) => events.filter((e) => e.kind === 'token').sort((a, b) => a.promptIndex - b.promptIndex);
      // The oracle: the same request on the in-process scheduler (tokens, text, positions and log-probabilities).
      const here = tokens(await collect(await serving.generate(request)));
      expect(here).toHaveLength(36);
      expect(tokens(await collect(await pooled.generate(request)))).toEqual(here);

      const stream = await pooled.generate({ prompts: ['a', 'b'], maxTokens: 1000, seed: 1 });
      expect((await stream.next()).value).toMatchObject({ kind: 'token' });
      const [, crashed] = target.scheduler.decodeWorkers;
      await crashed.terminate();
      const rest: GenerateEvent[] = [];
      for await (const e of stream) rest.push(e);
      for (const promptIndex of [0, 1]) {
        expect(rest.filter((e) => e.kind === 'error' && e.promptIndex === promptIndex)).toEqual([
          { kind: 'error', promptIndex, code: 'BACKEND', message: expect.stringMatching(/^decode worker 1 expected to keep running, but it exited .* Hint: retry the request/) },
        ]);
        expect(rest.filter((e) => e.kind === 'finish' && e.promptIndex === promptIndex)).toEqual([expect.objectContaining({ finishReason: 'ERROR' })]);
      }
      // New threads serve the next request exactly as before the crash.
      expect(tokens(await collect(await pooled.generate(request)))).toEqual(here);
      expect(target.scheduler.decodeWorkers).not.toContain(crashed);
    } finally {
      await pooled.close();
    }
  });
});
