import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { selectBackend } from '../../src/backend/select.ts';
import { sampleToken, XlstmModel, type ModelConfig } from '../../src/core/index.ts';
import { DecodePool, NOOP_OBSERVER, Scheduler, type Sampling, type SchedulerOptions, type SequenceEnd, type SequenceSpec } from '../../src/serve/index.ts';
import { XlstmError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';
import { expectNoTensorLeak, TINY_ONE_LAYER } from '../support/tiny-model.ts';

// A small vocabulary keeps these tests fast: the scheduler never needs a tokenizer.
const CONFIG: ModelConfig = TINY_ONE_LAYER;
const SAMPLING: Sampling = { temperature: 1, topK: 0, topP: 1 };

let model: XlstmModel;

beforeAll(async () => {
  await selectBackend('cpu');
  model = XlstmModel.init(CONFIG, 3);
});

afterAll(() => model.dispose());

interface Run {
  readonly tokens: number[];
  readonly end: Promise<SequenceEnd>;
  readonly spec: SequenceSpec;
}

/** A sequence that stops after `n` tokens and records what it got. */
function run(prompt: number[], n: number, seed: number, onToken?: (count: number) => void): Run {
  const tokens: number[] = [];
  let resolve!: (end: SequenceEnd) => void;
  const end = new Promise<SequenceEnd>((r) => (resolve = r));
  const spec: SequenceSpec = {
    promptTokens: prompt,
    sampling: SAMPLING,
    rng: new Rng(seed),
    onToken(id) {
      tokens.push(id);
      onToken?.(tokens.length);
      return tokens.length < n;
    },
    onEnd: resolve,
  };
  return { tokens, end, spec };
}

/**
 * The oracle: one sequence on its own, B = 1 throughout, written with the model's prefill/step and sampleToken
 * directly, so it shares no batching code with the scheduler.
 */
function alone(prompt: number[], n: number, seed: number): number[] {
  const rng = new Rng(seed);
  const out: number[] = [];
  tf.tidy(() => {
    let { logits, state } = model.prefill(tf.tensor2d([prompt], undefined, 'int32'));
    for (;;) {
      const id = sampleToken(logits.dataSync() as Float32Array, SAMPLING, rng).id;
      out.push(id);
      if (out.length === n) break;
      ({ logits, state } = model.step(tf.tensor1d([id], 'int32'), state));
    }
  });
  return out;
}

const PROMPTS = [[1], [5, 9, 2], [7, 7, 7, 7, 7, 7], [3, 1, 4, 1, 5], [60, 2], [11, 12, 13, 14], [0], [33, 44, 55]];

/** Polls until `cond` holds: worker threads answer on their own schedule. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
}

// The same behaviour in this thread and on a pool of decode threads (cpu workers, like the oracle's model).
describe.each([1, 2])('Scheduler decoding on %i thread(s)', (decodeThreads) => {
  /** A scheduler on the shared model whose decoder is up. */
  async function startScheduler(options: Omit<SchedulerOptions, 'decodeThreads'>): Promise<Scheduler> {
    const s = new Scheduler(model, { ...options, decodeThreads });
    await s.ready;
    return s;
  }

  it('gives every sequence of a mixed batch exactly the tokens it gets alone, whatever joins or leaves', async () => {
    await expectNoTensorLeak(async () => {
      const scheduler = await startScheduler({ maxActive: 8, maxQueued: 8, observer: NOOP_OBSERVER });
      // Different prompt lengths and different lengths of output: rows join and leave at different steps.
      const runs = PROMPTS.map((p, i) => run(p, 3 + 2 * i, 100 + i));
      scheduler.submit(runs.slice(0, 5).map((r) => r.spec));
      await new Promise((r) => setTimeout(r, 5));
      scheduler.submit(runs.slice(5).map((r) => r.spec));
      const ends = await Promise.all(runs.map((r) => r.end));
      expect(ends.every((e) => e.kind === 'done')).toBe(true);
      runs.forEach((r, i) => expect(r.tokens, `prompt ${i}`).toEqual(alone(PROMPTS[i], 3 + 2 * i, 100 + i)));
      expect(scheduler.stepsRun).toBeGreaterThan(0);
      await scheduler.close();
    });
  });

  it('batches concurrent sequences into shared steps', async () => {
    const scheduler = await startScheduler({ maxActive: 8, maxQueued: 0, observer: NOOP_OBSERVER });
    const runs = PROMPTS.map((p, i) => run(p, 10, i));
    scheduler.submit(runs.map((r) => r.spec));
    await Promise.all(runs.map((r) => r.end));
    // Eight sequences of ten tokens: the first comes from each prefill, the other nine from nine shared steps of
    // each decode thread's sequences (the pool spreads them over its threads, whose steps run on their own); a
    // pool's threads may also have run the one step posted ahead of the last tokens.
    expect(scheduler.stepsRun).toBeGreaterThanOrEqual(9 * decodeThreads);
    expect(scheduler.stepsRun).toBeLessThanOrEqual(decodeThreads === 1 ? 9 : 10 * decodeThreads);
    await scheduler.close();
  });

  it('refuses a request at once with CAPACITY when its sequences do not fit, and takes it once room is free', async () => {
    const scheduler = await startScheduler({ maxActive: 2, maxQueued: 1, observer: NOOP_OBSERVER });
    const first = [run([1], 1000, 1), run([2], 1000, 2)];
    scheduler.submit(first.map((r) => r.spec));
    const tooMany = [run([3], 5, 3), run([4], 5, 4)];
    let error: unknown;
    try {
      scheduler.submit(tooMany.map((r) => r.spec));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(XlstmError);
    expect((error as XlstmError).code).toBe('CAPACITY');
    expect((error as XlstmError).message).toMatch(/expected room for 2 more sequences, but 2 of 3 places/);
    const queued = run([5], 3, 5);
    scheduler.submit([queued.spec]);
    await until(() => scheduler.activeCount === 2);
    expect([scheduler.activeCount, scheduler.queuedCount]).toEqual([2, 1]);
    await scheduler.close();
    expect((await first[0].end).kind).toBe('cancelled');
    expect((await queued.end).kind).toBe('cancelled');
  });

  it('frees a cancelled sequence within one step and admits a waiting one into its row', async () => {
    await expectNoTensorLeak(async () => {
      const scheduler = await startScheduler({ maxActive: 1, maxQueued: 1, observer: NOOP_OBSERVER });
      let cancelAt = -1;
      let handle: { cancel(): void } | undefined;
      const long = run([1, 2], 10_000, 1, (count) => {
        if (count === 3) {
          handle?.cancel();
          cancelAt = scheduler.stepsRun;
        }
      });
      [handle] = scheduler.submit([long.spec]);
      const waiting = run([4], 4, 9);
      scheduler.submit([waiting.spec]);
      expect((await long.end).kind).toBe('cancelled');
      // Cancelled after its third token: no further token was sampled for it.
      expect(long.tokens).toHaveLength(3);
      expect((await waiting.end).kind).toBe('done');
      expect(waiting.tokens).toEqual(alone([4], 4, 9));
      expect(cancelAt).toBe(2);
      expect(scheduler.activeCount).toBe(0);
      await scheduler.close();
    });
  });

  it('cancels a queued sequence without ever prefilling it', async () => {
    const scheduler = await startScheduler({ maxActive: 1, maxQueued: 4, observer: NOOP_OBSERVER });
    const busy = run([1], 50, 1);
    scheduler.submit([busy.spec]);
    let prefilled = false;
    const queued = run([2], 5, 2, () => (prefilled = true));
    const [h] = scheduler.submit([queued.spec]);
    h.cancel();
    expect((await queued.end).kind).toBe('cancelled');
    expect(prefilled).toBe(false);
    await busy.end;
    await scheduler.close();
  });

  it('reports tokens, first-token and inter-token latencies to its observer', async () => {
    const seen = { tokens: 0, first: 0, inter: 0 };
    const scheduler = await startScheduler({
      maxActive: 4,
      maxQueued: 0,
      observer: {
        ...NOOP_OBSERVER,
        tokensGenerated: (n) => (seen.tokens += n),
        firstToken: () => seen.first++,
        interToken: () => seen.inter++,
      },
    });
    const runs = [run([1], 4, 1), run([2, 3], 6, 2)];
    scheduler.submit(runs.map((r) => r.spec));
    await Promise.all(runs.map((r) => r.end));
    expect(seen).toEqual({ tokens: 10, first: 2, inter: 8 });
    await scheduler.close();
  });

  it('never samples the suppressed (padding) token: greedy then picks the runner-up', async () => {
    const prompt = [9, 9];
    const logits = tf.tidy(() => model.prefill(tf.tensor2d([prompt], undefined, 'int32')).logits.dataSync() as Float32Array);
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    const scheduler = await startScheduler({ maxActive: 1, maxQueued: 0, suppressToken: order[0], observer: NOOP_OBSERVER });
    const r = run(prompt, 1, 0);
    scheduler.submit([{ ...r.spec, sampling: { temperature: 0, topK: 0, topP: 1 } }]);
    await r.end;
    expect(r.tokens).toEqual([order[1]]);
    await scheduler.close();
  });

  it('spreads prefills over steps while a batch runs (one joiner per thread and step with no prefill time budget)', async () => {
    const scheduler = await startScheduler({ maxActive: 8, maxQueued: 8, prefillTimeRatio: 0, observer: NOOP_OBSERVER });
    const counts: number[] = [];
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const long = run([1], 12, 1, (n) => {
      counts.push(scheduler.activeCount);
      if (n === 2) started();
    });
    scheduler.submit([long.spec]);
    await running;
    const joiners = [run([2], 20, 2), run([3], 20, 3), run([4], 20, 4)];
    scheduler.submit(joiners.map((r) => r.spec));
    await long.end;
    // The batch grows by at most one row per decode thread and step.
    const growth = counts.slice(1).map((c, i) => c - counts[i]);
    expect(Math.max(...growth)).toBeLessThanOrEqual(decodeThreads);
    expect(Math.max(...growth)).toBeGreaterThan(0);
    expect(counts.at(-1)).toBe(4);
    await scheduler.close();
  });

  it('refuses work after close', async () => {
    const scheduler = await startScheduler({ maxActive: 1, maxQueued: 0, observer: NOOP_OBSERVER });
    await scheduler.close();
    expect(() => scheduler.submit([run([1], 1, 1).spec])).toThrow(/shutting down/);
  });
});

