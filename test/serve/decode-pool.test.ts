import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { selectBackend } from '../../src/backend/select.ts';
import {
  concatStates,
  disposeState,
  gatherState,
  GREEDY,
  sampleToken,
  XlstmModel,
  type ModelConfig,
  type ModelState,
  type NamedArray,
  type SamplingParams,
} from '../../src/core/index.ts';
import { logSumExpRow } from '../../src/core/host/math.ts';
import { InProcessDecoder } from '../../src/serve/in-process-decoder.ts';
import { DecodeThread } from '../../src/serve/decode-thread.ts';
import { DecodePool, type AdmitRequest, type RowId, type Sampled, type StepInput } from '../../src/serve/decode-pool.ts';
import { XlstmError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';
import { expectNoTensorLeak, TINY_ONE_LAYER } from '../support/tiny-model.ts';

const CONFIG: ModelConfig = TINY_ONE_LAYER;
const STEPS = 20;

/**
 * Who joins when and leaves when (after `retireAt` steps; STEPS means never), so rows move between batches.
 * Prompts that join together come in no order of length, and some share a length.
 */
const SEQUENCES = [
  { admitAt: 0, retireAt: 8, prompt: [1, 2, 3] },
  { admitAt: 0, retireAt: STEPS, prompt: [5] },
  { admitAt: 5, retireAt: 14, prompt: [7, 8, 9, 10, 11] },
  { admitAt: 10, retireAt: STEPS, prompt: [3, 3] },
  { admitAt: 10, retireAt: 12, prompt: [60, 1, 2] },
  // Joins with a prompt of the same length as the one before last: the two are prefilled as one batch.
  { admitAt: 10, retireAt: 16, prompt: [9, 8, 7] },
  { admitAt: 17, retireAt: STEPS, prompt: [0, 4, 8, 15, 16, 23, 42] },
];
const SAMPLED: SamplingParams[] = [
  { temperature: 1, topK: 0, topP: 1 },
  { temperature: 0.8, topK: 10, topP: 0.9 },
];

/** The calls the scenario makes; the pool and the in-process oracle both answer them. */
interface Engine {
  admit(prompts: AdmitRequest[]): Promise<{ row: RowId; id: number; logprob: number }[]> | { row: RowId; id: number; logprob: number }[];
  step(inputs: Map<RowId, StepInput>): Promise<Map<RowId, Sampled>> | Map<RowId, Sampled>;
  retire(rows: RowId[]): Promise<void> | void;
}

/**
 * The oracle: the same calls served by one in-process model, the way the scheduler drives it (prefill alone,
 * concatStates to join, one batched step, gatherState to leave). It shares no code with the pool.
 */
class InProcess implements Engine {
  private rows: RowId[] = [];
  private state: ModelState | null = null;
  private next = 1;

  constructor(
    private readonly model: XlstmModel,
    private readonly suppressToken?: number,
  ) {}

  admit(prompts: AdmitRequest[]) {
    return prompts.map((p) => {
      const out = tidy(() => this.model.prefill(tf.tensor2d([Array.from(p.tokens)], undefined, 'int32')));
      const sampled = this.sample(out.logits.dataSync() as Float32Array, p);
      out.logits.dispose();
      const previous = this.state;
      this.state = tidy(() => concatStates(previous ? [previous, out.state] : [out.state]));
      if (previous) disposeState(previous);
      disposeState(out.state);
      const row = this.next++;
      this.rows.push(row);
      return { row, ...sampled };
    });
  }

  step(inputs: Map<RowId, StepInput>) {
    const previous = this.state as ModelState;
    const tokens = this.rows.map((r) => (inputs.get(r) as StepInput).token);
    const out = tidy(() => this.model.step(tf.tensor1d(tokens, 'int32'), previous));
    disposeState(previous);
    this.state = out.state;
    const logits = out.logits.dataSync() as Float32Array;
    out.logits.dispose();
    const V = CONFIG.vocab_size;
    return new Map(
      this.rows.map((r, i) => {
        const { sampling, uniform } = inputs.get(r) as StepInput;
        return [r, this.sample(logits.slice(i * V, (i + 1) * V), { sampling, uniform })] as const;
      }),
    );
  }

  /** The normaliser is the decoders' host one (its accuracy is checked in test/core/host/math.test.ts). */
  private sample(row: Float32Array, p: { sampling: SamplingParams; uniform: number }): Sampled {
    if (this.suppressToken !== undefined) row[this.suppressToken] = -Infinity;
    return sampleToken(row, p.sampling, { uniform: () => p.uniform } as Rng, logSumExpRow(row));
  }

  retire(rows: RowId[]) {
    const keep = this.rows.flatMap((r, i) => (rows.includes(r) ? [] : [i]));
    const previous = this.state as ModelState;
    this.state = keep.length > 0 ? tidy(() => gatherState(previous, keep)) : null;
    disposeState(previous);
    this.rows = keep.map((i) => this.rows[i]);
  }
}

interface Trace {
  /** Per sequence: every token id it was given, first (from the prefill) to last. */
  readonly ids: number[][];
  readonly logprobs: number[][];
  /** The pool's rows per worker after each step's admissions. */
  readonly loads: number[][];
}

/** Runs SEQUENCES through an engine for STEPS steps; each sequence draws its uniforms from its own seeded Rng. */
async function scenario(engine: Engine, sampling: (j: number) => SamplingParams, loads: () => number[] = () => []): Promise<Trace> {
  const rngs = SEQUENCES.map((_, j) => new Rng(100 + j));
  const rowOf = new Map<number, RowId>();
  const trace: Trace = { ids: SEQUENCES.map(() => []), logprobs: SEQUENCES.map(() => []), loads: [] };
  const record = (j: number, s: Sampled) => {
    trace.ids[j].push(s.id);
    trace.logprobs[j].push(s.logprob);
  };
  for (let step = 0; step < STEPS; step++) {
    const leaving = [...rowOf].filter(([j]) => SEQUENCES[j].retireAt === step);
    if (leaving.length > 0) await engine.retire(leaving.map(([, row]) => row));
    for (const [j] of leaving) rowOf.delete(j);
    const joining = SEQUENCES.flatMap((s, j) => (s.admitAt === step ? [j] : []));
    if (joining.length > 0) {
      const admitted = await engine.admit(joining.map((j) => ({ tokens: SEQUENCES[j].prompt, sampling: sampling(j), uniform: rngs[j].uniform() })));
      admitted.forEach((a, k) => {
        rowOf.set(joining[k], a.row);
        record(joining[k], a);
      });
    }
    trace.loads.push(loads());
    const inputs = new Map([...rowOf].map(([j, row]) => [row, { token: trace.ids[j].at(-1) as number, sampling: sampling(j), uniform: rngs[j].uniform() }]));
    const out = await engine.step(inputs);
    for (const [j, row] of rowOf) record(j, out.get(row) as Sampled);
  }
  await engine.retire([...rowOf.values()]);
  return trace;
}

const greedy = () => GREEDY;
const seeded = (j: number) => SAMPLED[j % SAMPLED.length];

let arrays: Map<string, NamedArray>;
let oracle: { greedy: Trace; seeded: Trace };

beforeAll(async () => {
  // The oracle runs on the workers' backend: the pool must match it exactly, not to a tolerance.
  await selectBackend('wasm');
  const seed = XlstmModel.init(CONFIG, 11);
  arrays = seed.toArrays();
  seed.dispose();
  const model = XlstmModel.fromArrays(CONFIG, arrays);
  oracle = await expectNoTensorLeak(async () => ({
    greedy: await scenario(new InProcess(model), greedy),
    seeded: await scenario(new InProcess(model), seeded),
  }));
  model.dispose();
});

describe.each([1, 2])('DecodePool with %i thread(s)', (threads) => {
  let pool: DecodePool;

  beforeAll(async () => {
    pool = await DecodePool.create({ config: CONFIG, arrays, threads });
  });

  afterAll(() => pool.close());

  it('samples exactly the in-process ids and log-probabilities, greedy and seeded, as rows join and leave', async () => {
    const g = await scenario(pool, greedy, () => pool.loads);
    const s = await scenario(pool, seeded, () => pool.loads);
    expect(g.ids).toEqual(oracle.greedy.ids);
    expect(g.logprobs).toEqual(oracle.greedy.logprobs);
    expect(s.ids).toEqual(oracle.seeded.ids);
    expect(s.logprobs).toEqual(oracle.seeded.logprobs);
    expect(pool.size).toBe(0);
    // Every worker held rows at some point, so the batch really was split across threads.
    for (let w = 0; w < threads; w++) expect(Math.max(...s.loads.map((l) => l[w]))).toBeGreaterThan(0);
    // The seeded run is not degenerate: it really draws different tokens.
    expect(new Set(s.ids.flat()).size).toBeGreaterThan(10);
  });

  it.each([
    ['a token outside the vocabulary', (p: DecodePool) => p.admit([{ tokens: [1, 64], sampling: GREEDY, uniform: 0.5 }]), /prompts\[0\]\.tokens expected integers in \[0, 64\), but got 64/],
    ['an empty prompt', (p: DecodePool) => p.admit([{ tokens: [], sampling: GREEDY, uniform: 0.5 }]), /expected at least one token/],
    ['stepping a row that is not live', (p: DecodePool) => p.step(new Map([[999, { token: 1, sampling: GREEDY, uniform: 0.5 }]])), /row 999 is not live/],
    ['retiring a row that is not live', (p: DecodePool) => p.retire([999]), /row 999 is not one/],
  ])('refuses %s with INVALID_INPUT and stays usable', async (_name, call, message) => {
    const error = await call(pool).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(XlstmError);
    expect(error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(message) });
    // Two rows in every lane: a step that names one row of a lane and not the other is refused.
    const rows = (await pool.admit(Array.from({ length: 2 * threads }, () => ({ tokens: [1, 2], sampling: GREEDY, uniform: 0.5 })))).map((a) => a.row);
    const one = new Map([[rows[0], { token: 1, sampling: GREEDY, uniform: 0.5 }]]);
    await expect(pool.step(one)).rejects.toThrow(/step expected an input for each of the 2 live rows of its lanes, but row \d+ has none/);
    await pool.retire(rows);
  });

  it('steps each lane on its own: both lanes\' steps in flight at once give what one step of both gives', async () => {
    const prompts = Array.from({ length: 4 * threads }, (_, j) => ({ tokens: [1 + j, 2], sampling: GREEDY, uniform: 0.5 }));
    const run = async (apart: boolean) => {
      const rows = (await pool.admit(prompts)).map((a) => a.row);
      let tokens = new Map(rows.map((row, j) => [row, 1 + (j % 7)]));
      const seen: number[][] = [];
      for (let k = 0; k < 4; k++) {
        const inputs = (keep: RowId[]) => new Map(keep.map((row) => [row, { token: tokens.get(row) as number, sampling: GREEDY, uniform: 0.5 }]));
        const lanes = [...new Set(rows.map((row) => pool.laneOf(row)))];
        const parts = apart ? lanes.map((lane) => rows.filter((row) => pool.laneOf(row) === lane)) : [rows];
        // Every part is posted before any answers: a lane's step does not wait for another's.
        const outs = await Promise.all(parts.map((part) => pool.step(inputs(part))));
        tokens = new Map(outs.flatMap((out) => [...out].map(([row, x]) => [row, x.id] as const)));
        seen.push(rows.map((row) => tokens.get(row) as number));
      }
      await pool.retire(rows);
      return seen;
    };
    const together = await run(false);
    const log: string[] = [];
    const original = DecodeThread.prototype.call;
    const spy = vi.spyOn(DecodeThread.prototype, 'call').mockImplementation(function (this: DecodeThread, message, transfer) {
      if (message.type !== 'step') return original.call(this, message, transfer);
      log.push('post');
      return original.call(this, message, transfer).then((answer) => (log.push('answer'), answer));
    });
    let apart: number[][];
    try {
      apart = await run(true);
    } finally {
      spy.mockRestore();
    }
    expect(apart).toEqual(together);
    expect(new Set(together.flat()).size).toBeGreaterThan(3);
    // Each lane's step went to its thread before any thread answered.
    const one = [...Array(threads).fill('post'), ...Array(threads).fill('answer')];
    expect(log).toEqual(Array.from({ length: 4 }, () => one).flat());
  });

  it('takes steps posted ahead of answers, token -1 standing for each row\'s last sample, with rows retired between', async () => {
    const prompts = Array.from({ length: 3 * threads }, (_, j) => ({ tokens: [3 + j, 1], sampling: GREEDY, uniform: 0.5 }));
    const input = (token: number) => ({ token, sampling: GREEDY, uniform: 0.5 });
    // Waiting for every answer: row 0 leaves after step 2.
    const waited: Map<RowId, Sampled>[] = [];
    let admitted = await pool.admit(prompts);
    let live = admitted.map((a) => a.row);
    let tokens = new Map(admitted.map((a) => [a.row, a.id]));
    for (let k = 0; k < 4; k++) {
      const out = await pool.step(new Map(live.map((row) => [row, input(tokens.get(row) as number)])));
      waited.push(out);
      tokens = new Map([...out].map(([row, x]) => [row, x.id]));
      if (k === 1) {
        await pool.retire([live[0]]);
        live = live.slice(1);
      }
    }
    await pool.retire(live);
    // Posting ahead: the first step with the admitted tokens, then -1; the retirement goes between steps 2 and 3
    // while both are in flight.
    admitted = await pool.admit(prompts);
    live = admitted.map((a) => a.row);
    const first = admitted.map((a) => a.id);
    const outs = [pool.step(new Map(live.map((row, j) => [row, input(first[j])]))), pool.step(new Map(live.map((row) => [row, input(-1)])))];
    const retired = pool.retire([live[0]]);
    const rest = live.slice(1);
    outs.push(pool.step(new Map(rest.map((row) => [row, input(-1)]))), pool.step(new Map(rest.map((row) => [row, input(-1)]))));
    const ahead = await Promise.all(outs);
    await retired;
    await pool.retire(rest);
    // Rows are new ids the second time: compare in admission order.
    const byOrder = (runs: Map<RowId, Sampled>[]) => runs.map((out) => [...out.values()].map((x) => x.id));
    expect(byOrder(ahead)).toEqual(byOrder(waited));
    expect(pool.size).toBe(0);
  });

  it('close() stops every worker and later calls reject with CANCELLED', async () => {
    const workers = pool.workers;
    expect(workers.every((w) => w.threadId > 0)).toBe(true);
    await pool.close();
    // Node sets a worker's threadId to -1 once its thread has exited.
    expect(workers.map((w) => w.threadId)).toEqual(workers.map(() => -1));
    await expect(pool.admit([{ tokens: [1], sampling: GREEDY, uniform: 0.5 }])).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});

it('InProcessDecoder (the scheduler\'s decoder in this thread) answers the same calls exactly as the oracle', async () => {
  const model = XlstmModel.fromArrays(CONFIG, arrays);
  const decoder = new InProcessDecoder(model);
  try {
    await expectNoTensorLeak(async () => {
      const g = await scenario(decoder, greedy);
      const s = await scenario(decoder, seeded);
      expect([g.ids, g.logprobs, s.ids, s.logprobs]).toEqual([oracle.greedy.ids, oracle.greedy.logprobs, oracle.seeded.ids, oracle.seeded.logprobs]);
      expect(decoder.size).toBe(0);
    });
  } finally {
    await decoder.close();
    model.dispose();
  }
});

it('never samples suppressToken: it takes the next best token, as in process', async () => {
  const prompts = SEQUENCES.map((q) => ({ tokens: q.prompt, sampling: GREEDY, uniform: 0.5 }));
  // The greedy first token of the first prompt, so suppressing it must change that prompt's answer.
  const suppressToken = oracle.greedy.ids[0][0];
  const model = XlstmModel.fromArrays(CONFIG, arrays);
  const engine = new InProcess(model, suppressToken);
  const expected = engine.admit(prompts);
  engine.retire(expected.map((a) => a.row));
  model.dispose();
  const pool = await DecodePool.create({ config: CONFIG, arrays, threads: 1, suppressToken });
  try {
    const got = await pool.admit(prompts);
    expect(got.map((a) => a.id)).not.toContain(suppressToken);
    expect(got.map(({ id, logprob }) => ({ id, logprob }))).toEqual(expected.map(({ id, logprob }) => ({ id, logprob })));
  } finally {
    await pool.close();
  }
});

it('fails create with the worker\'s error when the model cannot be built', async () => {
  const partial = new Map([...arrays].filter(([name]) => name !== 'norm_f.weight'));
  await expect(DecodePool.create({ config: CONFIG, arrays: partial, threads: 1 })).rejects.toThrow(/^decode worker 0 failed: .*norm_f\.weight/);
});

it('a worker that dies rejects the call in flight and every later one with a BACKEND error', async () => {
  const failures: XlstmError[] = [];
  const pool = await DecodePool.create({ config: CONFIG, arrays, threads: 2, onFailure: (e) => failures.push(e) });
  try {
    const admitted = await pool.admit([1, 2, 3].map((t) => ({ tokens: [t], sampling: GREEDY, uniform: 0.5 })));
    expect(pool.loads).toEqual([2, 1]);
    // Stopped before the step is posted, so worker 1 never answers it.
    const stopped = pool.workers[1].terminate();
    const inputs = new Map(admitted.map((a) => [a.row, { token: a.id, sampling: GREEDY, uniform: 0.5 }]));
    const error = await pool.step(inputs).catch((e: unknown) => e);
    await stopped;
    expect(error).toBeInstanceOf(XlstmError);
    expect(error).toMatchObject({
      code: 'BACKEND',
      message: expect.stringMatching(/^decode worker 1 expected to keep running, but it exited with code 1; the state of its 1 row is lost\. Hint: /),
    });
    expect(failures).toEqual([error]);
    expect(pool.failure).toBe(error);
    await expect(pool.retire([admitted[0].row])).rejects.toBe(error);
  } finally {
    await pool.close();
  }
});

/** tf.tidy for results that hold tensors in plain records. */
function tidy<T>(fn: () => T): T {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as T;
}
