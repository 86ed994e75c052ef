/**
 * What the prefill's two threads agree on: the control words at the start of their shared memory, the job the
 * calling thread posts to the helper, and how each waits for the other's progress.
 */

/** Int32 indices of the control words, at byte 0 of the shared memory. */
export const CTRL = {
  /** 1 once the helper's modules are loaded */
  READY: 0,
  /** units finished by the calling thread (role 0) and by the helper (role 1): see unitsThrough */
  PROGRESS0: 1,
  PROGRESS1: 2,
  /** 1 when the helper failed a job: the calling thread redoes the prompt alone */
  FAILED: 3,
  /** 1 when the calling thread gave up on the job: the helper stops at its next wait */
  ABORT: 4,
  /** blocks whose weights the calling thread has copied into the shared memory */
  COPIED: 5,
  /** the helper's time computing its share of the job, in microseconds, set before its last progress */
  BUSY1: 6,
} as const;

/** Bytes reserved for the control words (16-byte aligned, so what follows is too). */
export const CTRL_BYTES = 64;

/**
 * A threaded prefill: the prompt's chunks alternate between the threads (role 1, the helper, takes the even ones,
 * so that it starts while the calling thread copies the weights), and each thread runs its chunks through every
 * block, block b of chunk j once the other thread has finished block b of chunk j - 1 (whose state it continues);
 * block b of chunk 0 also waits for its weights (COPIED > b). All addresses are bytes in the shared memory.
 */
export interface PrefillJob {
  readonly type: 'job';
  /** planKey(dims): the dims as JSON */
  readonly plan: string;
  /** the step weights (hostStepWeights' layout) */
  readonly W: number;
  /** the state [B, S] */
  readonly state: number;
  readonly B: number;
  /** positions per row of each chunk, in order */
  readonly chunks: readonly number[];
  /** chunk j's embedded tokens (B * chunks[j] * d floats) lie end to end from here */
  readonly inputs: number;
  /** the final-normed hidden rows of the prompt's last position, [B, d] */
  readonly xOut: number;
  /** each role's scratch (carve(scratch[role], B, max chunk, dims)) */
  readonly scratch: readonly [number, number];
}

/** The helper's word on a job that threw (posted; the calling thread has already seen FAILED). */
export interface PrefillFailure {
  readonly type: 'failed';
  readonly message: string;
}

/** A role's progress once it has finished block b of chunk j, of L blocks: progress only grows. */
export const unitsThrough = (j: number, b: number, L: number): number => j * L + b + 1;

/**
 * How long a wait spins before it sleeps (ms): the other thread is usually a fraction of a block away, and waking
 * a sleeping thread costs tens of microseconds, once per block the waiting thread follows.
 */
const SPIN_MS = 0.05;

/**
 * Waits until ctrl[index] >= target; false as soon as `abort()` says so (asked between sleeps of at most pollMs).
 */
export function waitFor(ctrl: Int32Array, index: number, target: number, pollMs: number, abort: () => boolean): boolean {
  if (Atomics.load(ctrl, index) >= target) return true;
  const spinUntil = performance.now() + SPIN_MS;
  let spins = 0;
  for (let seen = Atomics.load(ctrl, index); seen < target; seen = Atomics.load(ctrl, index)) {
    if ((++spins & 255) !== 0 || performance.now() < spinUntil) continue;
    if (abort()) return false;
    Atomics.wait(ctrl, index, seen, pollMs);
  }
  return true;
}
