/** Greedy decode throughput through a DecodePool (worker threads), measured the way benchDecode measures in process. */
import { DecodePool, type RowId } from '../../src/serve/decode-pool.ts';
import { GREEDY, Rng } from './core-api.ts';

export interface DecodeFigure {
  readonly msPerStep: number;
  readonly tokensPerS: number;
  /**
   * CPU time of the whole process (every thread) per timed step: unlike wall time it hardly moves when other
   * jobs take the cores, so it shows the work a step costs.
   */
  readonly cpuMsPerStep: number;
}

/** Wall and CPU time of `steps` calls of `one` (B tokens each) after `warmup` untimed ones. */
export async function measureSteps(one: () => unknown, B: number, warmup: number, steps: number): Promise<DecodeFigure> {
  for (let j = 0; j < warmup; j++) await one();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let j = 0; j < steps; j++) await one();
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { msPerStep: (1000 * secs) / steps, tokensPerS: (B * steps) / secs, cpuMsPerStep: (cpu.user + cpu.system) / 1000 / steps };
}

/**
 * B rows admitted with one random token each (not timed), then `warmup` and `steps` pool steps. Each step is
 * what serving does per token: the model step on the workers, the logits read there, and greedy sampling with
 * the token's log-probability (a log-sum-exp over the vocabulary per row, which the peer's argmax skips).
 */
export async function benchPoolDecode(pool: DecodePool, V: number, B: number, warmup = 8, steps = 64): Promise<DecodeFigure> {
  const rng = new Rng(B);
  const admitted = await pool.admit(Array.from({ length: B }, () => ({ tokens: [rng.int(V)], sampling: GREEDY, uniform: 0 })));
  let last = new Map<RowId, number>(admitted.map((a) => [a.row, a.id]));
  const one = async () => {
    const out = await pool.step(new Map([...last].map(([row, token]) => [row, { token, sampling: GREEDY, uniform: 0 }])));
    last = new Map([...out].map(([row, s]) => [row, s.id]));
  };
  try {
    return await measureSteps(one, B, warmup, steps);
  } finally {
    await pool.retire([...last.keys()]);
  }
}
