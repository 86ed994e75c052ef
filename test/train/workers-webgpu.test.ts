import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { weightEntries, XlstmModel } from '../../src/core/index.ts';
import type { Batch } from '../../src/data/index.ts';
import { gradientSum, localStep, optimizerFor, WorkerPool } from '../../src/train/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { maxRelDiff } from '../support/tiny-model.ts';
import { webgpuTitle, webgpuUnavailable } from '../support/webgpu.ts';
import { TINY_TRAIN_MODEL, tinyRunConfig } from './support/synthetic.ts';

const PAD = 63;
// The probe selects webgpu in this process; the trainer side of these tests runs on cpu.
const reason = await webgpuUnavailable();

function batch(rows: number, length: number, seed: number): Batch {
  const rng = new Rng(seed);
  return { tokens: Int32Array.from({ length: rows * length }, () => rng.int(PAD)), batch: rows, length };
}

describe.skipIf(reason !== null)(webgpuTitle('data-parallel workers on webgpu', reason), () => {
  let model: XlstmModel;
  let pool: WorkerPool;
  beforeAll(async () => {
    await selectBackend('cpu');
    model = XlstmModel.init(TINY_TRAIN_MODEL, 5).asTrainable();
    // Workers inherit XLSTM_WEBGPU_BACKEND from the probe (opengles on a CPU-only machine).
    pool = await WorkerPool.start({ devices: 2, model, padId: PAD, backend: 'webgpu' });
  }, 120_000);
  afterAll(async () => {
    await pool?.close();
    model?.dispose();
  });

  it("should report the workers' webgpu adapter and give the cpu gradient sum of the whole batch", async () => {
    expect(pool.placements.map((p) => p.backend)).toEqual(['webgpu', 'webgpu']);
    expect(pool.placements[0].detail).toMatch(/^Dawn /);
    const whole = batch(4, 12, 3);
    const remote = await pool.compute([whole]);
    const local = await gradientSum(model, [whole], PAD);
    expect(remote.count).toBe(local.count);
    expect(Math.abs(remote.lossSum - local.lossSum) / local.lossSum).toBeLessThan(1e-5);
    const worst = Math.max(...remote.grads.map((g, j) => maxRelDiff(g.dataSync(), local.grads[j].dataSync())));
    expect(worst).toBeLessThan(1e-4);
    [...remote.grads, ...local.grads].forEach((t) => t.dispose());
  }, 120_000);

  // One worker owns every weight's update; two swap shards through the exchange files first (worker-shard.ts).
  it.each([1, 2])('should run the update in %i webgpu worker(s) as the cpu step does, and sync it back between steps', async (devices) => {
    // eps 1e-3: Adam divides by |g| + eps, which would magnify the backends' rounding on tiny gradients.
    // A clip below the first steps' norms, so the clipping scale is exercised too; weight decay on.
    const cfg = tinyRunConfig('unused', { optimizer: { lr: 1e-2, eps: 1e-3, weight_decay: 0.1 }, trainer: { grad_clip: 0.5 } });
    const [local, pooled] = [model.asTrainable(), model.asTrainable()];
    const [localOpt, pooledOpt] = [optimizerFor(local, cfg), optimizerFor(pooled, cfg)];
    const owner = await WorkerPool.start({ devices, model: pooled, optimizer: pooledOpt, padId: PAD, backend: 'webgpu' });
    const sameWeights = async () => {
      await owner.sync();
      const want = weightEntries(local.weights).map(([, t]) => t.dataSync());
      const worst = Math.max(...weightEntries(pooled.weights).map(([, t], j) => maxRelDiff(t.dataSync(), want[j])));
      expect(worst).toBeLessThan(1e-4);
    };
    try {
      for (const s of [1, 2, 3]) {
        const whole = batch(4, 12, 10 + s);
        const want = await localStep(local, localOpt, [whole], { padId: PAD, lr: 1e-2, step: s });
        const got = await owner.step([whole], 1e-2, s);
        expect(Math.abs(got.loss - want.loss) / want.loss).toBeLessThan(1e-5);
        expect(Math.abs(got.gradNorm - want.gradNorm) / want.gradNorm).toBeLessThan(1e-4);
        expect(got.clipped).toBe(want.clipped);
        if (s === 2) await sameWeights();
      }
      await sameWeights();
    } finally {
      await owner.close();
      [localOpt, pooledOpt].forEach((o) => o.dispose());
      [local, pooled].forEach((m) => m.dispose());
    }
  }, 120_000);
});
