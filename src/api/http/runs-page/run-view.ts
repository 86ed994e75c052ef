/**
 * What the page knows of one run, merged from its stored history (run(id)) and its live events (runProgress):
 * both land in maps keyed by step, so the two may arrive in any order and overlap without doubling a point.
 */

/** A point of run(id).metrics. */
export interface MetricPoint {
  readonly step: number;
  readonly loss: number | null;
  readonly lr: number | null;
  readonly tokensPerSecond: number | null;
  readonly valLoss: number | null;
  readonly samples: readonly string[] | null;
}

export interface RunError {
  readonly code: string;
  readonly message: string;
}

/** run(id) as the page asks for it. */
export interface RunDetail {
  readonly id: string;
  readonly kind: string;
  readonly phase: string;
  readonly step: number;
  readonly maxSteps: number | null;
  readonly baseCheckpoint: string | null;
  readonly error: RunError | null;
  readonly metrics: readonly MetricPoint[];
}

/** One runProgress event. */
export interface ProgressEvent {
  readonly kind: 'PHASE' | 'START' | 'STEP' | 'EVAL' | 'CHECKPOINT' | 'DONE';
  readonly phase: string;
  readonly step: number | null;
  readonly maxSteps: number | null;
  readonly loss: number | null;
  readonly lr: number | null;
  readonly tokensPerSecond: number | null;
  readonly valLoss: number | null;
  readonly samples: readonly string[] | null;
  readonly error: RunError | null;
}

export type Liveness = 'connecting' | 'live' | 'ended' | 'lost';

export interface Latest {
  readonly step: number;
  readonly loss: number;
  readonly lr: number | null;
  readonly tokensPerSecond: number | null;
}

export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

export class RunView {
  kind = '';
  baseCheckpoint: string | null = null;
  phase = '';
  maxSteps: number | null = null;
  error: RunError | null = null;
  live: Liveness = 'connecting';
  latest: Latest | null = null;
  readonly losses = new Map<number, number>();
  readonly valLosses = new Map<number, number>();
  readonly samples = new Map<number, readonly string[]>();
  /** A live phase is newer than the stored one, whichever answer came last. */
  private phaseIsLive = false;

  constructor(readonly id: string) {}

  load(run: RunDetail): void {
    this.kind = run.kind;
    this.baseCheckpoint = run.baseCheckpoint;
    this.maxSteps ??= run.maxSteps;
    if (!this.phaseIsLive) {
      this.phase = run.phase;
      this.error = run.error;
    }
    for (const m of run.metrics) {
      if (m.loss !== null) this.step(m.step, m.loss, m.lr, m.tokensPerSecond);
      this.evaluation(m.step, m.valLoss, m.samples);
    }
  }

  apply(e: ProgressEvent): void {
    this.live = 'live';
    this.phase = e.phase;
    this.phaseIsLive = true;
    if (e.error) this.error = e.error;
    if (e.maxSteps !== null) this.maxSteps = e.maxSteps;
    if (e.kind === 'STEP' && e.step !== null && e.loss !== null) this.step(e.step, e.loss, e.lr, e.tokensPerSecond);
    if (e.kind === 'EVAL' && e.step !== null) this.evaluation(e.step, e.valLoss, e.samples);
  }

  /** Whether the run can still change (and so is worth a cancel button). */
  get active(): boolean {
    return this.phase !== '' && !TERMINAL.has(this.phase);
  }

  private step(step: number, loss: number, lr: number | null, tokensPerSecond: number | null): void {
    this.losses.set(step, loss);
    if (!this.latest || step >= this.latest.step) this.latest = { step, loss, lr, tokensPerSecond };
  }

  private evaluation(step: number, valLoss: number | null, samples: readonly string[] | null): void {
    if (valLoss !== null) this.valLosses.set(step, valLoss);
    if (samples?.length) this.samples.set(step, samples);
  }
}

/** A map's entries in step order. */
export function byStep<V>(points: ReadonlyMap<number, V>): [number, V][] {
  return [...points].sort((a, b) => a[0] - b[0]);
}
