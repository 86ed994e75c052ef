import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { validateModelConfig, XlstmModel, type ModelConfig, type ModelState } from '../../../src/core/index.ts';
import {
  awaitPrefillHelper, nextHelperShare, prefillHelperShare, prefillThreads, setPrefillThreads, threadChunks, threadedPrefillCount,
  THREADED_MIN_WORK,
} from '../../../src/core/host/prefill-threads.ts';
import { planFor } from '../../../src/core/host/model-step.ts';
import { Rng } from '../../../src/util/rng.ts';
import { SIMD_CONFIG } from './step-pair.ts';

/** Six blocks (m s m s m s): the helper's half starts with an sLSTM block. */
const CONFIG: ModelConfig = validateModelConfig({ ...SIMD_CONFIG, num_layers: 3 });
const NO_CONV: ModelConfig = validateModelConfig({ ...CONFIG, ker_size: 0 });

const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
const prompts = (rng: Rng, B: number, T: number, V: number) => Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));

interface Result {
  readonly logits: number[];
  readonly state: number[];
}

/** A prompt through prefill, with the path it took: whether the helper ran it. */
function prefill(model: XlstmModel, tokens: number[][], state?: ModelState): Result & { threaded: boolean } {
  const before = threadedPrefillCount();
  return tf.tidy(() => {
    const out = model.prefill(tf.tensor2d(tokens, undefined, 'int32'), state);
    return { logits: bits(out.logits), state: bits(out.state[0].packed), threaded: threadedPrefillCount() > before };
  });
}

/** The oracle: the tokens stepped one at a time through the decode step. */
function stepped(model: XlstmModel, tokens: number[][], state?: ModelState): Result {
  return tf.tidy(() => {
    let s = state ?? model.initState(tokens.length);
    let logits: tf.Tensor | null = null;
    for (let t = 0; t < tokens[0].length; t++) {
      const out = model.step(tf.tensor1d(tokens.map((row) => row[t]), 'int32'), s);
      [logits, s] = [out.logits, out.state];
    }
    return { logits: bits(logits as tf.Tensor), state: bits(s[0].packed) };
  });
}

/** Two threads for any prompt of two tokens or more: the test models are far below THREADED_MIN_WORK. */
const twoThreads = (options: { helperShare?: number } = {}) => setPrefillThreads(2, { minWork: 0, ...options });

function oneThread<T>(f: () => T): T {
  setPrefillThreads(1);
  try {
    return f();
  } finally {
    twoThreads();
  }
}

