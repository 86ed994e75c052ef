/**
 * Prefill on two threads: the prompt's chunks of positions alternate between a helper thread and the calling
 * thread, each running its chunks through every block in a shared memory (a copy of the step weights, the state),
 * block b of a chunk as soon as the other thread has finished block b of the chunk before. Every block sees exactly
 * the inputs and runs exactly the kernels it would on one thread, so the results are the same bit for bit. The
 * helper starts lazily, does not keep the process alive, and any failure falls back to one thread.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, type Worker } from 'node:worker_threads';
import type * as tf from '@tensorflow/tfjs-core';
import { XlstmError } from '../../util/errors.ts';
import { typeScriptWorker } from '../../util/ts-worker.ts';
import type { HostIO } from './io.ts';
import { addresses, kernelsFor, type Plan, type StepKernels } from './model-step.ts';
import { stepWeightsBuildAt } from './step-weights.ts';
import { carve } from './prefill-blocks.ts';
import { CTRL, CTRL_BYTES, unitsThrough, waitFor, type PrefillFailure, type PrefillJob } from './prefill-protocol.ts';
import { roleOf, runShare } from './prefill-share.ts';
import { matmulKernels } from './simd/matmul-kernel.ts';

/**
 * Below this much work (positions times weight floats, about the multiply-adds) a prompt stays on one thread: the
 * weights' copy and the hand-overs cost about what the second core saves. Measured on the reference model (3.8M
 * weight floats) with two cores: even at 16 positions, two threads lose at 8.
 */
export const THREADED_MIN_WORK = 2 ** 26;
/**
 * Positions (over all rows) per chunk, as on one thread: each thread streams every block's weights once per chunk,
 * and the other thread waits at most about one block of one chunk at the start and the end.
 */
const CHUNK_POSITIONS = 128;

/** The shared memory's growth limit (pages of 64 KiB): 2 GiB. */
const MAX_PAGES = 32768;

/** How long the calling thread waits for a helper that makes no progress before it gives up on it (ms). */
const STALL_MS = 10_000;

/** How long one sleep of the calling thread's waits lasts before it looks for a failure or a stall (ms). */
const POLL_MS = 50;

let threads = isMainThread && availableParallelism() > 1 ? 2 : 1;
let minWork = THREADED_MIN_WORK;

/**
 * The helper's share of a prompt's positions: its speed over both threads' speeds, as measured in the threaded
 * prefills so far. The two cores of a shared machine need not run at one speed (on this project's VM one of them
 * ran half as fast for minutes on end), and the calling thread follows the helper block by block, so an even
 * split leaves the faster thread idle for the difference.
 */
let helperShare = 0.5;
/** How far the share may move from even: neither thread's chunks shrink below a fifth of the prompt. */
const SHARE_RANGE: readonly [number, number] = [0.2, 0.8];

/**
 * Threads a long prefill may use: 2 by default on the main thread of a machine with more than one core, else 1
 * (worker threads, such as the decode pool's, leave the other cores to their siblings). A helper already started
 * stays, idle and unref'd, for when threads are 2 again. `minWork` replaces THREADED_MIN_WORK (tests take tiny
 * models through the threaded path with 0); `helperShare` sets the helper's share of the next prompt, which then
 * follows the measured speeds again.
 */
export function setPrefillThreads(n: number, options: { minWork?: number; helperShare?: number } = {}): void {
  if (n !== 1 && n !== 2) throw new XlstmError('INVALID_CONFIG', `prefill threads expected 1 or 2, but got ${n}. Hint: pass 2 to use a helper thread, 1 for none.`);
  const work = options.minWork ?? THREADED_MIN_WORK;
  if (!(work >= 0)) throw new XlstmError('INVALID_CONFIG', `the threaded prefill's minimum work expected a number >= 0, but got ${work}. Hint: leave it out for the measured default.`);
  const share = options.helperShare ?? helperShare;
  if (!(share >= SHARE_RANGE[0] && share <= SHARE_RANGE[1])) {
    throw new XlstmError('INVALID_CONFIG', `the helper's share of a prompt expected a number in [${SHARE_RANGE.join(', ')}], but got ${share}. Hint: leave it out; it follows the threads' measured speeds.`);
  }
  threads = n;
  minWork = work;
  helperShare = share;
}

/** The helper thread's share of the next threaded prompt's positions (0.5 until the threads' speeds differ). */
export function prefillHelperShare(): number {
  return helperShare;
}

/**
 * The next share from the last prompt's measurements: positions over computing milliseconds of each thread, half
 * way from the old share to the measured one (one prompt's timing is noisy), kept in SHARE_RANGE.
 */
export function nextHelperShare(share: number, helper: { positions: number; ms: number }, caller: { positions: number; ms: number }): number {
  if (!(helper.ms > 0 && caller.ms > 0 && helper.positions > 0 && caller.positions > 0)) return share;
  const vh = helper.positions / helper.ms;
  const vc = caller.positions / caller.ms;
  const measured = vh / (vh + vc);
  return Math.min(SHARE_RANGE[1], Math.max(SHARE_RANGE[0], (share + measured) / 2));
}

