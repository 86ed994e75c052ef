import { describe, expect, it } from 'vitest';
import { deriveDims, validateModelConfig } from '../../../src/core/index.ts';
import { Rng } from '../../../src/util/rng.ts';
import { normal, randomState, relDiffs, SIMD_CONFIG, stepOn } from './step-pair.ts';

describe('the mLSTM step kernel: wasm SIMD (float32) against the cpu JavaScript loops (float64 inside)', () => {
  it.each([
    ['conv', SIMD_CONFIG],
    ['no conv', validateModelConfig({ ...SIMD_CONFIG, ker_size: 0 })],
  ] as const)('agree on y and every state tensor to 2e-6 of their scale (%s), from initial and running states', async (_, config) => {
    const B = 5;
    const x = normal(new Rng(1), B * deriveDims(config).d, 2);
    const state = randomState(config, 0, B, 2);
    const simd = await stepOn('wasm', config, 0, x, state);
    const js = await stepOn('cpu', config, 0, x, state);
    const diffs = relDiffs(simd, js);
    expect(Object.keys(diffs).sort()).toEqual(config.ker_size > 0 ? ['C', 'conv', 'm', 'n', 'y'] : ['C', 'm', 'n', 'y']);
    for (const [key, d] of Object.entries(diffs)) expect(d, key).toBeLessThan(2e-6);
  });
});
