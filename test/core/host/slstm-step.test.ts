import { describe, expect, it } from 'vitest';
import { deriveDims, validateModelConfig } from '../../../src/core/index.ts';
import { Rng } from '../../../src/util/rng.ts';
import { normal, randomState, relDiffs, SIMD_CONFIG, stepOn } from './step-pair.ts';

describe('the sLSTM step kernel: wasm SIMD (float32) against the cpu JavaScript loops (float64 inside)', () => {
  it.each([
    ['conv', SIMD_CONFIG],
    ['no conv', validateModelConfig({ ...SIMD_CONFIG, ker_size: 0 })],
  ] as const)('agree on y and every state tensor to 2e-6 of their scale (%s), from initial and running states', async (_, config) => {
    const B = 5;
    const x = normal(new Rng(3), B * deriveDims(config).d, 2);
    const state = randomState(config, 1, B, 4);
    const simd = await stepOn('wasm', config, 1, x, state);
    const js = await stepOn('cpu', config, 1, x, state);
    const diffs = relDiffs(simd, js);
    expect(Object.keys(diffs).sort()).toEqual(config.ker_size > 0 ? ['c', 'conv', 'h', 'm', 'n', 'y'] : ['c', 'h', 'm', 'n', 'y']);
    for (const [key, d] of Object.entries(diffs)) expect(d, key).toBeLessThan(2e-6);
  });
});