export function prefillThreads(): number {
  return threads;
}

interface Helper {
  readonly worker: Worker;
  readonly memory: WebAssembly.Memory;
  readonly ctrl: Int32Array;
  /** false once the helper died or failed a job: prefill stays on one thread from then on */
  usable: boolean;
  /** The build (stepWeightsBuildAt) of the step weights now copied into the shared memory, if any. */
  weightsBuild?: number;
}

/** The helper, once started; `false` once it could not be (no shared memory, threads or SIMD here). */
let helper: Helper | null = null;
let unavailable = false;

/** The helper when it is ready for a job; otherwise starts it (once) and returns null, so this prompt runs on one thread. */
function readyHelper(): Helper | null {
  if (threads < 2 || unavailable) return null;
  if (!helper) {
    helper = startHelper();
    return null;
  }
  return helper.usable && Atomics.load(helper.ctrl, CTRL.READY) === 1 ? helper : null;
}

function startHelper(): Helper | null {
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    // The kernels must compile for a shared memory (WebAssembly threads and SIMD both).
    if (!matmulKernels(memory)) throw new Error('no SIMD kernels over a shared memory');
  } catch {
    unavailable = true;
    return null;
  }
  const worker = typeScriptWorker(new URL('./prefill-worker.ts', import.meta.url), { workerData: { memory }, name: 'xlstm-prefill' });
  const h: Helper = { worker, memory, ctrl: new Int32Array(memory.buffer, 0, CTRL_BYTES / 4), usable: true };
  const retire = () => retireHelper(h);
  worker.on('message', (m: PrefillFailure) => {
    if (m.type === 'failed') {
      retire();
      void worker.terminate();
    }
  });
  worker.on('error', retire);
  worker.on('exit', retire);
  // After the listeners: attaching a 'message' listener refs the worker's port again.
  worker.unref();
  return h;
}

/**
 * Starts the helper (when threads are 2 and it is not running) and resolves with its worker once it takes jobs,
 * or with null where it cannot run: for start-ups that would rather not run their first long prompt on one thread.
 */