describe('prefill on two threads (wasm)', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
    twoThreads();
  });
  afterAll(() => setPrefillThreads(1));

  it('splits a prompt into an even number of chunks (one per thread in turn) that cover it, lengths within one', () => {
    for (const [B, T] of [[1, 512], [1, 70], [1, 200], [3, 45], [130, 3], [1, 2], [2, 1000]]) {
      const chunks = threadChunks(B, T);
      expect(chunks.reduce((a, b) => a + b, 0), `${B} x ${T}`).toBe(T);
      expect(chunks.length % 2, `${B} x ${T}`).toBe(0);
      expect(Math.max(...chunks) - Math.min(...chunks)).toBeLessThanOrEqual(1);
      expect(Math.min(...chunks)).toBeGreaterThanOrEqual(1);
    }
    expect(threadChunks(1, 512)).toEqual([128, 128, 128, 128]);
  });

  it('gives the helper (the even chunks) its share of every pair of chunks, at least one position each', () => {
    expect(threadChunks(1, 512, 0.25)).toEqual([64, 192, 64, 192]);
    expect(threadChunks(1, 512, 0.75)).toEqual([192, 64, 192, 64]);
    for (const [B, T] of [[1, 70], [3, 45], [130, 3], [1, 2], [2, 1000]]) {
      for (const share of [0.2, 0.37, 0.8]) {
        const chunks = threadChunks(B, T, share);
        expect(chunks.reduce((a, b) => a + b, 0), `${B} x ${T} at ${share}`).toBe(T);
        expect(chunks.length % 2).toBe(0);
        expect(Math.min(...chunks)).toBeGreaterThanOrEqual(1);
        for (let j = 0; j < chunks.length; j += 2) {
          const P = chunks[j] + chunks[j + 1];
          if (P > 2) expect(Math.abs(chunks[j] - P * share), `${B} x ${T} at ${share}, pair ${j / 2}`).toBeLessThanOrEqual(1);
        }
      }
    }
  });

  it('moves the helper share half way to the measured speeds, within [0.2, 0.8], and ignores empty measurements', () => {
    // Helper twice as fast per position: measured 2/3.
    expect(nextHelperShare(0.5, { positions: 256, ms: 20 }, { positions: 256, ms: 40 })).toBeCloseTo((0.5 + 2 / 3) / 2, 12);
    // Equal speeds over unequal shares: measured 1/2.
    expect(nextHelperShare(0.3, { positions: 100, ms: 10 }, { positions: 300, ms: 30 })).toBeCloseTo(0.4, 12);
    expect(nextHelperShare(0.75, { positions: 100, ms: 1 }, { positions: 100, ms: 100 })).toBe(0.8);
    expect(nextHelperShare(0.25, { positions: 100, ms: 100 }, { positions: 100, ms: 1 })).toBe(0.2);
    expect(nextHelperShare(0.45, { positions: 100, ms: 0 }, { positions: 100, ms: 10 })).toBe(0.45);
    expect(nextHelperShare(0.45, { positions: 100, ms: 10 }, { positions: 0, ms: 10 })).toBe(0.45);
  });

  it('rejects a thread count other than 1 or 2, and a negative minimum work', () => {
    expect(() => setPrefillThreads(3)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/prefill threads expected 1 or 2, but got 3/) }));
    expect(() => setPrefillThreads(2, { minWork: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() => setPrefillThreads(2, { helperShare: 0.9 })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/share of a prompt expected a number in \[0.2, 0.8\], but got 0.9/) }));
    expect(prefillThreads()).toBe(2);
  });

  describe.each([
    ['conv', CONFIG],
    ['no conv', NO_CONV],
  ] as const)('(%s)', (_, config) => {
    let model: XlstmModel;
    beforeAll(async () => {
      model = XlstmModel.init(config, 7);
      expect(await awaitPrefillHelper()).not.toBeNull();
    });
    afterAll(() => model.dispose());

    it.each([
      [1, 64],
      [1, 77],
      [1, 200],
      [1, 513],
      [3, 45],
      [3, 23],
      [3, 130],
    ])('B = %i, T = %i: equals one-thread prefill and stepping bit for bit, logits and state', (B, T) => {
      const tokens = prompts(new Rng(B * 1000 + T), B, T, model.dims.V);
      expect(threadChunks(B, T).length).toBeGreaterThanOrEqual(T > 300 || B * T > 300 ? 4 : 2);
      const two = prefill(model, tokens);
      expect(two.threaded).toBe(true);
      const one = oneThread(() => prefill(model, tokens));
      expect(one.threaded).toBe(false);
      expect(two.logits).toEqual(one.logits);
      expect(two.state).toEqual(one.state);
      const want = stepped(model, tokens);
      expect(two.logits).toEqual(want.logits);
      expect(two.state).toEqual(want.state);
    });

    it.each([0.2, 0.8])('splits unevenly (helper share %f) with the same bits as one thread', (share) => {
      const tokens = prompts(new Rng(41), 2, 150, model.dims.V);
      twoThreads({ helperShare: share });
      expect(prefillHelperShare()).toBe(share);
      const two = prefill(model, tokens);
      expect(two.threaded).toBe(true);
      // The measured speeds moved the share for the next prompt, and it stays in range.
      expect(prefillHelperShare()).toBeGreaterThanOrEqual(0.2);
      expect(prefillHelperShare()).toBeLessThanOrEqual(0.8);
      const one = oneThread(() => prefill(model, tokens));
      expect(two.logits).toEqual(one.logits);
      expect(two.state).toEqual(one.state);
      twoThreads({ helperShare: 0.5 });
    });

    it('continues from a running state: two threaded halves equal the whole prompt stepped', () => {
      const rng = new Rng(3);
      const first = prompts(rng, 2, 40, model.dims.V);
      const second = prompts(rng, 2, 50, model.dims.V);
      tf.tidy(() => {
        const running = model.prefill(tf.tensor2d(first, undefined, 'int32')).state;
        const got = prefill(model, second, running);
        expect(got.threaded).toBe(true);
        const want = stepped(model, first.map((row, r) => [...row, ...second[r]]));
        expect(got.logits).toEqual(want.logits);
        expect(got.state).toEqual(want.state);
      });
    });
  });

  it('uses the current weights: two models in turn, and a weight assigned between prompts', async () => {
    const a = XlstmModel.init(CONFIG, 11);
    const b = XlstmModel.init(CONFIG, 12).asTrainable();
    expect(await awaitPrefillHelper()).not.toBeNull();
    const tokens = prompts(new Rng(5), 1, 90, a.dims.V);
    for (const model of [a, b, a, b]) {
      const got = prefill(model, tokens);
      expect(got.threaded).toBe(true);
      expect(got.logits).toEqual(stepped(model, tokens).logits);
    }
    // A trainable model's weights are variables: assign() swaps the data, and the next prefill must see it.
    const w = b.weights.blocks[1].normW as tf.Variable;
    w.assign(tf.mul(w, 1.5));
    const after = prefill(b, tokens);
    expect(after.threaded).toBe(true);
    expect(after.logits).toEqual(stepped(b, tokens).logits);
    expect(after.logits).not.toEqual(prefill(a, tokens).logits);
    a.dispose();
    b.dispose();
  });

  it('keeps short prompts on one thread: one token, and less work than THREADED_MIN_WORK by default', async () => {
    const model = XlstmModel.init(CONFIG, 2);
    expect(await awaitPrefillHelper()).not.toBeNull();
    const one = prefill(model, [[5]]);
    expect(one.threaded).toBe(false);
    expect(one.logits).toEqual(stepped(model, [[5]]).logits);
    setPrefillThreads(2);
    const tokens = prompts(new Rng(8), 2, 300, model.dims.V);
    const got = prefill(model, tokens);
    twoThreads();
    expect(got.threaded).toBe(false);
    expect(got.logits).toEqual(stepped(model, tokens).logits);
    expect(2 * 300 * planFor(model.dims).weights.size).toBeLessThan(THREADED_MIN_WORK);
    model.dispose();
  });

  it('runs on one thread, with the same results, while threads are 1', () => {
    const model = XlstmModel.init(CONFIG, 4);
    const tokens = prompts(new Rng(9), 2, 60, model.dims.V);
    const two = prefill(model, tokens);
    const one = oneThread(() => prefill(model, tokens));
    expect([two.threaded, one.threaded]).toEqual([true, false]);
    expect(one).toEqual({ ...two, threaded: false });
    model.dispose();
  });

  it('falls back to one thread for good once the helper fails a job or dies, with the same results', async () => {
    const model = XlstmModel.init(CONFIG, 5);
    const tokens = prompts(new Rng(10), 1, 90, model.dims.V);
    const before = prefill(model, tokens);
    expect(before.threaded).toBe(true);
    const worker = await awaitPrefillHelper();
    // A job the helper cannot run (no such model): it reports the failure and is retired.
    const failed = new Promise((resolve) => worker?.once('message', resolve));
    worker?.postMessage({ type: 'job', plan: '{}', W: 0, state: 0, B: 1, chunks: [1, 1], inputs: 0, xOut: 0, scratch: [0, 0] });
    expect(await failed).toMatchObject({ type: 'failed' });
    await new Promise((resolve) => worker?.once('exit', resolve));
    const after = prefill(model, tokens);
    expect(after).toEqual({ ...before, threaded: false });
    expect(await awaitPrefillHelper()).toBeNull();
    model.dispose();
  });
});