describe('Scheduler on a pool of decode threads', () => {
  it('keeps a lane\'s steps k+1 and k+2 posted before its step k\'s tokens reach their consumers, and the tokens stay exact', async () => {
    const scheduler = new Scheduler(model, { maxActive: 4, maxQueued: 4, decodeThreads: 2, observer: NOOP_OBSERVER });
    await scheduler.ready;
    const log: string[] = [];
    const original = DecodePool.prototype.step;
    // Rows are numbered from 1 in admission order: row r + 1 is sequence r's.
    const step = vi.spyOn(DecodePool.prototype, 'step').mockImplementation(function (this: DecodePool, inputs) {
      for (const row of inputs.keys()) log.push(`post ${row - 1}`);
      return original.call(this, inputs);
    });
    const n = 6;
    // A consumer's work on a token runs after the scheduler's synchronous code, like a subscription's resolvers.
    const runs = [0, 1].map((i) => run(PROMPTS[i], n, i, () => queueMicrotask(() => log.push(`deliver ${i}`))));
    try {
      scheduler.submit(runs.map((r) => r.spec));
      await Promise.all(runs.map((r) => r.end));
    } finally {
      step.mockRestore();
    }
    runs.forEach((r, i) => expect(r.tokens).toEqual(alone(PROMPTS[i], n, i)));
    // Each sequence (one per thread, so a lane each): its prefill's token, then steps 1 and 2 posted (2 with the
    // token the thread samples in 1); from then on, when step k answers, step k + 2 is posted before step k's
    // token is delivered. Step 5's token ends it: nothing more is posted, and step 6 (already posted) is dropped.
    for (const i of [0, 1]) {
      const [d, p] = [`deliver ${i}`, `post ${i}`];
      expect(log.filter((e) => e.endsWith(` ${i}`)), `sequence ${i}`).toEqual([d, p, p, p, d, p, d, p, d, p, d, d]);
    }
    await scheduler.close();
  });

  it('ends the sequences of a crashed decode thread with a BACKEND error, starts new threads and serves on', async () => {
    const scheduler = new Scheduler(model, { maxActive: 4, maxQueued: 4, decodeThreads: 2, observer: NOOP_OBSERVER });
    await scheduler.ready;
    let running!: () => void;
    const bothRunning = new Promise<void>((r) => (running = r));
    let tokens = 0;
    const runs = [run([1], 1_000_000, 1, () => ++tokens === 6 && running()), run([2], 1_000_000, 2, () => ++tokens === 6 && running())];
    scheduler.submit(runs.map((r) => r.spec));
    await bothRunning;
    const [, crashed] = scheduler.decodeWorkers;
    expect(scheduler.decodeWorkers).toHaveLength(2);
    await crashed.terminate();
    // Not a hang: both sequences end, the one on the surviving thread too (the pool's books died with the thread).
    const ends = await Promise.all(runs.map((r) => r.end));
    for (const end of ends) {
      expect(end.kind).toBe('error');
      const error = (end as { error: unknown }).error;
      expect(error).toBeInstanceOf(XlstmError);
      expect(error).toMatchObject({
        code: 'BACKEND',
        message: expect.stringMatching(/^decode worker 1 expected to keep running, but it exited with code 1; .* Hint: retry the request; the server starts new decode threads\.$/),
      });
    }
    expect(scheduler.activeCount).toBe(0);
    // New threads, and a request after the crash gets exactly the tokens it gets alone.
    const after = run([4], 6, 9);
    scheduler.submit([after.spec]);
    expect(await after.end).toEqual({ kind: 'done' });
    expect(after.tokens).toEqual(alone([4], 6, 9));
    expect(scheduler.decodeWorkers).toHaveLength(2);
    expect(scheduler.decodeWorkers).not.toContain(crashed);
    await scheduler.close();
    expect(scheduler.decodeWorkers).toEqual([]);
  });

  it('refuses a thread count below one with INVALID_CONFIG', () => {
    expect(() => new Scheduler(model, { maxActive: 1, maxQueued: 0, decodeThreads: 0, observer: NOOP_OBSERVER })).toThrow(
      /^decodeThreads expected an integer >= 1, but got 0\./,
    );
  });
});
