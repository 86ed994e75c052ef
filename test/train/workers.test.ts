import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { loadCheckpoint } from '../../src/checkpoint/index.ts';
import type { StartEvent, TrainingRun } from '../../src/train/index.ts';
import { CharCodec } from './support/char-codec.ts';
import { collect, maxWeightDiff, removeTempDirs, tempDir } from './support/run-helpers.ts';
import { tinyRunConfig, writeRepeatDataset } from './support/synthetic.ts';

/** The data-parallel bar. */
const PARALLEL_TOL = 1e-5;
const codec = new CharCodec();

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

describe('data-parallel workers', () => {
  let data: string;
  beforeAll(async () => {
    await selectBackend('cpu');
    data = writeRepeatDataset(path.join(tempDir('data'), 'repeat'), 2);
  });
  afterAll(removeTempDirs);

  const save = { save_last: true, save_top_k: 0, every_n_steps: 0, dir: 'x' };
  const run = (id: string, root: string, devices: number, trainer: object = {}): TrainingRun => ({
    id,
    kind: 'TRAIN',
    // eps 1e-6: see the accumulation test in loop.test.ts (Adam magnifies rounding noise on near-zero gradients).
    config: tinyRunConfig(data, { optimizer: { lr: 1e-3, eps: 1e-6 }, data: { batch_size: 8 }, trainer: { max_steps: 3, devices, checkpoint: save, ...trainer } }),
    codec,
    checkpointsRoot: root,
    backend: 'cpu',
  });

  it('should give 2 workers with 4 rows each the parameters of 1 worker with 8 rows after 3 steps', async () => {
    const root = tempDir('parallel');
    const split = await collect(run('two', root, 2));
    const start = split[0] as StartEvent;
    expect(start.devices).toBe(2);
    expect(start.workerPids).toHaveLength(2);
    expect(start.workerPids).not.toContain(process.pid);
    await collect(run('one', root, 1));
    expect(await maxWeightDiff(path.join(root, 'one-last'), path.join(root, 'two-last'))).toBeLessThan(PARALLEL_TOL);
    // The workers are gone once the run is over.
    expect(await waitUntil(() => start.workerPids.every((pid) => !alive(pid)), 5_000)).toBe(true);
  });

  it('should compute in one worker process when isolated, with the same result as in process', async () => {
    const root = tempDir('isolate');
    const isolated = await collect({ ...run('apart', root, 1), isolate: true });
    const start = isolated[0] as StartEvent;
    expect(start.devices).toBe(1);
    expect(start.workerPids).toHaveLength(1);
    expect(start.workerPids[0]).not.toBe(process.pid);
    await collect(run('inside', root, 1));
    expect(await maxWeightDiff(path.join(root, 'inside-last'), path.join(root, 'apart-last'))).toBeLessThan(PARALLEL_TOL);
  });

  it('should fail the run cleanly when a worker dies: the others stop and the last checkpoint stays intact', async () => {
    const root = tempDir('dead');
    let pids: readonly number[] = [];
    const events = collect(run('dies', root, 2, { max_steps: 6, checkpoint: { ...save, every_n_steps: 2 } }), (e) => {
      if (e.kind === 'start') pids = e.workerPids;
      if (e.kind === 'checkpoint' && e.step === 2) process.kill(pids[1], 'SIGKILL');
      return false;
    });
    await expect(events).rejects.toThrow(/data-parallel worker 2 of 2 \(pid \d+\) expected to compute its gradients, but it exited unexpectedly \(signal SIGKILL\)/);
    expect(await waitUntil(() => !alive(pids[0]), 5_000)).toBe(true);
    const last = await loadCheckpoint(path.join(root, 'dies-last'), { optimizer: true });
    expect(last.meta.step).toBe(2);
    expect(last.optimizer?.get('step')?.data[0]).toBe(2);
    expect(existsSync(path.join(root, 'dies-step3'))).toBe(false);
  });
});
