import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import type { RunUpdate } from '../../src/train/index.ts';
import { openQueue, tinyYaml } from './support/queue.ts';
import { removeTempDirs, tempDir } from './support/run-helpers.ts';
import { writeRepeatDataset } from './support/synthetic.ts';


/** Reads a run's updates until it ends; `onUpdate` may act on each one (cancel, shut down). */
async function follow(updates: AsyncIterable<RunUpdate>, onUpdate: (u: RunUpdate) => void = () => {}): Promise<RunUpdate[]> {
  const seen: RunUpdate[] = [];
  for await (const u of updates) {
    seen.push(u);
    onUpdate(u);
  }
  return seen;
}

describe('RunQueue', () => {
  let data: string;
  beforeAll(async () => {
    await selectBackend('cpu');
    data = writeRepeatDataset(path.join(tempDir('data'), 'repeat'), 4);
  });
  afterAll(removeTempDirs);

  it('should run a queued training to SUCCEEDED, recording metrics, samples and checkpoints', async () => {
    const { queue, store, checkpoints } = openQueue();
    queue.start();
    const run = await queue.startTraining({ config: tinyYaml(data) });
    expect(run.phase).toBe('QUEUED');
    const updates = await follow(queue.progress(run.id));
    expect(updates.filter((u) => u.event === null).map((u) => u.phase)).toEqual(['RUNNING', 'SUCCEEDED']);
    expect(updates.filter((u) => u.event?.kind === 'step').map((u) => (u.event as { step: number }).step)).toEqual([1, 2, 3, 4]);
    const done = store.runs.require(run.id);
    expect(done).toMatchObject({ phase: 'SUCCEEDED', step: 4, kind: 'TRAIN', seed: 5 });
    const metrics = store.runs.metrics(run.id);
    expect(metrics.map((m) => m.step)).toEqual([0, 1, 2, 3, 4]);
    expect(metrics[4].valLoss).toBeLessThan(metrics[0].valLoss!);
    expect(metrics[4].samples![0].startsWith('abca')).toBe(true);
    const last = store.checkpoints.get(`${run.id}-last`)!;
    expect(last).toMatchObject({ runId: run.id, step: 4, path: path.join(checkpoints, `${run.id}-last`) });
    expect(existsSync(path.join(last.path, 'optimizer.safetensors'))).toBe(true);
    await queue.close();
  });

  it('should cancel a running run within one step, keep its last checkpoint and end CANCELLED', async () => {
    const { queue, store } = openQueue();
    queue.start();
    const run = await queue.startTraining({ config: tinyYaml(data, { max_steps: 50, checkpoint: { every_n_steps: 1 } }) });
    let cancelledAt = -1;
    const updates = await follow(queue.progress(run.id), (u) => {
      if (u.event?.kind === 'checkpoint' && cancelledAt < 0) {
        cancelledAt = u.event.step;
        expect(queue.cancel(run.id).phase).toBe('CANCELLING');
      }
    });
    const steps = updates.filter((u) => u.event?.kind === 'step').map((u) => (u.event as { step: number }).step);
    expect(Math.max(...steps)).toBe(cancelledAt);
    expect(updates.at(-1)).toMatchObject({ phase: 'CANCELLED', event: null });
    expect(store.runs.require(run.id).phase).toBe('CANCELLED');
    expect(store.checkpoints.get(`${run.id}-last`)).toMatchObject({ step: cancelledAt });
    expect(() => queue.cancel(run.id)).toThrow(/expected no further events/);
    await queue.close();
  });

  it('should resume a RUNNING run from its last checkpoint after a restart, then run the queued ones', async () => {
    const first = openQueue();
    first.queue.start();
    const running = await first.queue.startTraining({ config: tinyYaml(data, { max_steps: 4, checkpoint: { every_n_steps: 2 } }) });
    const queued = await first.queue.startTraining({ config: tinyYaml(data, { max_steps: 2 }) });
    await follow(first.queue.progress(running.id), (u) => {
      if (u.event?.kind === 'checkpoint' && u.event.step === 2) void first.queue.close();
    });
    expect(first.store.runs.require(running.id)).toMatchObject({ phase: 'RUNNING', step: 2 });
    expect(first.store.runs.require(queued.id).phase).toBe('QUEUED');
    first.store.close();

    const second = openQueue(first.home);
    const resumed = second.queue.progress(running.id);
    const after = second.queue.progress(queued.id);
    second.queue.start();
    const updates = await follow(resumed);
    expect(updates.find((u) => u.event?.kind === 'start')?.event).toMatchObject({ resumed: true, step: 2 });
    expect(updates.filter((u) => u.event?.kind === 'step').map((u) => (u.event as { step: number }).step)).toEqual([3, 4]);
    expect(second.store.runs.require(running.id).phase).toBe('SUCCEEDED');
    await follow(after);
    expect(second.store.runs.require(queued.id)).toMatchObject({ phase: 'SUCCEEDED', step: 2 });
    await second.queue.close();
  });

  it.each([
    ['an unknown checkpoint', (q: ReturnType<typeof openQueue>['queue'], d: string) => q.startFineTune({ checkpoint: 'nope', dataset: d }), /CHECKPOINT_NOT_FOUND|checkpoint expected the id of a checkpoint/],
    ['a missing dataset', (q: ReturnType<typeof openQueue>['queue'], d: string) => q.startTraining({ config: tinyYaml(path.join(d, 'absent')) }), /dataset root .*absent expected to exist/],
    ['devices 0', (q: ReturnType<typeof openQueue>['queue'], d: string) => q.startTraining({ config: tinyYaml(d), devices: 0 }), /devices expected an integer >= 1, but got 0/],
    ['a negative learning rate', (q: ReturnType<typeof openQueue>['queue'], d: string) => q.startTraining({ config: tinyYaml(d), overrides: ['optimizer.lr=-0.1'] }), /optimizer.lr expected a number > 0, but got -0.1/],
    ['an unknown config key', (q: ReturnType<typeof openQueue>['queue'], d: string) => q.startTraining({ config: tinyYaml(d), overrides: ['trainer.max_step=3'] }), /unknown key "max_step".*did you mean "max_steps"/],
  ])('should refuse %s at once and start nothing', async (_label, start, message) => {
    const { queue, store } = openQueue();
    queue.start();
    await expect(start(queue, data)).rejects.toThrow(message);
    expect(store.runs.list().items).toHaveLength(0);
    expect(queue.depth).toBe(0);
    await queue.close();
  });
});
