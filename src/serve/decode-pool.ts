/**
 * Decoding on every core: worker threads, each with its own tfjs backend and model replica, own disjoint rows of
 * the batch, and a step runs them all at once. A row's tokens depend neither on its thread nor on its batch
 * mates, so the pool samples exactly what an in-process model.step loop samples from the same uniforms.
 */
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { validateSampling, type ModelConfig, type NamedArray, type SamplingParams } from '../core/index.ts';
import { XlstmError } from '../util/errors.ts';
import type { FromWorker, SharedWeights, WorkerInit } from './decode-protocol.ts';
import { DecodeThread, errorText } from './decode-thread.ts';
import type { Admitted, AdmitRequest, Decoder, RowId, Sampled, StepInput } from './decoder.ts';
import { byLength } from './prefill-batches.ts';

export type { Admitted, AdmitRequest, RowId, Sampled, StepInput } from './decoder.ts';

export interface DecodePoolOptions {
  readonly config: ModelConfig;
  readonly arrays: ReadonlyMap<string, NamedArray>;
  /** Worker threads; default os.availableParallelism(). */
  readonly threads?: number;
  /** The tfjs backend of every worker; default wasm (the fastest host backend; one thread each under Node). */
  readonly backend?: 'wasm' | 'cpu';
  /** A token id never to sample (the padding token): its logit is set to -Infinity. */
  readonly suppressToken?: number;
  /** Told once when a worker dies; from then on every call rejects with the same error. */
  readonly onFailure?: (error: XlstmError) => void;
}

interface Slot {
  readonly thread: DecodeThread;
  /** The worker's rows in its state's order, as of the last message posted to it. */
  rows: RowId[];
}

export class DecodePool implements Decoder {
  private readonly slots: Slot[] = [];
  private readonly where = new Map<RowId, Slot>();
  private nextRow = 1;
  private nextCall = 1;
  /** An admission in progress: later calls wait for it, since its rows join the books only when it answers. */
  private admitting: Promise<unknown> | null = null;
  private started = false;
  private closed = false;
  private failed: XlstmError | null = null;

  private constructor(private readonly options: DecodePoolOptions) {}

