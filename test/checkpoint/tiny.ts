/** The tiny model of the checkpoint tests and seeded tensors for it. */
import { configToObject, deriveDims, type ModelConfig } from '../../src/core/config.ts';
import { TINY } from '../support/tiny-model.ts';
import { modelParams } from '../../src/core/params.ts';
import type { NamedTensors } from '../../src/checkpoint/index.ts';
import { Rng } from '../../src/util/rng.ts';

export { TINY };

/** TINY as plain data, for YAML files and the PyTorch reference. */
export const TINY_OBJECT = configToObject(TINY);

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
