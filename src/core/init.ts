/** DESIGN's initialisation: every parameter drawn from its Init (params.ts) with a seeded Rng. */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng.ts';
import type { Dims } from './config.ts';
import { modelParams, type ParamSpec } from './params.ts';

/** The values of one parameter; `rng` advances only for normal draws. */
export function drawParam(spec: ParamSpec, rng: Rng): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const init = spec.init;
  switch (init.kind) {
    case 'normal':
      for (let j = 0; j < size; j++) out[j] = rng.normal() * init.std;
      return out;
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'linspace':
      for (let j = 0; j < size; j++) out[j] = size === 1 ? init.from : init.from + ((init.to - init.from) * j) / (size - 1);
      return out;
  }
}

/** Freshly initialised named tensors (PyTorch layout). */
export function initNamed(dims: Dims, seed: number): Map<string, tf.Tensor> {
  const rng = new Rng(seed);
  const named = new Map<string, tf.Tensor>();
  for (const spec of modelParams(dims)) named.set(spec.name, tf.tensor(drawParam(spec, rng), [...spec.shape]));
  return named;
}
