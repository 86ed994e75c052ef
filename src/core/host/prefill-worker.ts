/**
 * The prefill's helper thread: it runs its share of each threaded prefill (prefill-share.ts, role 1) in the
 * shared memory both threads work in, as jobs arrive.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { kernelsFor, planFor, type StepKernels } from './model-step.ts';
import { CTRL, CTRL_BYTES, type PrefillFailure, type PrefillJob } from './prefill-protocol.ts';
import { runShare } from './prefill-share.ts';

const memory = (workerData as { memory: WebAssembly.Memory }).memory;
const ctrl = new Int32Array(memory.buffer, 0, CTRL_BYTES / 4);
const aborted = () => Atomics.load(ctrl, CTRL.ABORT) === 1;

function run(job: PrefillJob): void {
  const plan = planFor(JSON.parse(job.plan));
  const k = kernelsFor(memory, plan.dims) as StepKernels | null;
  if (!k) throw new Error('the prefill helper expected WebAssembly SIMD kernels over a shared memory, but got none. Hint: run prefill on one thread (setPrefillThreads(1)).');
  // The calling thread may have grown the memory since the last job: a fresh view.
  runShare(1, job, plan, k, new Float32Array(memory.buffer), ctrl, aborted);
}

parentPort?.on('message', (job: PrefillJob) => {
  try {
    run(job);
  } catch (e) {
    Atomics.store(ctrl, CTRL.FAILED, 1);
    Atomics.notify(ctrl, CTRL.PROGRESS1);
    parentPort?.postMessage({ type: 'failed', message: e instanceof Error ? e.message : String(e) } satisfies PrefillFailure);
  }
});
Atomics.store(ctrl, CTRL.READY, 1);
