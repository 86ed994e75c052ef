import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { greedyTokens } from '../../../src/core/gpu/greedy.ts';
import { GREEDY, sampleToken } from '../../../src/core/index.ts';
import { Rng } from '../../../src/util/rng.ts';
import { webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();

/** Rows with a spread of shapes: random, a tie for the maximum (lowest id wins), a peak at the last id. */
function rows(V: number): Float32Array {
  const rng = new Rng(9);
  const out = Float32Array.from({ length: 4 * V }, () => 4 * rng.normal());
  out[V + 7] = 30;
  out[V + 901] = 30;
  out[3 * V - 1] = 50;
  out.fill(-1e4, 3 * V, 4 * V);
  out[3 * V + 2] = -9000;
  return out;
}

describe.each(['cpu', 'webgpu'] as const)('greedyTokens on %s', (backend) => {
  const unavailable = backend === 'webgpu' ? reason : null;
  describe.skipIf(unavailable)(webgpuTitle(`greedyTokens (${backend})`, unavailable), () => {
    it.each([64, 1000, 50258])('picks the host sampler\'s greedy token and log-probability, V = %d', async (V) => {
      await selectBackend(backend);
      const data = rows(V);
      const { ids, logprobs } = greedyTokens(tf.tensor2d(data, [4, V]));
      const gotIds = await ids.data();
      const gotLp = await logprobs.data();
      tf.dispose([ids, logprobs]);
      for (let r = 0; r < 4; r++) {
        const want = sampleToken(data.subarray(r * V, (r + 1) * V), GREEDY, new Rng(1));
        expect(gotIds[r], `row ${r}`).toBe(want.id);
        expect(Math.abs(gotLp[r] - want.logprob), `row ${r}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(want.logprob)));
      }
    });
  });
});