  /** Starts the workers and resolves once each has its backend and model ready. */
  static async create(options: DecodePoolOptions): Promise<DecodePool> {
    const threads = options.threads ?? os.availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) {
      throw new XlstmError('INVALID_CONFIG', `decode pool threads expected an integer >= 1, but got ${threads}.`);
    }
    const s = options.suppressToken;
    if (s !== undefined && !(Number.isInteger(s) && s >= 0 && s < options.config.vocab_size)) {
      throw new XlstmError('INVALID_CONFIG', `decode pool suppressToken expected an integer in [0, ${options.config.vocab_size}), but got ${s}.`);
    }
    const pool = new DecodePool(options);
    const weights = shareWeights(options.arrays);
    for (let index = 0; index < threads; index++) {
      const init: WorkerInit = { index, config: options.config, backend: options.backend ?? 'wasm', weights, suppressToken: options.suppressToken ?? null };
      const slot: Slot = { thread: new DecodeThread(index, init, (code, why) => pool.died(slot, code, why)), rows: [] };
      pool.slots.push(slot);
    }
    try {
      await Promise.all(pool.slots.map((slot) => slot.thread.ready));
    } catch (e) {
      await pool.close();
      throw e;
    }
    pool.started = true;
    return pool;
  }

  /** Live rows. */
  get size(): number {
    return this.where.size;
  }

  /** Steps run on the worker threads. */
  readonly concurrent = true;
  /** A step may be posted before the previous one answers, with token -1 for a row's own last sample. */
  readonly ahead = true;

  /** Each worker is a lane: its rows step on their own, beside the other workers' steps. */
  laneOf(row: RowId): number {
    const slot = this.where.get(row);
    if (!slot) throw new XlstmError('INVALID_INPUT', `laneOf expected a live row, but row ${row} is not one. Hint: ask after admit returned it.`);
    return slot.thread.index;
  }

  get threads(): number {
    return this.slots.length;
  }

  /** Live rows per worker, in worker order (placement goes to the least loaded). */
  get loads(): number[] {
    return this.slots.map((s) => s.rows.length);
  }

  /** The worker threads, for monitoring and for tests that stop one. */
  get workers(): readonly Worker[] {
    return this.slots.map((s) => s.thread.worker);
  }

  /** The error that took the pool down (a worker died), or null. */
  get failure(): XlstmError | null {
    return this.failed;
  }

  /**
   * Prefills each prompt (chunkwise form; equal lengths on one worker as one batch) on the least-loaded worker,
   * samples its first token with its uniform and adds its row. All or nothing: when any prompt fails, none is added.
   */
  admit(prompts: readonly AdmitRequest[]): Promise<Admitted[]> {
    return this.posted(true, async () => {
      prompts.forEach((p, j) => this.checkPrompt(p, j));
      const loads = this.loads;
      const groups = this.slots.map(() => [] as number[]);
      for (let j = 0; j < prompts.length; j++) {
        const w = loads.indexOf(Math.min(...loads));
        groups[w].push(j);
        loads[w]++;
      }
      // Each worker gets its prompts by length, so it prefills equal lengths as one batch.
      const rank = new Int32Array(prompts.length);
      byLength(prompts.map((p) => p.tokens.length)).forEach((j, i) => (rank[j] = i));
      for (const g of groups) g.sort((a, b) => rank[a] - rank[b]);
      const rowIds = prompts.map(() => this.nextRow++);
      const settled = await Promise.allSettled(
        this.slots.map((slot, w) =>
          groups[w].length === 0
            ? Promise.resolve(null)
            : slot.thread.call({
                type: 'admit',
                id: this.nextCall++,
                prompts: groups[w].map((j) => {
                  const { tokens, sampling, uniform } = prompts[j];
                  return { tokens: Int32Array.from(tokens), sampling: plainSampling(sampling), uniform };
                }),
              }),
        ),
      );
      const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (rejected) {
        await this.undoAdmit(settled, groups);
        throw rejected.reason;
      }
      const out = new Array<Admitted>(prompts.length);
      settled.forEach((s, w) => {
        const message = (s as PromiseFulfilledResult<FromWorker | null>).value;
        if (!message || message.type !== 'sampled') return;
        const slot = this.slots[w];
        groups[w].forEach((j, r) => {
          slot.rows.push(rowIds[j]);
          this.where.set(rowIds[j], slot);
          out[j] = { row: rowIds[j], id: message.ids[r], logprob: message.logprobs[r] };
        });
      });
      return out;
    });
  }

  /**
   * One decode step of every live row of the lanes `inputs` touches (it must name each of their rows exactly
   * once): feeds its token (-1: the token the row sampled last, which lets a step be posted before the previous
   * one answers) and samples with its uniform. Workers run concurrently, and a step of one lane does not wait
   * for another lane's. After a rejection the rows' positions are unknown: retire them.
   */
  step(inputs: ReadonlyMap<RowId, StepInput>): Promise<Map<RowId, Sampled>> {
    return this.posted(false, async () => {
      const live = this.slots.filter((s) => s.rows.some((row) => inputs.has(row)));
      this.checkStepInputs(inputs, live);
      // The rows as the workers will hold them when they take this step (they take messages in order).
      const rows = live.map((slot) => [...slot.rows]);
      const settled = await Promise.allSettled(
        live.map((slot) => {
          const n = slot.rows.length;
          const tokens = new Int32Array(n);
          const sampling = new Float64Array(3 * n);
          const uniforms = new Float64Array(n);
          slot.rows.forEach((row, i) => {
            const input = inputs.get(row) as StepInput;
            tokens[i] = input.token;
            sampling[3 * i] = input.sampling.temperature;
            sampling[3 * i + 1] = input.sampling.topK;
            sampling[3 * i + 2] = input.sampling.topP;
            uniforms[i] = input.uniform;
          });
          return slot.thread.call({ type: 'step', id: this.nextCall++, tokens, sampling, uniforms }, [tokens.buffer, sampling.buffer, uniforms.buffer]);
        }),
      );
      const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (rejected) throw rejected.reason;
      const byRow = new Map<RowId, Sampled>();
      settled.forEach((s, w) => {
        const message = (s as PromiseFulfilledResult<FromWorker>).value;
        if (message.type !== 'sampled') return;
        rows[w].forEach((row, i) => byRow.set(row, { id: message.ids[i], logprob: message.logprobs[i] }));
      });
      // In the caller's order, which is usually its own sequence order.
      return new Map([...inputs.keys()].map((row) => [row, byRow.get(row) as Sampled]));
    });
  }

  /** Frees the rows' states; the others keep their places. */
  retire(rows: readonly RowId[]): Promise<void> {
    return this.posted(false, async () => {
      const drop = new Set(rows);
      for (const row of drop) {
        if (!this.where.has(row)) {
          throw new XlstmError('INVALID_INPUT', `retire expected live rows, but row ${row} is not one. Hint: retire each row once, after admit returned it.`);
        }
      }
      const touched = this.slots.filter((s) => s.rows.some((r) => drop.has(r)));
      // The books change as the message leaves: a step posted next names the rows the worker will then hold.
      const calls = touched.map((slot) => {
        const keep = slot.rows.flatMap((r, i) => (drop.has(r) ? [] : [i]));
        for (const r of slot.rows) if (drop.has(r)) this.where.delete(r);
        slot.rows = keep.map((i) => slot.rows[i]);
        return slot.thread.call({ type: 'retain', id: this.nextCall++, keep: Int32Array.from(keep) });
      });
      const settled = await Promise.allSettled(calls);
      const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      // A worker that could not drop rows no longer matches the pool's books.
      if (rejected) throw this.fail(`a worker could not retire rows (${errorText(rejected.reason)})`);
    });
  }

  /** Stops every worker (pending calls reject with CANCELLED); safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.thread.close()));
  }

  /** A worker exited unasked: its rows' states are gone, and with them the pool. */
  private died(slot: Slot, exitCode: number, why: string | null): XlstmError {
    const n = slot.rows.length;
    return this.fail(
      `decode worker ${slot.thread.index} expected to keep running, but it exited with code ${exitCode}${why ? ` (${why})` : ''}; ` +
        `the state${n === 1 ? '' : 's'} of its ${n} row${n === 1 ? '' : 's'} ${n === 1 ? 'is' : 'are'} lost`,
    );
  }

  /** Marks the pool failed (once) and returns the error every later call gets. */
  private fail(what: string): XlstmError {
    if (!this.failed) {
      this.failed = new XlstmError('BACKEND', `${what}. Hint: close this decode pool, create a new one and restart the sequences it held.`);
      if (this.started) this.options.onFailure?.(this.failed);
    }
    return this.failed;
  }

  /**
   * Every call posts its messages at once, in call order (each worker takes its messages in order), and keeps
   * the row books as the workers will hold them when they get there: so a caller may post a step, retire rows
   * and post the next step without waiting for answers. An admission's rows join the books only when it
   * answers, so calls made meanwhile wait for it (`gate`). A call made while nothing waits starts at once, so
   * its messages are posted before the caller's next line.
   */
  private posted<T>(gate: boolean, fn: () => Promise<T>): Promise<T> {
    const start = (): Promise<T> => {
      if (this.closed) {
        throw new XlstmError('CANCELLED', 'the decode pool expected to be open, but it was closed. Hint: create a new pool.');
      }
      if (this.failed) throw this.failed;
      return fn();
    };
    const run = this.admitting ? this.admitting.then(start) : new Promise<T>((resolve) => resolve(start()));
    if (gate) {
      const settled = run.catch(() => undefined);
      this.admitting = settled;
      void settled.then(() => {
        if (this.admitting === settled) this.admitting = null;
      });
    }
    return run;
  }

  /** The workers whose part of a failed admit succeeded drop the rows they just added. */
  private async undoAdmit(settled: PromiseSettledResult<unknown>[], groups: number[][]): Promise<void> {
    const undone = await Promise.allSettled(
      this.slots.map((slot, w) =>
        settled[w].status === 'fulfilled' && groups[w].length > 0
          ? slot.thread.call({ type: 'retain', id: this.nextCall++, keep: Int32Array.from(slot.rows.keys()) })
          : null,
      ),
    );
    const rejected = undone.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (rejected) throw this.fail(`a worker could not undo a failed admit (${errorText(rejected.reason)})`);
  }

  private checkPrompt(p: AdmitRequest, j: number): void {
    const V = this.options.config.vocab_size;
    if (p.tokens.length === 0) {
      throw new XlstmError('INVALID_INPUT', `prompts[${j}].tokens expected at least one token, but got none. Hint: start the prompt with a BOS token.`);
    }
    for (const t of p.tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= V) {
        throw new XlstmError('INVALID_INPUT', `prompts[${j}].tokens expected integers in [0, ${V}), but got ${t}.`);
      }
    }
    validateSampling(p.sampling);
    checkUniform(p.uniform, `prompts[${j}].uniform`);
  }

  private checkStepInputs(inputs: ReadonlyMap<RowId, StepInput>, busy: readonly Slot[]): void {
    const V = this.options.config.vocab_size;
    for (const [row, input] of inputs) {
      if (!this.where.has(row)) {
        throw new XlstmError('INVALID_INPUT', `step expected inputs for live rows only, but row ${row} is not live. Hint: admit a row before stepping it.`);
      }
      if (!Number.isInteger(input.token) || input.token < -1 || input.token >= V) {
        throw new XlstmError('INVALID_INPUT', `step input of row ${row} expected a token in [0, ${V}) or -1 (its last sample), but got ${input.token}.`);
      }
      validateSampling(input.sampling);
      checkUniform(input.uniform, `step input of row ${row} uniform`);
    }
    const lanes = busy.reduce((n, s) => n + s.rows.length, 0);
    if (inputs.size !== lanes) {
      const missing = busy.flatMap((s) => s.rows).find((row) => !inputs.has(row));
      throw new XlstmError(
        'INVALID_INPUT',
        `step expected an input for each of the ${lanes} live rows of its lanes, but row ${missing} has none. Hint: retire rows that should not advance.`,
      );
    }
  }
}

/** Copies every weight into one SharedArrayBuffer that all workers read in place. */
function shareWeights(arrays: ReadonlyMap<string, NamedArray>): SharedWeights {
  let total = 0;
  const tensors = [...arrays].map(([name, a]) => {
    const t = { name, shape: [...a.shape], offset: total, length: a.data.length };
    total += a.data.length;
    return t;
  });
  const buffer = new SharedArrayBuffer(total * 4);
  const view = new Float32Array(buffer);
  for (const t of tensors) view.set((arrays.get(t.name) as NamedArray).data, t.offset);
  return { buffer, tensors };
}

function plainSampling(s: SamplingParams): SamplingParams {
  return { temperature: s.temperature, topK: s.topK, topP: s.topP };
}

function checkUniform(u: number, subject: string): void {
  if (!(u >= 0 && u < 1)) throw new XlstmError('INVALID_INPUT', `${subject} expected a number in [0, 1), but got ${u}. Hint: pass the sequence's rng.uniform().`);
}
