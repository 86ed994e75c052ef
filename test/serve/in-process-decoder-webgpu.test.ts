import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { selectBackend } from '../../src/backend/select.ts';
import { GREEDY, XlstmModel, type SamplingParams } from '../../src/core/index.ts';
import type { RowId, StepInput } from '../../src/serve/decoder.ts';
import { InProcessDecoder } from '../../src/serve/in-process-decoder.ts';
import { Rng } from '../../src/util/rng.ts';
import { TINY } from '../support/tiny-model.ts';
import { webgpuTitle, webgpuUnavailable } from '../support/webgpu.ts';

const reason = await webgpuUnavailable();
const PROMPTS = [[1, 2, 3], [5], [9, 8, 7, 6, 5], [4, 4], [7]];
/** A greedy row among sampled ones with each of the limits. */
const SETTINGS: SamplingParams[] = [
  GREEDY,
  { temperature: 1, topK: 0, topP: 1 },
  { temperature: 0.8, topK: 10, topP: 1 },
  { temperature: 1.2, topK: 0, topP: 0.8 },
  { temperature: 0.9, topK: 20, topP: 0.9 },
];
const STEPS = 6;

/**
 * Decodes PROMPTS on `backend` with the same seeded model and per-row uniforms: the admitted tokens,
 * then STEPS batched steps. Returns each row's ids and log-probabilities, and the names of the kernels
 * that ran.
 */
async function decode(backend: 'cpu' | 'webgpu', suppress: number | null) {
  await selectBackend(backend);
  const model = XlstmModel.init(TINY, 3);
  const decoder = new InProcessDecoder(model, suppress);
  const rngs = PROMPTS.map((_, i) => new Rng(100 + i));
  const ids: number[][] = PROMPTS.map(() => []);
  const logprobs: number[][] = PROMPTS.map(() => []);
  try {
    const profile = await tf.profile(async () => {
      const admitted = await decoder.admit(PROMPTS.map((tokens, i) => ({ tokens, sampling: SETTINGS[i], uniform: rngs[i].uniform() })));
      const rows = admitted.map((a) => a.row);
      admitted.forEach((a, i) => (ids[i].push(a.id), logprobs[i].push(a.logprob)));
      for (let s = 0; s < STEPS; s++) {
        const inputs = new Map<RowId, StepInput>(rows.map((r, i) => [r, { token: ids[i][ids[i].length - 1], sampling: SETTINGS[i], uniform: rngs[i].uniform() }]));
        const out = await decoder.step(inputs);
        rows.forEach((r, i) => (ids[i].push(out.get(r)!.id), logprobs[i].push(out.get(r)!.logprob)));
      }
    });
    return { ids, logprobs, kernels: profile.kernels.map((k) => k.name) };
  } finally {
    await decoder.close();
    model.dispose();
  }
}

describe.skipIf(reason !== null)(webgpuTitle('sampling on the device in the decoder', reason), () => {
  for (const suppress of [null, 0]) {
    it(`should draw on the device the tokens the cpu backend draws on the host (suppressed token: ${suppress})`, async () => {
      const host = await decode('cpu', suppress);
      const device = await decode('webgpu', suppress);
      // Every admission and every step drew on the device: one sampling kernel each (prefill batches by length).
      expect(device.kernels.filter((k) => k === 'XlstmGpuSample').length).toBe(STEPS + new Set(PROMPTS.map((p) => p.length)).size);
      expect(host.kernels).not.toContain('XlstmGpuSample');
      expect(device.ids).toEqual(host.ids);
      device.logprobs.flat().forEach((lp, j) => expect(lp).toBeCloseTo(host.logprobs.flat()[j], 4));
      // The sampled rows did sample: not every row followed its argmax.
      expect(new Set(device.ids.slice(1).flat()).size).toBeGreaterThan(8);
      if (suppress !== null) expect(device.ids.flat()).not.toContain(suppress);
    }, 120_000);
  }
});
