/**
 * The float64 reference model against the PyTorch reference (fixtures written by
 * test/fixtures/make-reference-fixture.py), against itself across forms, and against hand computations.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deriveDims, validateModelConfig, type ModelConfig } from '../../src/core/config.ts';
import { modelParams } from '../../src/core/params.ts';
import { TINY } from './tiny-model.ts';
import {
  causalConv,
  causalConvStep,
  cellParallelHead,
  cellRecurrentHead,
  cellStepHead,
  crossEntropy,
  erf,
  finiteDiffGrad,
  gelu,
  groupNorm,
  layerNorm,
  logsigmoid,
  refForward,
  refInit,
  refInitState,
  refLoss,
  refStep,
  sigmoid,
  type RefState,
} from './reference/index.ts';

// ------------------------------------------------------------------------------------------------
// helpers

type Nested = number | Nested[];

interface Fixture {
  provenance: Record<string, unknown>;
  config: unknown;
  tokens: number[][];
  params: Record<string, { shape: number[]; values: number[] }>;
  logits: number[][][];
  final_state: Array<Record<string, Nested | string>>;
}

function loadFixture(file: string): { fx: Fixture; config: ModelConfig; params: Map<string, Float64Array> } {
  const fx = JSON.parse(readFileSync(new URL(`../fixtures/${file}`, import.meta.url), 'utf8')) as Fixture;
  const config = validateModelConfig(fx.config, file);
  const params = new Map(Object.entries(fx.params).map(([name, t]) => [name, Float64Array.from(t.values)]));
  return { fx, config, params };
}

/** Nested arrays and typed arrays to one flat list, in row-major order. */
function flatten(x: Float64Array | readonly unknown[]): number[] {
  if (x instanceof Float64Array) return Array.from(x);
  return x.flatMap((r) => (typeof r === 'number' ? [r] : flatten(r as Float64Array | unknown[])));
}

/** max |a - b| / max |b| over everything: relative to the tensor's scale, so near-zero entries do not blow up. */
function relErr(a: ArrayLike<number>[] | ArrayLike<number>, b: Nested): number {
  const flatA = Array.isArray(a) ? (a as ArrayLike<number>[]).flatMap((r) => (typeof r === 'number' ? [r] : Array.from(r))) : Array.from(a as ArrayLike<number>);
  const flatB = typeof b === 'number' ? [b] : flatten(b);
  expect(flatA.length).toBe(flatB.length);
  let diff = 0;
  let scale = 0;
  flatA.forEach((x, i) => {
    diff = Math.max(diff, Math.abs(x - flatB[i]));
    scale = Math.max(scale, Math.abs(flatB[i]));
  });
  return diff / scale;
}

function stepAll(config: ModelConfig, params: Map<string, Float64Array>, tokens: number[]): { logits: Float64Array[]; state: RefState } {
  let state = refInitState(config);
  const logits = tokens.map((t) => {
    const s = refStep(config, params, t, state);
    state = s.state;
    return s.logits;
  });
  return { logits, state };
}

// ------------------------------------------------------------------------------------------------
// against PyTorch

describe.each(['ref-tiny.json', 'ref-noconv.json'])('reference model vs PyTorch fixture %s', (file) => {
  const { fx, config, params } = loadFixture(file);
  const dims = deriveDims(config);

  it('holds exactly the tensors of modelParams, in its order and shapes', () => {
    expect(Object.keys(fx.params)).toEqual(modelParams(dims).map((s) => s.name));
    for (const spec of modelParams(dims)) expect(fx.params[spec.name].shape).toEqual([...spec.shape]);
    expect(fx.provenance.generator).toBe('test/fixtures/make-reference-fixture.py');
  });

  it.each(['parallel', 'recurrent'] as const)('refForward (%s) equals the PyTorch float64 logits to 1e-10', (form) => {
    fx.tokens.forEach((seq, b) => {
      expect(relErr(refForward(config, params, seq, form), fx.logits[b])).toBeLessThan(1e-10);
    });
  });

  it('refStep token by token equals refForward, and its final state equals the reference state', () => {
    fx.tokens.forEach((seq, b) => {
      const { logits, state } = stepAll(config, params, seq);
      expect(relErr(logits, refForward(config, params, seq, 'recurrent').map((r) => Array.from(r)))).toBeLessThan(1e-12);
      expect(relErr(logits, fx.logits[b])).toBeLessThan(1e-10);
      state.forEach((block, i) => {
        const theirs = fx.final_state[i];
        expect(block.kind).toBe(theirs.kind);
        // the reference's layouts, batch first: C[b][head][i][j] pairs v_i with k_j
        const fields = block.kind === 'm' ? (['C', 'n', 'm'] as const) : (['c', 'n', 'h', 'm'] as const);
        for (const f of fields) {
          const ours = flatten((block as unknown as Record<string, Float64Array | Float64Array[] | Float64Array[][]>)[f]);
          expect(ours.length).toBeGreaterThan(0);
          expect(relErr(ours, (theirs[f] as Nested[])[b]), `block ${i} ${f}`).toBeLessThan(1e-10);
        }
        const conv = flatten(block.conv);
        expect(conv.length).toBe(config.ker_size === 0 ? 0 : (config.ker_size - 1) * block.conv[0].length);
        if (conv.length > 0) expect(relErr(conv, (theirs.conv as Nested[])[b])).toBeLessThan(1e-12);
        else expect(flatten((theirs.conv as Nested[])[b] as Nested[])).toEqual([]);
      });
    });
  });

  it('the gates of the fixture are far from their init (the stabiliser switches branches)', () => {
    const igate = Array.from(params.get(`blocks.0.igate.bias`)!);
    expect(Math.max(...igate.map(Math.abs))).toBeGreaterThan(0.5);
  });
});

