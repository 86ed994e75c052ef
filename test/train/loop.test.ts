import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { loadCheckpoint, saveCheckpoint } from '../../src/checkpoint/index.ts';
import { XlstmModel, type NamedArray } from '../../src/core/index.ts';
import { prepareDataset } from '../../src/data/index.ts';
import type { CheckpointEvent, EvalEvent, StepEvent, TrainingRun } from '../../src/train/index.ts';
import { CharCodec } from './support/char-codec.ts';
import { collect, maxWeightDiff, removeTempDirs, tempDir } from './support/run-helpers.ts';
import { tinyRunConfig, writeRepeatDataset } from './support/synthetic.ts';

/** The resume bar. */
const RESUME_TOL = 1e-6;
const codec = new CharCodec();

const steps = (events: unknown[]) => events.filter((e): e is StepEvent => (e as StepEvent).kind === 'step');
const evals = (events: unknown[]) => events.filter((e): e is EvalEvent => (e as EvalEvent).kind === 'eval');
const saves = (events: unknown[]) => events.filter((e): e is CheckpointEvent => (e as CheckpointEvent).kind === 'checkpoint');

/** Mean next-token cross-entropy computed on the host from forward() logits: an oracle independent of the loss code. */
function hostLoss(model: XlstmModel, windows: Int32Array[], padId: number): number {
  let sum = 0;
  let n = 0;
  for (const w of windows) {
    const T = w.length - 1;
    const logits = tf.tidy(() => model.forward(tf.tensor2d(w.subarray(0, T), [1, T], 'int32'))).dataSync();
    const V = logits.length / T;
    for (let t = 0; t < T; t++) {
      const target = w[t + 1];
      if (target === padId) continue;
      const row = Array.from(logits.subarray(t * V, (t + 1) * V));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      sum += lse - row[target];
      n++;
    }
  }
  return sum / n;
}

