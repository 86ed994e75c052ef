/** Seeded tiny models and the PyTorch-generated fixtures, shared by the core tests. */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { deriveDims, modelParams, validateModelConfig, XlstmModel, type ModelConfig, type NamedArray } from '../../src/core/index.ts';
import { refInit } from './reference/index.ts';

/** DESIGN's tiny model: d=16, nh=2, dh=8, signature (1,1), two layers, V=64. */
export const TINY: ModelConfig = validateModelConfig({
  vocab_size: 64,
  num_layers: 2,
  signature: [1, 1],
  inp_dim: 16,
  head_dim: 8,
  head_num: 2,
  p_factor: [2, 1.3333333],
  ker_size: 4,
});

/** The tiny model with one layer (one mLSTM and one sLSTM block): the fast tests' default. */
export const TINY_ONE_LAYER: ModelConfig = validateModelConfig({ ...TINY, num_layers: 1 });

export interface Fixture {
  readonly config: ModelConfig;
  readonly params: Map<string, Float64Array>;
  readonly tokens: number[][];
  /** float64 logits [B][T][V] from the PyTorch reference (parallel form). */
  readonly logits: number[][][];
}

/** A fixture written by test/fixtures/make-reference-fixture.py (see its provenance header). */
export function loadFixture(name: 'tiny' | 'noconv'): Fixture {
  const raw = JSON.parse(readFileSync(new URL(`../fixtures/ref-${name}.json`, import.meta.url), 'utf8')) as {
    config: unknown;
    tokens: number[][];
    params: Record<string, { shape: number[]; values: number[] }>;
    logits: number[][][];
  };
  const params = new Map(Object.entries(raw.params).map(([k, v]) => [k, Float64Array.from(v.values)] as const));
  return { config: validateModelConfig(raw.config), params, tokens: raw.tokens, logits: raw.logits };
}

/** A tfjs model holding the given float64 parameters rounded to float32. */
export function modelFromParams(config: ModelConfig, params: ReadonlyMap<string, Float64Array>): XlstmModel {
  const arrays = new Map<string, NamedArray>();
  for (const spec of modelParams(deriveDims(config))) {
    const data = params.get(spec.name);
    if (data) arrays.set(spec.name, { shape: [...spec.shape], data: Float32Array.from(data) });
  }
  return XlstmModel.fromArrays(config, arrays);
}

/** A seeded tiny model and its float64 parameters (the tfjs model holds them rounded to float32). */
export function seededTiny(config: ModelConfig = TINY, seed = 7): { model: XlstmModel; params: Map<string, Float64Array> } {
  const params = refInit(config, seed);
  // The oracle sees exactly the float32 values the model holds.
  for (const [k, v] of params) params.set(k, Float64Array.from(Float32Array.from(v)));
  return { model: modelFromParams(config, params), params };
}

export { maxRelDiff } from './rel-diff.ts';

/** Runs fn and fails if it leaves tensors behind. */
export async function expectNoTensorLeak<T>(fn: () => T | Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await fn();
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`tensor leak: ${before} tensors before, ${after} after`);
  return out;
}