// ------------------------------------------------------------------------------------------------
// forms and stabiliser

describe('stabiliser at gate pre-activations of +-60, T = 300', () => {
  const tokens = Array.from({ length: 300 }, (_, t) => (t * 37 + 11) % 64);
  const cases = [
    [60, 60],
    [60, -60],
    [-60, 60],
    [-60, -60],
  ] as const;
  it.each(cases)('input bias %d, forget bias %d: finite, and recurrent == parallel to 1e-10', (ib, fb) => {
    const params = refInit(TINY, 5);
    const dims = deriveDims(TINY);
    dims.kinds.forEach((kind, i) => {
      const [iName, fName] = kind === 'm' ? ['igate', 'fgate'] : ['W_i', 'W_f'];
      params.get(`blocks.${i}.${iName}.bias`)!.fill(ib);
      params.get(`blocks.${i}.${fName}.bias`)!.fill(fb);
    });
    const par = refForward(TINY, params, tokens, 'parallel');
    const rec = refForward(TINY, params, tokens, 'recurrent');
    expect(par.every((row) => row.every(Number.isFinite))).toBe(true);
    expect(relErr(rec, par.map((r) => Array.from(r)))).toBeLessThan(1e-10);
    if (ib === -60 && fb === -60) {
      const steps = stepAll(TINY, params, tokens.slice(0, 40)).logits;
      expect(relErr(steps, par.slice(0, 40).map((r) => Array.from(r)))).toBeLessThan(1e-10);
    }
  });
});

describe('mLSTM cell by hand', () => {
  const dh = 3;
  const q = Float64Array.of(0.3, -1.2, 0.5);
  const k = Float64Array.of(0.7, 0.1, -0.4);
  const v = Float64Array.of(-0.2, 0.9, 1.5);
  const kq = 0.3 * 0.7 - 1.2 * 0.1 - 0.5 * 0.4;
  const zeros = Array.from({ length: dh }, () => new Float64Array(dh));

  it('first step from the initial state: h~ = v (k.q) / max(|k.q|, exp(min(-it, 80)))', () => {
    for (const it of [0.3, 2, -100]) {
      const s = cellStepHead(q, k, v, it, -0.7, zeros, new Float64Array(dh), -Infinity);
      const den = Math.max(Math.abs(kq), Math.exp(Math.min(-it, 80)));
      s.h.forEach((h, a) => expect(Math.abs(h - (v[a] * kq) / den)).toBeLessThanOrEqual(1e-15 * Math.abs(h)));
      expect(s.m).toBe(it);
      // C[a][b] = v_a k_b (i' = 1, f' = 0)
      s.C.forEach((row, a) => row.forEach((c, b) => expect(c).toBe(v[a] * k[b])));
    }
  });

  it('normaliser bound caps at exp(80) when every input gate is -100, in both forms', () => {
    const T = 5;
    const qs = Array.from({ length: T }, (_, t) => Float64Array.of(0.1 * t, -0.3, 0.2 + 0.05 * t));
    const ks = Array.from({ length: T }, (_, t) => Float64Array.of(0.4, 0.2 * t, -0.1));
    const vs = Array.from({ length: T }, (_, t) => Float64Array.of(1, -t, 0.5));
    const its = new Array<number>(T).fill(-100);
    const logfs = new Array<number>(T).fill(0); // f' = 1: m stays at -100, every step weighs 1
    for (const hs of [cellRecurrentHead(qs, ks, vs, its, logfs), cellParallelHead(qs, ks, vs, its, logfs)]) {
      hs.forEach((h, t) => {
        for (let a = 0; a < dh; a++) {
          let num = 0;
          for (let s = 0; s <= t; s++) num += (qs[t][0] * ks[s][0] + qs[t][1] * ks[s][1] + qs[t][2] * ks[s][2]) * vs[s][a];
          expect(h[a] * Math.exp(80)).toBeCloseTo(num, 12);
        }
      });
    }
  });

  it('recurrent == parallel on random gates spanning [-30, 30]', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const T = 40;
    const vec = () => Float64Array.from({ length: 4 }, rand);
    const qs = Array.from({ length: T }, vec);
    const ks = Array.from({ length: T }, vec);
    const vs = Array.from({ length: T }, vec);
    const its = Array.from({ length: T }, () => 30 * rand());
    const logfs = Array.from({ length: T }, () => logsigmoid(30 * rand()));
    const rec = cellRecurrentHead(qs, ks, vs, its, logfs);
    const par = cellParallelHead(qs, ks, vs, its, logfs);
    expect(relErr(rec, par.map((r) => Array.from(r)))).toBeLessThan(1e-12);
  });
});

