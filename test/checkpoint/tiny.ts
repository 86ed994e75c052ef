/** The tiny model of the checkpoint tests and seeded tensors for it. */
import { deriveDims, validateModelConfig, type ModelConfig } from '../../src/core/config.ts';
import { modelParams } from '../../src/core/params.ts';
import type { NamedTensors } from '../../src/checkpoint/index.ts';
import { Rng } from '../../src/util/rng.ts';

export const TINY_OBJECT = {
  vocab_size: 64,
  num_layers: 2,
  signature: [1, 1],
  inp_dim: 16,
  head_dim: 8,
  head_num: 2,
  p_factor: [2, 1.3333333],
  ker_size: 4,
};

export const TINY: ModelConfig = validateModelConfig(TINY_OBJECT, 'TINY');

/** Every parameter of `config` filled with seeded normals (scaled 0.5), head.weight included unless `withHead` is false. */
export function seededTensors(config: ModelConfig = TINY, seed = 0, withHead = true): NamedTensors {
  const rng = new Rng(seed);
  const out: NamedTensors = new Map();
  for (const p of modelParams(deriveDims(config))) {
    if (!withHead && p.name === 'head.weight') continue;
    const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = 0.5 * rng.normal();
    out.set(p.name, { shape: [...p.shape], data });
  }
  return out;
}

export const TOKENIZER_JSON = JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { a: 0 } } });
