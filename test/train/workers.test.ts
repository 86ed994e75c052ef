import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { loadCheckpoint } from '../../src/checkpoint/index.ts';
import { weightEntries, XlstmModel } from '../../src/core/index.ts';
import type { Batch } from '../../src/data/index.ts';
import { localStep, optimizerFor, WorkerPool, type StartEvent, type StepOutcome, type TrainingRun } from '../../src/train/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { TEST_BACKENDS } from '../support/backends.ts';
import { CharCodec } from './support/char-codec.ts';
import { collect, maxWeightDiff, removeTempDirs, tempDir } from './support/run-helpers.ts';
import { TINY_TRAIN_MODEL, tinyRunConfig, writeRepeatDataset } from './support/synthetic.ts';

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
    // The resumable checkpoint carries the moments the workers kept, as the in-process optimizer has them.
    const [one, two] = await Promise.all(['one-last', 'two-last'].map((id) => loadCheckpoint(path.join(root, id), { optimizer: true })));
    expect(two.optimizer!.get('step')!.data[0]).toBe(3);
    for (const [key, { data }] of one.optimizer!) {
      const scale = Math.max(1e-12, ...Array.from(data, Math.abs));
      expect(Array.from(two.optimizer!.get(key)!.data).reduce((m, x, i) => Math.max(m, Math.abs(x - data[i])), 0) / scale, key).toBeLessThan(1e-4);
    }
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

describe.each(TEST_BACKENDS)('workers that own the update, on %s', (backend) => {
  const PAD = 63;
  const batch = (rows: number, seed: number, pad = false): Batch => {
    const rng = new Rng(seed);
    return { tokens: Int32Array.from({ length: rows * 9 }, () => (pad ? PAD : rng.int(PAD))), batch: rows, length: 9 };
  };
  // A tight clip, so that the workers' shared gradient norm decides every update's scale.
  const cfg = tinyRunConfig('unused', { optimizer: { lr: 1e-2, eps: 1e-6 }, trainer: { grad_clip: 0.05 } });
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

  beforeAll(async () => {
    await selectBackend(backend);
  });

  // Three workers once (the reduce over several parts), two on the second backend (process start-up is most of the time).
  const devices = backend === TEST_BACKENDS[0] ? 3 : 2;

  it(`should step as one process does with ${devices} workers and uneven rows, survive rejected steps, and sync weights and moments back`, async () => {
    const start = XlstmModel.init(TINY_TRAIN_MODEL, 5);
    const [local, pooled] = [start.asTrainable(), start.asTrainable()];
    start.dispose();
    const [localOpt, pooledOpt] = [optimizerFor(local, cfg), optimizerFor(pooled, cfg)];
    const pool = await WorkerPool.start({ devices, model: pooled, optimizer: pooledOpt, padId: PAD, backend });
    try {
      expect(() => pool.weightsChanged()).toThrow(/expected a gradient-only pool, but this one owns the update/);
      const compare = (a: StepOutcome, b: StepOutcome) => {
        expect(b.tokens).toBe(a.tokens);
        expect(b.clipped).toBe(true);
        expect(a.clipped).toBe(true);
        expect(Math.abs(b.loss - a.loss) / a.loss).toBeLessThan(1e-5);
        expect(Math.abs(b.gradNorm - a.gradNorm) / a.gradNorm).toBeLessThan(1e-4);
      };
      // 5 rows over the workers (2, 2, 1 or 3, 2), and shards that cut through tensors.
      const steps = [batch(5, 1), batch(5, 2)];
      for (const [j, b] of steps.entries()) compare(await localStep(local, localOpt, [b], { padId: PAD, lr: 1e-2, step: j + 1 }), await pool.step([b], 1e-2, j + 1));
      await expect(pool.step([batch(4, 3, true)], 1e-2, 3)).rejects.toThrow(/training step 3 expected at least one target token, but every row was padding/);
      await expect(pool.step([batch(4, 3)], Number.NaN, 3)).rejects.toThrow(/AdamW learning rate expected a finite number >= 0, but got NaN/);
      // Had the rejected steps touched a worker's shard or moments, this step would part ways.
      compare(await localStep(local, localOpt, [batch(3, 4)], { padId: PAD, lr: 5e-3, step: 3 }), await pool.step([batch(3, 4)], 5e-3, 3));

      const before = weightEntries(pooled.weights).map(([, t]) => Float32Array.from(t.dataSync()));
      await pool.sync();
      const after = weightEntries(pooled.weights).map(([, t]) => t.dataSync());
      expect(Math.max(...after.map((a, j) => maxDiff(a, before[j])))).toBeGreaterThan(1e-3); // the trainer's copy was behind
      const want = weightEntries(local.weights).map(([, t]) => t.dataSync());
      expect(Math.max(...after.map((a, j) => maxDiff(a, want[j])))).toBeLessThan(1e-5);
      const [mine, theirs] = [localOpt.exportState(), pooledOpt.exportState()];
      expect(theirs.get('step')!.data[0]).toBe(3);
      expect([...theirs.keys()].sort()).toEqual([...mine.keys()].sort());
      for (const [key, { data }] of mine) {
        const scale = Math.max(1e-12, ...Array.from(data, Math.abs));
        expect(maxDiff(theirs.get(key)!.data, data) / scale, key).toBeLessThan(1e-4);
      }
    } finally {
      await pool.close();
      [localOpt, pooledOpt].forEach((o) => o.dispose());
      [local, pooled].forEach((m) => m.dispose());
    }
  }, 60_000);
});