export async function awaitPrefillHelper(): Promise<Worker | null> {
  for (;;) {
    if (threads < 2 || unavailable) return null;
    const h = readyHelper();
    if (h) return h.worker;
    if (!helper) continue;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let threadedRuns = 0;

/** How many prefills ran on two threads in this thread so far. */
export function threadedPrefillCount(): number {
  return threadedRuns;
}

/**
 * Positions per row of each chunk of a B x T prompt: an even number of chunks, in pairs of (helper's, caller's)
 * (roleOf), the pairs' lengths within one of each other, and of each pair about `share` for the helper (at least
 * one position each).
 */
export function threadChunks(B: number, T: number, share = 0.5): number[] {
  const Tc = Math.max(1, Math.floor(CHUNK_POSITIONS / B));
  if (T < 2) return [T];
  const pairs = Math.max(1, Math.min(Math.floor(T / 2), Math.round(T / Tc / 2)));
  const out: number[] = [];
  for (let j = 0; j < pairs; j++) {
    const P = Math.floor((T * (j + 1)) / pairs) - Math.floor((T * j) / pairs);
    const mine = Math.min(P - 1, Math.max(1, Math.round(P * share)));
    out.push(mine, P - mine);
  }
  return out;
}

/**
 * The prompt on two threads, writing the final-normed hidden rows of its last position into xOut and the state
 * after it into sOut (both already allocated); false when it cannot (no ready helper, too short a prompt, the
 * helper failed), and then the caller runs the prompt on one thread from the start: sOut and xOut are rewritten
 * in full there, and inp.state is left as it was.
 */
export function threadedPrefill(
  io: HostIO, plan: Plan, tokens: Int32Array, inp: Record<string, tf.TensorInfo>, W: number, xOut: tf.TensorInfo, sOut: tf.TensorInfo,
): boolean {
  const [B, T] = inp.tokens.shape;
  if (T < 2 || B * T * plan.weights.size < minWork) return false;
  const h = readyHelper();
  if (!h) return false;
  const { dims } = plan;
  const { d } = dims;
  const S = plan.stateSize;
  const L = dims.kinds.length;
  const chunks = threadChunks(B, T, helperShare);
  const TcMax = Math.max(...chunks);

  // The shared memory: control words, weights, state, the chunks' embedded tokens, the last position's output, each role's scratch.
  const at = addresses(CTRL_BYTES, { weights: plan.weights.size, state: B * S, inputs: B * T * d, xOut: B * d });
  const scratch: [number, number] = [at.end, carve(at.end, B, TcMax, dims).end];
  const bytes = carve(scratch[1], B, TcMax, dims).end;
  const have = h.memory.buffer.byteLength;
  if (bytes > have) {
    const pages = Math.ceil((bytes - have) / 65536);
    if (have / 65536 + pages > MAX_PAGES) return false;
    h.memory.grow(pages);
  }
  const k = kernelsFor(h.memory, dims) as StepKernels | null;
  if (!k) return false;

  const F = new Float32Array((io.heap as WebAssembly.Memory).buffer);
  const Sh = new Float32Array(h.memory.buffer);
  const stateIn = io.addr(inp.state) >> 2;
  Sh.set(F.subarray(stateIn, stateIn + B * S), at.state >> 2);
  const emb = io.addr(inp.embedding) >> 2;
  let row = at.inputs >> 2;
  let t0 = 0;
  const embed = (j: number) => {
    for (let r = 0; r < B; r++) {
      for (let t = 0; t < chunks[j]; t++, row += d) {
        const id = tokens[r * T + t0 + t];
        Sh.set(F.subarray(emb + id * d, emb + (id + 1) * d), row);
      }
    }
    t0 += chunks[j];
  };
  embed(0);
  const ctrl = h.ctrl;
  for (const i of [CTRL.PROGRESS0, CTRL.PROGRESS1, CTRL.FAILED, CTRL.ABORT, CTRL.COPIED, CTRL.BUSY1]) Atomics.store(ctrl, i, 0);
  const job: PrefillJob = { type: 'job', plan: JSON.stringify(dims), W: at.weights, state: at.state, B, chunks, inputs: at.inputs, xOut: at.xOut, scratch };
  h.worker.postMessage(job);
  // The helper starts on chunk 0 at once; it reads a later chunk only after this thread's first progress.
  for (let j = 1; j < chunks.length; j++) embed(j);
  // The weights go over block by block while the helper starts on chunk 0, each block's ahead of its first use;
  // not at all when the copy there is of the same build (the shared memory's weights sit at a fixed address).
  const build = stepWeightsBuildAt(W);
  if (build === undefined || build !== h.weightsBuild) {
    h.weightsBuild = undefined;
    const w0 = W >> 2;
    const wAt = at.weights >> 2;
    const starts = [...plan.weights.blocks.map((o) => Math.min(...Object.values(o))), Math.min(...Object.values(plan.weights.final))];
    Sh.set(F.subarray(w0 + starts[L], w0 + plan.weights.size), wAt + starts[L]);
    for (let b = 0; b < L; b++) {
      Sh.set(F.subarray(w0 + starts[b], w0 + starts[b + 1]), wAt + starts[b]);
      Atomics.store(ctrl, CTRL.COPIED, b + 1);
      Atomics.notify(ctrl, CTRL.COPIED);
    }
    h.weightsBuild = build;
  } else {
    Atomics.store(ctrl, CTRL.COPIED, L);
    Atomics.notify(ctrl, CTRL.COPIED);
  }

  const stalled = stallWatch(ctrl);
  // The helper's last chunk is the last even one; its final block is the end of its share.
  const helperLast = chunks.length - 2 + (chunks.length % 2);
  let done = false;
  let callerMs: number | null = null;
  try {
    callerMs = runShare(0, job, plan, k, Sh, ctrl, stalled);
    done = callerMs !== null && waitFor(ctrl, CTRL.PROGRESS1, unitsThrough(helperLast, L - 1, L), POLL_MS, stalled);
  } finally {
    // A throw here must not leave the helper waiting on this thread's progress for good.
    if (!done) Atomics.store(ctrl, CTRL.ABORT, 1);
  }
  if (!done) {
    retireHelper(h);
    void h.worker.terminate();
    return false;
  }
  const positions = (role: 0 | 1) => B * chunks.reduce((sum, Tc, j) => sum + (roleOf(j) === role ? Tc : 0), 0);
  helperShare = nextHelperShare(helperShare, { positions: positions(1), ms: Atomics.load(ctrl, CTRL.BUSY1) / 1000 }, { positions: positions(0), ms: callerMs as number });
  F.set(Sh.subarray(at.state >> 2, (at.state >> 2) + B * S), io.addr(sOut) >> 2);
  F.set(Sh.subarray(at.xOut >> 2, (at.xOut >> 2) + B * d), io.addr(xOut) >> 2);
  threadedRuns++;
  return true;
}

/**
 * The calling thread's reason to stop waiting: the helper failed its job, or has made no progress for STALL_MS
 * (it died, or the machine is starved); asked only between sleeps.
 */
function stallWatch(ctrl: Int32Array): () => boolean {
  let last = -1;
  let since = performance.now();
  return () => {
    if (Atomics.load(ctrl, CTRL.FAILED)) return true;
    const now = Atomics.load(ctrl, CTRL.PROGRESS1);
    if (now !== last) {
      last = now;
      since = performance.now();
      return false;
    }
    return performance.now() - since > STALL_MS;
  };
}

/** A helper that died or failed is not replaced: what broke it would break the next one too. */
function retireHelper(h: Helper): void {
  h.usable = false;
  if (helper === h) {
    helper = null;
    unavailable = true;
  }
}
