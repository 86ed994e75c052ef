/**
 * A DecodePool worker thread: its own tfjs backend and model replica, owning some rows of the batch and their
 * state; it samples in place, so only token ids and log-probabilities leave the thread.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from '../backend/select.ts';
import { concatStates, disposeState, gatherState, XlstmModel, type ModelState, type NamedArray, type SamplingParams } from '../core/index.ts';
import { hostView } from '../core/host/io.ts';
import { isXlstmError } from '../util/errors.ts';
import type { FromWorker, PromptJob, ToWorker, WorkerInit } from './decode-protocol.ts';
import { batchTokens, prefillBatches } from './prefill-batches.ts';
import { sampleRow } from './sample-row.ts';

const port = parentPort;
if (!port) throw new Error('decode-worker.ts expected to run as a worker thread, but it was run on the main thread.');
const init = workerData as WorkerInit;

let model: XlstmModel;
/** Row i of `state` is the worker's i-th row; null when it holds none. */
let state: ModelState | null = null;
/** Each row's last sampled token: a step's token -1 stands for it (the pool posts steps ahead of answers). */
let last = new Int32Array(0);

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

/** sampleToken draws exactly one uniform per call, so the caller's draw stands in for the sequence's Rng. */
function sample(row: Float32Array, sampling: SamplingParams, uniform: number): { id: number; logprob: number } {
  return sampleRow(row, sampling, uniform, init.suppressToken);
}

/**
 * Prefills the prompts (chunkwise), consecutive ones of equal length as one batch (the pool sends them sorted by
 * length); the rows join in message order, and only if all of them succeed.
 */
function admit(prompts: readonly PromptJob[]): FromWorker {
  const states: ModelState[] = [];
  const ids = new Int32Array(prompts.length);
  const logprobs = new Float64Array(prompts.length);
  const lengths = prompts.map((p) => p.tokens.length);
  try {
    for (const batch of prefillBatches(prompts.map((_, j) => j), lengths)) {
      const tokens = batchTokens(batch, (j) => prompts[j].tokens);
      const out = tidy(() => model.prefill(tf.tensor2d(tokens, [batch.length, lengths[batch[0]]], 'int32')));
      states.push(out.state);
      try {
        const logits = readLogits(out.logits);
        const V = logits.length / batch.length;
        batch.forEach((j, r) => {
          ({ id: ids[j], logprob: logprobs[j] } = sample(logits.subarray(r * V, (r + 1) * V), prompts[j].sampling, prompts[j].uniform));
        });
      } finally {
        out.logits.dispose();
      }
    }
    const previous = state;
    state = tidy(() => concatStates(previous ? [previous, ...states] : states));
    if (previous) disposeState(previous);
  } finally {
    states.forEach(disposeState);
  }
  // The prompts' rows joined in message order, which is the order of `ids`.
  last = Int32Array.from([...last, ...ids]);
  return { type: 'sampled', id: 0, ids, logprobs };
}

function step(tokens: Int32Array, sampling: Float64Array, uniforms: Float64Array): FromWorker {
  const previous = state;
  const n = tokens.length;
  if (!previous || n !== rowCount(previous)) {
    throw new Error(`decode worker ${init.index} expected ${previous ? rowCount(previous) : 0} tokens, but got ${n}.`);
  }
  for (let i = 0; i < n; i++) if (tokens[i] === -1) tokens[i] = last[i];
  const out = tidy(() => model.step(tf.tensor1d(tokens, 'int32'), previous));
  state = out.state;
  disposeState(previous);
  const ids = new Int32Array(n);
  const logprobs = new Float64Array(n);
  try {
    // Only ids and logprobs cross to the pool.
    const logits = readLogits(out.logits);
    const V = logits.length / n;
    for (let i = 0; i < n; i++) {
      const p = { temperature: sampling[3 * i], topK: sampling[3 * i + 1], topP: sampling[3 * i + 2] };
      ({ id: ids[i], logprob: logprobs[i] } = sample(logits.subarray(i * V, (i + 1) * V), p, uniforms[i]));
    }
  } finally {
    out.logits.dispose();
  }
  last = ids.slice();
  return { type: 'sampled', id: 0, ids, logprobs };
}

/**
 * sync: logits [n, V], read in this thread, in place in the backend's memory (sampling allocates no tensor, so
 * the view outlives it); the tensor is disposed right after.
 */
function readLogits(t: tf.Tensor): Float32Array {
  return hostView(t) ?? (t.dataSync() as Float32Array);
}

function retain(keep: Int32Array): void {
  last = Int32Array.from(keep, (i) => last[i]);
  const previous = state;
  if (!previous) return;
  state = keep.length > 0 ? tidy(() => gatherState(previous, Array.from(keep))) : null;
  disposeState(previous);
}

function rowCount(s: ModelState): number {
  const first = Object.values(s[0])[0];
  return first ? first.shape[0] : 0;
}

function handle(message: ToWorker): void {
  try {
    switch (message.type) {
      case 'admit': {
        const out = admit(message.prompts) as Extract<FromWorker, { type: 'sampled' }>;
        send({ ...out, id: message.id }, [out.ids.buffer as ArrayBuffer, out.logprobs.buffer as ArrayBuffer]);
        return;
      }
      case 'step': {
        const out = step(message.tokens, message.sampling, message.uniforms) as Extract<FromWorker, { type: 'sampled' }>;
        send({ ...out, id: message.id }, [out.ids.buffer as ArrayBuffer, out.logprobs.buffer as ArrayBuffer]);
        return;
      }
      case 'retain':
        retain(message.keep);
        send({ type: 'retained', id: message.id });
        return;
      default:
        assertNever(message);
    }
  } catch (e) {
    send({ type: 'error', id: message.id, code: isXlstmError(e) ? e.code : null, message: e instanceof Error ? e.message : String(e) });
  }
}

function assertNever(x: never): never {
  throw new Error(`decode worker expected a known message type, but got ${JSON.stringify(x)}.`);
}

/** tf.tidy for results that hold tensors in plain records (tfjs's TensorContainer type does not admit them). */
function tidy<T>(fn: () => T): T {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as T;
}

try {
  await selectBackend(init.backend);
  const arrays = new Map<string, NamedArray>(
    init.weights.tensors.map((t) => [t.name, { shape: [...t.shape], data: new Float32Array(init.weights.buffer, t.offset * 4, t.length) }]),
  );
  model = XlstmModel.fromArrays(init.config, arrays);
} catch (e) {
  send({ type: 'error', id: 0, code: isXlstmError(e) ? e.code : null, message: e instanceof Error ? e.message : String(e) });
  process.exit(1);
}
// Every handler is synchronous, so messages are handled one at a time, in the order they were posted.
port.on('message', handle);
send({ type: 'ready' });