describe('train()', () => {
  let data: string;
  beforeAll(async () => {
    await selectBackend('cpu');
    data = writeRepeatDataset(path.join(tempDir('data'), 'repeat'), 1);
  });
  afterAll(removeTempDirs);

  const run = (id: string, root: string, overrides: Parameters<typeof tinyRunConfig>[1] = {}, extra: Partial<TrainingRun> = {}): TrainingRun => ({
    id,
    kind: 'TRAIN',
    config: tinyRunConfig(data, overrides),
    codec,
    checkpointsRoot: root,
    ...extra,
  });

  it('should learn the repeat task below the unigram loss in 40 steps with a fixed seed', async () => {
    const events = await collect(run('learn', tempDir('learn'), { trainer: { max_steps: 40 }, optimizer: { lr: 0.05 } }));
    const [first, last] = [evals(events)[0], evals(events).at(-1)!];
    // Uniform guessing over 64 ids costs ln 64 = 4.16; knowing only letter frequencies ln 8 = 2.08.
    expect(first.step).toBe(0);
    expect(first.valLoss!).toBeGreaterThan(3.5);
    expect(last.step).toBe(40);
    expect(last.valLoss!).toBeLessThan(1.5);
    expect(steps(events)).toHaveLength(40);
    expect(events.at(-1)).toEqual({ kind: 'done', step: 40, reason: 'completed' });
  });

  it('should reach the same parameters at step 2k when stopped at step k and resumed', async () => {
    const root = tempDir('resume');
    const trainer = { max_steps: 6, every_n_steps: 3, checkpoint: { save_last: true, save_top_k: 0, every_n_steps: 3, dir: 'x' } };
    await collect(run('whole', root, { trainer }));
    const stopped = await collect(run('parted', root, { trainer }), (e) => e.kind === 'checkpoint' && e.step === 3);
    expect(stopped.at(-1)).toEqual({ kind: 'done', step: 3, reason: 'cancelled' });
    const resumed = await collect(run('parted', root, { trainer }, { resumeFrom: path.join(root, 'parted-last') }));
    expect(resumed[0]).toMatchObject({ kind: 'start', step: 3, resumed: true });
    expect(steps(resumed).map((e) => e.step)).toEqual([4, 5, 6]);
    expect(await maxWeightDiff(path.join(root, 'whole-last'), path.join(root, 'parted-last'))).toBeLessThanOrEqual(RESUME_TOL);
    const [a, b] = await Promise.all(['whole-last', 'parted-last'].map((id) => loadCheckpoint(path.join(root, id), { optimizer: true })));
    expect(b.meta.step).toBe(6);
    expect(b.meta.tokens_seen).toBe(a.meta.tokens_seen);
    expect([...b.optimizer!.keys()].sort()).toEqual([...a.optimizer!.keys()].sort());
  });

  it("should start a fine-tune from its checkpoint's weights: its first evaluation is the checkpoint's loss", async () => {
    const root = tempDir('finetune');
    await collect(run('base', root, { trainer: { max_steps: 4, checkpoint: { save_last: true, save_top_k: 0, every_n_steps: 0, dir: 'x' } } }));
    const baseDir = path.join(root, 'base-last');
    const events = await collect(run('tune', root, { trainer: { max_steps: 2 } }, { kind: 'FINETUNE', base: { id: 'base-last', dir: baseDir } }));
    const first = evals(events)[0];
    expect(first.step).toBe(0);

    const loaded = await loadCheckpoint(baseDir);
    const model = XlstmModel.fromArrays(loaded.config, loaded.tensors as ReadonlyMap<string, NamedArray>);
    const prepared = await prepareDataset(data, { encode: (t) => codec.encode(t), eosId: codec.eosId, padId: codec.padId, maxLength: 16, readChunk: 65536, valSplit: 0, seed: 3 });
    const windows = Array.from({ length: prepared.valid!.count }, (_, i) => {
      const out = new Int32Array(17);
      prepared.valid!.copyWindow(i, out, 0);
      return out;
    });
    const expected = hostLoss(model, windows, codec.padId);
    model.dispose();
    expect(Math.abs(first.valLoss! - expected)).toBeLessThan(1e-5);
  });

  it('should record the base checkpoint as the parent of every fine-tune checkpoint', async () => {
    const root = tempDir('parent');
    await collect(run('p', root, { trainer: { max_steps: 1, checkpoint: { save_last: true, save_top_k: 0, every_n_steps: 0, dir: 'x' } } }));
    const events = await collect(
      run('child', root, { trainer: { max_steps: 2, val_check_interval: 1, checkpoint: { save_last: true, save_top_k: 1, every_n_steps: 0, dir: 'x' } } }, {
        kind: 'FINETUNE',
        base: { id: 'p-last', dir: path.join(root, 'p-last') },
      }),
    );
    const written = saves(events);
    expect(written.length).toBeGreaterThanOrEqual(2);
    // Best-1 by val_loss: exactly one step folder survives, the one of lowest validation loss.
    const best = written.filter((c) => c.reason === 'best');
    const kept = best.filter((c) => existsSync(c.dir));
    // The -last folder is rewritten at each save: its latest event describes it.
    const survivors = new Map(written.filter((c) => existsSync(c.dir)).map((c) => [c.dir, c]));
    for (const c of survivors.values()) expect((await loadCheckpoint(c.dir)).meta).toMatchObject({ parent: 'p-last', run_id: 'child', step: c.step });
    expect(kept).toHaveLength(1);
    expect(kept[0].valLoss).toBe(Math.min(...best.map((c) => c.valLoss!)));
  });

  it('should fail at the first step whose loss is not finite and write no checkpoint for it', async () => {
    const root = tempDir('nan');
    await collect(run('ok', root, { trainer: { max_steps: 1, checkpoint: { save_last: true, save_top_k: 0, every_n_steps: 0, dir: 'x' } } }));
    const loaded = await loadCheckpoint(path.join(root, 'ok-last'));
    const tensors = new Map(loaded.tensors);
    const norm = tensors.get('norm_f.weight')!;
    tensors.set('norm_f.weight', { shape: norm.shape, data: norm.data.map((v, i) => (i === 0 ? NaN : v)) });
    await saveCheckpoint(path.join(root, 'poisoned'), { config: loaded.config, tensors, tokenizerJson: codec.toJson(), meta: {} });

    const tuned = run('nan', root, { trainer: { max_steps: 3, checkpoint: { save_last: true, save_top_k: 0, every_n_steps: 1, dir: 'x' } } }, {
      kind: 'FINETUNE',
      base: { id: 'poisoned', dir: path.join(root, 'poisoned') },
    });
    const seen: string[] = [];
    await expect(collect(tuned, (e) => void seen.push(e.kind) as unknown as boolean)).rejects.toThrow(/training step 1 expected a finite loss, but got NaN/);
    expect(seen).not.toContain('step');
    expect(existsSync(path.join(root, 'nan-last'))).toBe(false);
  });

  it('should leave no tensors behind after a run with evaluations, samples and checkpoints', async () => {
    const root = tempDir('leak');
    const before = tf.memory().numTensors;
    const events = await collect(
      run('leak', root, {
        trainer: { max_steps: 2, val_check_interval: 1, checkpoint: { save_last: true, save_top_k: 1, every_n_steps: 1, dir: 'x' } },
        inference: { prompts: ['abca', 'hg'], token_lim: 5 },
      }),
    );
    expect(evals(events).map((e) => e.samples.length)).toEqual([2, 2, 2]);
    expect(evals(events)[1].samples[0]).toMatch(/^abca[a-zA-Z0-9|_]{0,5}$/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('should split a step over accumulated micro-batches without changing the update', async () => {
    const root = tempDir('accumulate');
    const save = { save_last: true, save_top_k: 0, every_n_steps: 0, dir: 'x' };
    // eps 1e-6: Adam turns gradients at rounding-noise level (the sLSTM input-gate biases get almost
    // none at first) into O(lr) steps, so with eps 1e-8 summation order alone moves them by ~1e-5.
    const optimizer = { lr: 1e-3, eps: 1e-6 };
    await collect(run('one', root, { data: { batch_size: 8 }, optimizer, trainer: { max_steps: 3, checkpoint: save } }));
    // Two micro-batches of 4 read the same rows, in the same order, as one batch of 8.
    await collect(run('two', root, { data: { batch_size: 4 }, optimizer, trainer: { max_steps: 3, accumulate_grad_batches: 2, checkpoint: save } }));
    expect(await maxWeightDiff(path.join(root, 'one-last'), path.join(root, 'two-last'))).toBeLessThan(1e-5);
  });
});
