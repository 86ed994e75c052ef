/**
 * kill -9 during a training run, then a restart: with real child processes, the run resumes from its last
 * checkpoint on disk and ends exactly where an uninterrupted run with the same seed ends.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../src/backend/select.ts';
import { killHard, spawnChild } from '../support/children/spawn.ts';
import { openQueue, tinyYaml } from './support/queue.ts';
import { maxWeightDiff, tempDir } from './support/run-helpers.ts';
import { writeRepeatDataset } from './support/synthetic.ts';

const RUNNER = new URL('../support/children/train-run.ts', import.meta.url).pathname;
const STEPS = 16;

interface Line {
  run: string;
  phase: string;
  kind: string | null;
  step: number | null;
  resumed: boolean | null;
}

const parse = (lines: readonly string[]): Line[] => lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);

describe('kill -9 during a training run', () => {
  let data: string;
  beforeAll(async () => {
    await selectBackend('cpu');
    data = writeRepeatDataset(path.join(tempDir('crash-data'), 'repeat'), 4);
  });

  it('resumes from the last checkpoint after a restart and finishes with the weights of an uninterrupted run', async () => {
    const home = tempDir('crash-home');
    const first = spawnChild(RUNNER, [home, data, 'start', String(STEPS)]);
    await first.waitFor((l) => l.includes('"kind":"checkpoint"') && (JSON.parse(l) as Line).step! >= 4);
    await killHard(first);
    const before = parse(first.lines);
    const runId = before[0].run;
    const seenCheckpoint = Math.max(...before.filter((l) => l.kind === 'checkpoint').map((l) => l.step!));
    expect(before.some((l) => l.phase === 'SUCCEEDED')).toBe(false);

    // The -last folder as the restart finds it (absent only if the kill fell between the two renames of a swap).
    const lastDir = path.join(home, 'checkpoints', `${runId}-last`);
    let onDisk: number | null = null;
    try {
      onDisk = (JSON.parse(readFileSync(path.join(lastDir, 'meta.json'), 'utf8')) as { step: number }).step;
    } catch {
      onDisk = null;
    }

    const second = spawnChild(RUNNER, [home, data, 'resume', String(STEPS)]);
    await second.waitFor((l) => l === 'exit', 120_000);
    const after = parse(second.lines);
    const start = after.find((l) => l.kind === 'start');
    expect(start?.resumed).toBe(true);
    const resumedAt = start!.step!;
    expect(resumedAt).toBeGreaterThanOrEqual(seenCheckpoint);
    if (onDisk !== null) expect(resumedAt).toBe(onDisk);
    const steps = after.filter((l) => l.kind === 'step').map((l) => l.step);
    expect(steps).toEqual(Array.from({ length: STEPS - resumedAt }, (_, i) => resumedAt + 1 + i));
    expect(after.at(-1)).toMatchObject({ phase: 'SUCCEEDED', kind: null });

    // The oracle: the same run, never interrupted, in this process.
    const clean = openQueue();
    clean.queue.start();
    const run = await clean.queue.startTraining({ config: tinyYaml(data, { max_steps: STEPS, val_check_interval: 1000, checkpoint: { every_n_steps: 2 } }) });
    for await (const _ of clean.queue.progress(run.id)) void _;
    await clean.queue.close();
    clean.store.close();
    expect(await maxWeightDiff(lastDir, path.join(clean.checkpoints, `${run.id}-last`))).toBe(0);
  });
});
