import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GREEDY, XlstmModel } from '../../src/core/index.ts';
import type { RowId, StepInput } from '../../src/serve/decoder.ts';
import { InProcessDecoder } from '../../src/serve/in-process-decoder.ts';
import { TINY } from '../support/tiny-model.ts';
import { webgpuTitle, webgpuUnavailable } from '../support/webgpu.ts';

const reason = await webgpuUnavailable();
const PROMPTS = [[1, 2, 3], [5], [9, 8, 7, 6, 5]];
const SAMPLED = { temperature: 1, topK: 0, topP: 1 };
const STEPS = 6;

describe.skipIf(reason !== null)(webgpuTitle('greedy decoding on the device', reason), () => {
  let model: XlstmModel;
  beforeAll(() => {
    model = XlstmModel.init(TINY, 3);
  });
  afterAll(() => model?.dispose());

  /**
   * Greedy rows alone take the device path (ids and log-probabilities read back); with one sampled
   * row beside them the whole batch's logits come back and every row is sampled on the host. The
   * greedy rows must not tell the difference.
   */
  async function decode(withSampledRow: boolean, suppress: number | null) {
    const decoder = new InProcessDecoder(model, suppress);
    try {
      const prompts = withSampledRow ? [...PROMPTS, [4, 4]] : PROMPTS;
      const admitted = await decoder.admit(prompts.map((tokens, i) => ({ tokens, sampling: i < PROMPTS.length ? GREEDY : SAMPLED, uniform: 0.5 })));
      const rows = admitted.map((a) => a.row);
      const ids: number[][] = PROMPTS.map(() => []);
      const logprobs: number[][] = PROMPTS.map(() => []);
      let last = new Map(admitted.map((a) => [a.row, a.id]));
      for (let s = 0; s < STEPS; s++) {
        const inputs = new Map<RowId, StepInput>(rows.map((r, i) => [r, { token: last.get(r)!, sampling: i < PROMPTS.length ? GREEDY : SAMPLED, uniform: 0.5 }]));
        const out = await decoder.step(inputs);
        rows.slice(0, PROMPTS.length).forEach((r, i) => {
          ids[i].push(out.get(r)!.id);
          logprobs[i].push(out.get(r)!.logprob);
        });
        last = new Map([...out].map(([r, x]) => [r, x.id]));
      }
      return { ids, logprobs };
    } finally {
      await decoder.close();
    }
  }

  for (const suppress of [null, 0]) {
    it(`should give the host's greedy tokens and log-probabilities (suppressed token: ${suppress})`, async () => {
      const device = await decode(false, suppress);
      const host = await decode(true, suppress);
      expect(device.ids).toEqual(host.ids);
      device.logprobs.flat().forEach((lp, j) => expect(lp).toBeCloseTo(host.logprobs.flat()[j], 4));
      if (suppress !== null) expect(device.ids.flat()).not.toContain(suppress);
    }, 120_000);
  }
});
