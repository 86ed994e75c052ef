import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { AdamW, STEP_KEY, type AdamWOptions, type AdamWParam } from '../../src/train/adamw.ts';
import { TEST_BACKENDS } from '../support/backends.ts';
import { expectRelClose, f32, problem, referenceAdamW, REL_TOL, size, SPECS } from './support/adamw-reference.ts';

function makeParams(values: Float32Array[]): AdamWParam[] {
  return SPECS.map((s, i) => ({ name: s.name, decay: s.decay, variable: tf.tidy(() => tf.variable(tf.tensor(values[i].slice(), s.shape))) }));
}

/** Runs `grads` through the optimizer, one tidy-free step per entry; gradient tensors are disposed here. */
function runSteps(opt: AdamW, grads: Float32Array[][], lrs: number[]) {
  return grads.map((stepGrads, t) => {
    const map = new Map(SPECS.map((s, i) => [s.name, tf.tensor(stepGrads[i], s.shape)]));
    const result = opt.step(map, lrs[t]);
    map.forEach((g) => g.dispose());
    return result;
  });
}

const values = (params: AdamWParam[]) => params.map((p) => Float32Array.from(p.variable.dataSync()));
const dispose = (params: AdamWParam[], opt: AdamW) => {
  params.forEach((p) => p.variable.dispose());
  opt.dispose();
};

const OPTIONS: AdamWOptions = { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 };
const LRS = [1e-2, 2e-2, 3e-2, 3e-2, 2e-2, 1e-2, 5e-3];

