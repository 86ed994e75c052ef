import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { XlstmModel } from '../../src/core/index.ts';
import type { Batch } from '../../src/data/index.ts';
import { gradientSum, WorkerPool } from '../../src/train/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { maxRelDiff } from '../support/tiny-model.ts';
import { webgpuTitle, webgpuUnavailable } from '../support/webgpu.ts';
import { TINY_TRAIN_MODEL } from './support/synthetic.ts';

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
});
