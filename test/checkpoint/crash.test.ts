/**
 * kill -9 of a process while it writes a checkpoint, with a real child process: the previous checkpoint stays
 * intact and loadable, no half-written folder is ever listed, and the repair at start-up leaves exactly one
 * complete checkpoint and no leftovers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listCheckpointFolders, listLeftoverFolders, loadCheckpoint, repairInterruptedWrites } from '../../src/checkpoint/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { killHard, spawnChild } from '../support/children/spawn.ts';

const WRITER = new URL('../support/children/checkpoint-writer.ts', import.meta.url).pathname;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'xlstm-crash-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const lastNumber = (lines: readonly string[], word: string): number =>
  Math.max(0, ...lines.filter((l) => l.startsWith(`${word} `)).map((l) => Number(l.slice(word.length + 1))));

describe('kill -9 during checkpoint writes', () => {
  it('keeps the previous checkpoint intact and lists no half-written one, at several kill points', async () => {
    const rng = new Rng(2024);
    const dir = path.join(root, 'ck');
    for (let round = 0; round < 4; round++) {
      const child = spawnChild(WRITER, [dir]);
      // At least one complete write of this round, then a kill at a seeded moment inside the following writes.
      const target = 2 + rng.int(2);
      await child.waitFor((l) => l === `done ${target - 1}`);
      await new Promise((r) => setTimeout(r, rng.int(120)));
      await killHard(child);
      const done = lastNumber(child.lines, 'done');
      const begun = lastNumber(child.lines, 'begin');

      // What a reader sees right after the crash, before any repair: never a half-written folder.
      const listed = await listCheckpointFolders(root);
      expect(listed.every((id) => id === 'ck')).toBe(true);
      if (listed.includes('ck')) {
        const step = (await loadCheckpoint(dir)).meta.step;
        expect(step).toBeGreaterThanOrEqual(done);
        expect(step).toBeLessThanOrEqual(begun);
      }

      // Start-up repair: exactly one complete checkpoint, the last finished one or the one being swapped in.
      const report = await repairInterruptedWrites(root, { staleMs: 0 });
      expect(await listCheckpointFolders(root)).toEqual(['ck']);
      expect(await listLeftoverFolders(root)).toEqual([]);
      const loaded = await loadCheckpoint(dir, { optimizer: true });
      expect(loaded.meta.step).toBeGreaterThanOrEqual(done);
      expect(loaded.meta.step).toBeLessThanOrEqual(begun);
      expect(loaded.optimizer?.size).toBe(2 * loaded.tensors.size);
      // Whatever repair did, it named only this checkpoint's folders.
      for (const name of [...report.restored, ...report.removed]) expect(name).toMatch(/^(ck|\.ck\.(tmp|old)-\w+)$/);
    }
  });
});