describe.each(TEST_BACKENDS)('AdamW on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  it('matches a float64 AdamW over several steps (params, moments, grad norms)', () => {
    const { init, grads } = problem(1, LRS.length);
    const params = makeParams(init);
    const opt = new AdamW(params, OPTIONS);
    const results = runSteps(opt, grads, LRS);
    const ref = referenceAdamW(init, grads, LRS, OPTIONS);
    const state = opt.exportState();
    values(params).forEach((p, k) => expectRelClose(p, ref.p[k], `param ${SPECS[k].name}`));
    SPECS.forEach((s, k) => {
      expectRelClose(state.get(`${s.name}.exp_avg`)!.data, ref.m[k], `exp_avg ${s.name}`);
      expectRelClose(state.get(`${s.name}.exp_avg_sq`)!.data, ref.v[k], `exp_avg_sq ${s.name}`);
    });
    results.forEach((r, t) => {
      expect(Math.abs(r.gradNorm - ref.norms[t]) / ref.norms[t]).toBeLessThanOrEqual(REL_TOL);
      expect(r.clipped).toBe(false);
    });
    expect(opt.stepCount).toBe(LRS.length);
    expect(Array.from(state.get(STEP_KEY)!.data)).toEqual([LRS.length]);
    dispose(params, opt);
  });

  it('clips the global gradient norm and returns the norm before clipping', () => {
    const options = { ...OPTIONS, gradClip: 0.5 };
    const { init, grads } = problem(2, 4, 3);
    const params = makeParams(init);
    const opt = new AdamW(params, options);
    const results = runSteps(opt, grads, LRS);
    const ref = referenceAdamW(init, grads, LRS.slice(0, 4), options);
    values(params).forEach((p, k) => expectRelClose(p, ref.p[k], `clipped param ${k}`));
    results.forEach((r, t) => {
      expect(ref.norms[t]).toBeGreaterThan(0.5);
      expect(r.clipped).toBe(true);
      expect(Math.abs(r.gradNorm - ref.norms[t]) / ref.norms[t]).toBeLessThanOrEqual(REL_TOL);
    });
    // The clipped run must differ from an unclipped one, or the check above proves nothing.
    const unclipped = referenceAdamW(init, grads, LRS.slice(0, 4), OPTIONS);
    expect(Math.abs(unclipped.m[0][0] - ref.m[0][0])).toBeGreaterThan(1e-3);
    dispose(params, opt);
  });

  it('leaves gradients below the clip alone', () => {
    const { init, grads } = problem(3, 1, 1e-3);
    const params = makeParams(init);
    const opt = new AdamW(params, { ...OPTIONS, gradClip: 1 });
    const [r] = runSteps(opt, grads, [1e-2]);
    expect(r.clipped).toBe(false);
    values(params).forEach((p, k) => expectRelClose(p, referenceAdamW(init, grads, [1e-2], OPTIONS).p[k], `param ${k}`));
    dispose(params, opt);
  });

  it('decays only the decay group', () => {
    const { init } = problem(4, 0);
    const params = makeParams(init);
    const opt = new AdamW(params, { ...OPTIONS, weightDecay: 0.2 });
    const zeros = [SPECS.map((s) => new Float32Array(size(s.shape)))];
    runSteps(opt, zeros, [0.5]); // zero gradients: only decay moves a parameter, by the factor 1 - 0.5*0.2
    const after = values(params);
    SPECS.forEach((s, k) => {
      if (s.decay) expectRelClose(after[k], Array.from(init[k], (x) => x * 0.9), `decayed ${s.name}`);
      else expect(after[k]).toEqual(init[k]);
    });
    dispose(params, opt);
  });

  it('continues bit for bit after export and import into a fresh optimizer', () => {
    const { init, grads } = problem(5, 6);
    const lrs = LRS.slice(0, 6);
    const straight = makeParams(init);
    const optStraight = new AdamW(straight, { ...OPTIONS, gradClip: 2 });
    runSteps(optStraight, grads, lrs);

    const first = makeParams(init);
    const optFirst = new AdamW(first, { ...OPTIONS, gradClip: 2 });
    runSteps(optFirst, grads.slice(0, 3), lrs.slice(0, 3));
    const saved = optFirst.exportState();
    const savedParams = values(first);
    dispose(first, optFirst);

    const second = makeParams(savedParams);
    const optSecond = new AdamW(second, { ...OPTIONS, gradClip: 2 });
    optSecond.importState(saved);
    expect(optSecond.stepCount).toBe(3);
    runSteps(optSecond, grads.slice(3), lrs.slice(3));

    expect(values(second)).toEqual(values(straight));
    expect([...optSecond.exportState()]).toEqual([...optStraight.exportState()]);
    dispose(second, optSecond);
    dispose(straight, optStraight);
  });

  it('leaves a parameter without a gradient untouched and skips a non-finite gradient', () => {
    const { init, grads } = problem(6, 1);
    const params = makeParams(init);
    const opt = new AdamW(params, OPTIONS);
    const g = tf.tensor(grads[0][0], SPECS[0].shape);
    opt.step({ [SPECS[0].name]: g }, 1e-2);
    const after = values(params);
    expect(after[0]).not.toEqual(init[0]);
    expect(after[1]).toEqual(init[1]);
    expect(after[2]).toEqual(init[2]);

    const bad = tf.tensor(f32([NaN, ...grads[0][0].slice(1)]), SPECS[0].shape);
    const r = opt.step({ [SPECS[0].name]: bad }, 1e-2);
    expect(r.skipped).toBe(true);
    expect(values(params)[0]).toEqual(after[0]);
    expect(opt.stepCount).toBe(1);
    g.dispose();
    bad.dispose();
    dispose(params, opt);
  });

  it('allocates no tensors per step and frees its moments on dispose', () => {
    const { init, grads } = problem(7, 3);
    const before = tf.memory().numTensors;
    const params = makeParams(init);
    const opt = new AdamW(params, { ...OPTIONS, gradClip: 0.1 });
    const afterBuild = tf.memory().numTensors;
    expect(afterBuild - before).toBe(3 * SPECS.length); // each parameter plus its two moments
    runSteps(opt, grads, LRS);
    opt.exportState();
    opt.importState(opt.exportState());
    expect(tf.memory().numTensors).toBe(afterBuild);
    dispose(params, opt);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects gradients for unknown parameters or of the wrong shape', () => {
    const params = makeParams(problem(8, 0).init);
    const opt = new AdamW(params, OPTIONS);
    const g = tf.zeros([3, 4]);
    expect(() => opt.step({ 'no.such.weight': g }, 1e-3)).toThrow(/AdamW gradient no.such.weight expected to name a parameter/);
    expect(() => opt.step({ [SPECS[0].name]: g }, 1e-3)).toThrow(/expected shape \[4,3\], but got \[3,4\]/);
    g.dispose();
    dispose(params, opt);
  });

  it('reports every mismatch of imported state at once, changing nothing', () => {
    const params = makeParams(problem(9, 0).init);
    const opt = new AdamW(params, OPTIONS);
    const state = opt.exportState();
    state.delete(`${SPECS[1].name}.exp_avg_sq`);
    state.set(`${SPECS[0].name}.exp_avg`, { shape: [12], data: new Float32Array(12) });
    state.set('blocks.9.extra.exp_avg', { shape: [1], data: new Float32Array(1) });
    state.set(STEP_KEY, { shape: [1], data: Float32Array.of(4) });
    let error: unknown;
    try {
      opt.importState(state);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    const message = (error as Error).message;
    expect(message).toContain(`missing ${SPECS[1].name}.exp_avg_sq`);
    expect(message).toContain(`${SPECS[0].name}.exp_avg has shape [12] instead of [4,3]`);
    expect(message).toContain('unexpected blocks.9.extra.exp_avg');
    expect(opt.stepCount).toBe(0);
    dispose(params, opt);
  });
});

describe('AdamW options', () => {
  it.each([
    [{ ...OPTIONS, betas: [0.9, 1] as const }, /optimizer.betas\[1\] expected a number in \[0, 1\), but got 1/],
    [{ ...OPTIONS, eps: 0 }, /optimizer.eps expected a positive finite number, but got 0/],
    [{ ...OPTIONS, weightDecay: -1 }, /optimizer.weight_decay expected a finite number >= 0, but got -1/],
    [{ ...OPTIONS, gradClip: -1 }, /trainer.grad_clip expected a finite number >= 0/],
  ])('rejects %o', (options, message) => {
    expect(() => new AdamW([], options)).toThrow(message);
  });
});