// ------------------------------------------------------------------------------------------------
// operations against independent values

describe('reference ops', () => {
  it('erf matches mpmath (40 digits) to 1e-15', () => {
    // /usr/bin/python3 -c "from mpmath import mp, erf, mpf; mp.dps = 40; print(float(erf(mpf(x))))"
    const table: Array<[number, number]> = [
      [0, 0],
      [1e-3, 0.0011283787909692365],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [1.4999, 0.9660932516622953],
      [1.5, 0.9661051464753108],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [5, 0.9999999999984626],
      [-2.5, -0.999593047982555],
      [5.9, 0.9999999999999999],
    ];
    for (const [x, want] of table) expect(Math.abs(erf(x) - want)).toBeLessThanOrEqual(1e-15);
    expect(erf(40)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
  });

  it('gelu, sigmoid and logsigmoid: exact values and no overflow at the extremes', () => {
    expect(gelu(1)).toBeCloseTo(0.8413447460685429, 15);
    expect(gelu(-3)).toBeCloseTo(-0.0040496940948902835, 15);
    expect(logsigmoid(60) / -8.756510762696529e-27).toBeCloseTo(1, 14);
    expect(logsigmoid(-60)).toBe(-60);
    expect(logsigmoid(-800)).toBe(-800);
    expect(sigmoid(-800)).toBe(0);
    expect(sigmoid(800)).toBe(1);
  });

  it('causal conv: weight[:, k-1] multiplies the current input, the step state reproduces the sequence', () => {
    // two channels, k = 3: y_t = b + w0 x_{t-2} + w1 x_{t-1} + w2 x_t
    const W = Float64Array.of(1, 10, 100, 2, 20, 200);
    const b = Float64Array.of(0.5, -0.5);
    const xs = [Float64Array.of(1, 2), Float64Array.of(3, 4), Float64Array.of(5, 6)];
    const ys = causalConv(xs, W, b, 3);
    expect(Array.from(ys[0])).toEqual([0.5 + 100, -0.5 + 400]);
    expect(Array.from(ys[2])).toEqual([0.5 + 1 + 30 + 500, -0.5 + 4 + 80 + 1200]);
    let state: Float64Array[] = [new Float64Array(2), new Float64Array(2)];
    xs.forEach((x, t) => {
      const s = causalConvStep(x, state, W, b, 3);
      expect(Array.from(s.y)).toEqual(Array.from(ys[t]));
      state = s.state;
    });
    expect(state.map((r) => Array.from(r))).toEqual([[3, 4], [5, 6]]);
  });

  it('groupNorm normalises each head alone, then applies the per-channel weight and bias', () => {
    const x = Float64Array.of(1, 2, 3, 100, -50, 7);
    const w = Float64Array.of(1, 2, 3, 4, 5, 6);
    const b = Float64Array.of(0, 0, 0, 1, 1, 1);
    const y = groupNorm(x, w, b, 2);
    const head0 = layerNorm(x.subarray(0, 3), w.subarray(0, 3), b.subarray(0, 3));
    const head1 = layerNorm(x.subarray(3), w.subarray(3), b.subarray(3));
    expect(Array.from(y)).toEqual([...head0, ...head1]);
    // head 0: mean 2, biased variance 2/3
    expect(y[0]).toBeCloseTo(-1 / Math.sqrt(2 / 3 + 1e-5), 14);
  });
});

// ------------------------------------------------------------------------------------------------
// loss, init, finite differences

describe('refLoss', () => {
  const { config, params } = loadFixture('ref-tiny.json');

  it('on one position equals log(sum exp z) - z[target], computed by hand', () => {
    const z = refForward(config, params, [5], 'parallel')[0];
    let sum = 0;
    for (const v of z) sum += Math.exp(v);
    expect(refLoss(config, params, [[5]], [[17]])).toBeCloseTo(Math.log(sum) - z[17], 13);
  });

  it('averages over the unmasked positions of every sequence', () => {
    const tokens = [
      [1, 2, 3],
      [4, 5],
    ];
    const targets = [
      [2, 3, 9],
      [5, 60],
    ];
    const mask = [
      [1, 0, 1],
      [1, 1],
    ];
    const z0 = refForward(config, params, tokens[0], 'parallel');
    const z1 = refForward(config, params, tokens[1], 'parallel');
    const want = (crossEntropy(z0[0], 2) + crossEntropy(z0[2], 9) + crossEntropy(z1[0], 5) + crossEntropy(z1[1], 60)) / 4;
    expect(refLoss(config, params, tokens, targets, mask)).toBeCloseTo(want, 13);
    expect(() => refLoss(config, params, [[1]], [[2]], [[0]])).toThrow(/unmasked/);
  });

  it('a tied model reads the embedding as its head', () => {
    const tied = new Map(params);
    tied.delete('head.weight');
    const untied = new Map(params);
    untied.set('head.weight', params.get('embedding.weight')!);
    const a = refForward({ ...config, tie_weights: true }, tied, [3, 4], 'parallel');
    const b = refForward(config, untied, [3, 4], 'parallel');
    expect(relErr(a, b.map((r) => Array.from(r)))).toBe(0);
  });
});

describe('refInit', () => {
  const dims = deriveDims(TINY);

  it('draws every tensor of modelParams per its Init, deterministically per seed', () => {
    const p = refInit(TINY, 3);
    expect([...p.keys()]).toEqual(modelParams(dims).map((s) => s.name));
    expect(Array.from(p.get('blocks.0.fgate.bias')!)).toEqual([3, 6]);
    expect(p.get('blocks.0.fgate.weight')!.every((v) => v === 0)).toBe(true);
    expect(p.get('blocks.1.norm.weight')!.every((v) => v === 1)).toBe(true);
    expect(p.get('blocks.1.W_f.bias')!.every((v) => v === 0)).toBe(true);
    const std = (t: Float64Array) => Math.sqrt(t.reduce((a, v) => a + v * v, 0) / t.length);
    expect(std(p.get('embedding.weight')!) / Math.sqrt(2 / (5 * 16))).toBeCloseTo(1, 0);
    expect(Math.abs(std(p.get('blocks.0.down.weight')!) / (2 / (4 * 4)) - 1)).toBeLessThan(0.15);
    expect(Array.from(refInit(TINY, 3).get('head.weight')!)).toEqual(Array.from(p.get('head.weight')!));
    expect(refInit(TINY, 4).get('head.weight')![0]).not.toBe(p.get('head.weight')![0]);
  });
});

describe('finiteDiffGrad', () => {
  it('is exact to 1e-8 on a cubic and restores the parameter bit for bit', () => {
    const p = Float64Array.of(0.3, -1.7, 2.2);
    const before = Float64Array.from(p);
    const f = () => p[0] ** 3 + p[0] * p[1] + Math.sin(p[2]);
    const g = finiteDiffGrad(f, p, [0, 1, 2]);
    const want = [3 * 0.09 - 1.7, 0.3, Math.cos(2.2)];
    g.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-8));
    expect(Array.from(p)).toEqual(Array.from(before));
  });

  it('matches the analytic gradient of refLoss with respect to norm_f.bias', () => {
    // z = head (LN_f(x) + bias): dL/dbias_i = mean_t sum_v (softmax(z_t)_v - [v = y_t]) head[v, i]
    const { config, params } = loadFixture('ref-tiny.json');
    const tokens = [3, 14, 15, 9];
    const targets = [14, 15, 9, 26];
    const z = refForward(config, params, tokens, 'parallel');
    const head = params.get('head.weight')!;
    const { V, d } = deriveDims(config);
    const want = new Array<number>(d).fill(0);
    z.forEach((row, t) => {
      const max = Math.max(...row);
      const e = Array.from(row, (v) => Math.exp(v - max));
      const sum = e.reduce((a, v) => a + v, 0);
      for (let v = 0; v < V; v++) {
        const g = e[v] / sum - (v === targets[t] ? 1 : 0);
        for (let i = 0; i < d; i++) want[i] += (g * head[v * d + i]) / tokens.length;
      }
    });
    const bias = params.get('norm_f.bias')!;
    const got = finiteDiffGrad(() => refLoss(config, params, [tokens], [targets]), bias, [0, 5, 15]);
    [0, 5, 15].forEach((i, j) => expect(Math.abs(got[j] - want[i])).toBeLessThan(1e-8));
  });
});
