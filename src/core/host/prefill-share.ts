/**
 * One thread's share of a threaded prefill: its chunks of the prompt (every other one) through every block, each
 * block of a chunk after the other thread has finished that block of the chunk before, in the shared memory.
 */
import type { Plan, StepKernels } from './model-step.ts';
import { carve, runBlocks, type Pass } from './prefill-blocks.ts';
import { CTRL, unitsThrough, waitFor, type PrefillJob } from './prefill-protocol.ts';

/** How long one sleep of a wait lasts before the abort test runs again (ms). */
const POLL_MS = 50;

/** The role that takes chunk j: the helper (1) the even ones, the calling thread (0) the odd ones. */
export const roleOf = (j: number): 0 | 1 => (j % 2 === 0 ? 1 : 0);

/**
 * Runs role's chunks of `job`: the milliseconds it spent computing them (its waits for the other thread left out),
 * or null when `abort()` stopped it while waiting. The helper also leaves that time in CTRL.BUSY1.
 */
export function runShare(role: 0 | 1, job: PrefillJob, plan: Plan, k: StepKernels, F: Float32Array, ctrl: Int32Array, abort: () => boolean): number | null {
  const { dims } = plan;
  const { d } = dims;
  const { B, chunks } = job;
  const L = dims.kinds.length;
  const mine = role === 0 ? CTRL.PROGRESS0 : CTRL.PROGRESS1;
  const theirs = role === 0 ? CTRL.PROGRESS1 : CTRL.PROGRESS0;
  const a = carve(job.scratch[role], B, Math.max(...chunks), dims);
  let last = -1;
  for (let j = 0; j < chunks.length; j++) if (roleOf(j) === role) last = j;
  let busy = 0;
  let input = job.inputs;
  for (let j = 0; j < chunks.length; j++) {
    const Tc = chunks[j];
    const at = input;
    input += 4 * B * Tc * d;
    if (roleOf(j) !== role) continue;
    const pass: Pass = { k, F, dims, a, B, Tc, state: job.state, row: 4 * plan.stateSize };
    let [x, xNext] = [at, a.x1];
    for (let b = 0; b < L; b++) {
      const ready = j > 0 ? waitFor(ctrl, theirs, unitsThrough(j - 1, b, L), POLL_MS, abort) : waitFor(ctrl, CTRL.COPIED, b + 1, POLL_MS, abort);
      if (!ready) return null;
      const t0 = performance.now();
      x = runBlocks(pass, plan, job.W, b, b + 1, x, xNext);
      xNext = x === at ? a.x1 : at;
      if (b === L - 1 && j === chunks.length - 1) {
        const { normW, normB } = plan.weights.final;
        for (let r = 0; r < B; r++) k.m.norm(x + 4 * (r * Tc + Tc - 1) * d, job.W + 4 * normW, job.W + 4 * normB, job.xOut + 4 * r * d, 1);
      }
      busy += performance.now() - t0;
      if (role === 1 && j === last && b === L - 1) Atomics.store(ctrl, CTRL.BUSY1, Math.round(busy * 1000));
      Atomics.store(ctrl, mine, unitsThrough(j, b, L));
      Atomics.notify(ctrl, mine);
    }
  }
  return busy;
}
