/** Run records: creation, phase changes through `transition`, metric history, paged queries, restart recovery. */
import { randomUUID } from 'node:crypto';
import { assertNever } from '../util/assert.ts';
import { XlstmError } from '../util/errors.ts';
import type { Db } from './db.ts';
import { decodeCursor, pageSize, toPage, type Page, type PageArgs } from './page.ts';
import { RUN_KINDS, RUN_PHASES, transition, type RunEvent, type RunKind, type RunPhase, type RunState } from './run-phase.ts';

/** What every run has, whatever its phase. */
export interface RunCommon {
  readonly id: string;
  readonly kind: RunKind;
  /** The fully resolved config the run was started with (all sections). */
  readonly config: unknown;
  readonly seed: number;
  /** FINETUNE: the checkpoint it starts from. */
  readonly baseCheckpointId: string | null;
  readonly createdAt: string;
}

export type RunRecord = RunCommon & RunState;

export interface NewRun {
  readonly id?: string;
  readonly kind: RunKind;
  readonly config: unknown;
  readonly seed: number;
  readonly baseCheckpointId?: string | null;
}

/** One point of a run's history; a later write at the same step fills in the fields it carries. */
export interface MetricPoint {
  readonly step: number;
  readonly loss?: number | null;
  readonly lr?: number | null;
  readonly tokensPerSecond?: number | null;
  readonly gradNorm?: number | null;
  readonly valLoss?: number | null;
  /** Sample generations shown with the evaluation. */
  readonly samples?: readonly string[] | null;
}

export interface MetricRecord extends MetricPoint {
  readonly at: string;
}

/** What to do with unfinished runs when the process starts again. */
export interface RecoveryPlan {
  /** RUNNING when the process stopped: resume from their latest checkpoint. */
  readonly resume: RunRecord[];
  /** QUEUED: start them in order. */
  readonly queued: RunRecord[];
  /** CANCELLING: the cancel was accepted; mark them CANCELLED. */
  readonly cancelling: RunRecord[];
}

interface RunRow {
  seq: number;
  id: string;
  kind: RunKind;
  phase: RunPhase;
  config: string;
  seed: number;
  base_checkpoint_id: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  step: number;
  error_code: string | null;
  error_message: string | null;
}

interface MetricRow {
  step: number;
  at: string;
  loss: number | null;
  lr: number | null;
  tokens_per_second: number | null;
  grad_norm: number | null;
  val_loss: number | null;
  samples: string | null;
}

const TABLE = 'runs';

export class RunStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  create(input: NewRun): RunRecord {
    if (!(RUN_KINDS as readonly string[]).includes(input.kind)) {
      throw new XlstmError('INVALID_INPUT', `run kind expected one of ${RUN_KINDS.join(', ')}, but got ${JSON.stringify(input.kind)}.`);
    }
    if (!Number.isSafeInteger(input.seed)) {
      throw new XlstmError('INVALID_INPUT', `run seed expected an integer, but got ${input.seed}.`);
    }
    const config = JSON.stringify(input.config);
    if (config === undefined) throw new XlstmError('INVALID_INPUT', 'run config expected JSON-serialisable data, but got undefined.');
    const id = input.id ?? randomUUID();
    if (this.get(id)) throw new XlstmError('INVALID_INPUT', `run id expected to be new, but got ${id}, which exists.`);
    this.db
      .prepare(
        `INSERT INTO runs (id, kind, phase, config, seed, base_checkpoint_id, created_at)
         VALUES (?, ?, 'QUEUED', ?, ?, ?, ?)`,
      )
      .run(id, input.kind, config, input.seed, input.baseCheckpointId ?? null, this.now().toISOString());
    return this.require(id);
  }

  get(id: string): RunRecord | null {
    const row = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
    return row ? fromRow(row) : null;
  }

  /** Like get, but a missing run is RUN_NOT_FOUND. */
  require(id: string): RunRecord {
    const run = this.get(id);
    if (!run) throw new XlstmError('RUN_NOT_FOUND', `run id expected an existing run, but got ${JSON.stringify(id)}.`);
    return run;
  }

  /** Newest first, optionally only the given phases. */
  list(args: PageArgs & { readonly phase?: RunPhase | readonly RunPhase[] } = {}): Page<RunRecord> {
    const first = pageSize(args.first);
    const after = decodeCursor(TABLE, args.after);
    const phases = args.phase === undefined ? null : typeof args.phase === 'string' ? [args.phase] : [...args.phase];
    phases?.forEach((p) => {
      if (!(RUN_PHASES as readonly string[]).includes(p)) {
        throw new XlstmError('INVALID_INPUT', `phase filter expected one of ${RUN_PHASES.join(', ')}, but got ${JSON.stringify(p)}.`);
      }
    });
    const where: string[] = [];
    const params: unknown[] = [];
    if (after !== null) {
      where.push('seq < ?');
      params.push(after);
    }
    if (phases) {
      where.push(`phase IN (${phases.map(() => '?').join(', ') || 'NULL'})`);
      params.push(...phases);
    }
    const rows = this.db
      .prepare(`SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`)
      .all(...params, first + 1) as RunRow[];
    return toPage(TABLE, rows, first, fromRow);
  }

  /**
   * Moves a run through `transition` inside one write transaction, so two processes cannot both
   * start (or finish) the same run.
   */
  apply(id: string, event: RunEvent): RunRecord {
    return this.db
      .transaction(() => {
        const run = this.require(id);
        const next = transition(run, event, `run ${id}`);
        this.db
          .prepare(
            `UPDATE runs SET phase = ?, started_at = ?, finished_at = ?, step = ?, error_code = ?, error_message = ? WHERE id = ?`,
          )
          .run(...stateColumns(next), id);
        return { ...common(run), ...next } as RunRecord;
      })
      .immediate();
  }

  /** Records a metric point and advances the run's step (a `progress` event) in one transaction. */
  recordMetrics(id: string, point: MetricPoint): RunRecord {
    return this.db
      .transaction(() => {
        const run = this.apply(id, { type: 'progress', step: point.step });
        this.db
          .prepare(
            `INSERT INTO run_metrics (run_id, step, at, loss, lr, tokens_per_second, grad_norm, val_loss, samples)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (run_id, step) DO UPDATE SET
               at = excluded.at,
               loss = coalesce(excluded.loss, loss),
               lr = coalesce(excluded.lr, lr),
               tokens_per_second = coalesce(excluded.tokens_per_second, tokens_per_second),
               grad_norm = coalesce(excluded.grad_norm, grad_norm),
               val_loss = coalesce(excluded.val_loss, val_loss),
               samples = coalesce(excluded.samples, samples)`,
          )
          .run(
            id,
            point.step,
            this.now().toISOString(),
            finite(point.loss),
            finite(point.lr),
            finite(point.tokensPerSecond),
            finite(point.gradNorm),
            finite(point.valLoss),
            point.samples == null ? null : JSON.stringify(point.samples),
          );
        return run;
      })
      .immediate();
  }

  /** The metric history in step order, optionally only after a step (for a subscriber catching up). */
  metrics(id: string, options: { readonly afterStep?: number } = {}): MetricRecord[] {
    this.require(id);
    const rows = this.db
      .prepare('SELECT * FROM run_metrics WHERE run_id = ? AND step > ? ORDER BY step')
      .all(id, options.afterStep ?? -1) as MetricRow[];
    return rows.map((r) => ({
      step: r.step,
      at: r.at,
      loss: r.loss,
      lr: r.lr,
      tokensPerSecond: r.tokens_per_second,
      gradNorm: r.grad_norm,
      valLoss: r.val_loss,
      samples: r.samples === null ? null : (JSON.parse(r.samples) as string[]),
    }));
  }

  /** Unfinished runs after a restart, oldest first. */
  recoveryPlan(): RecoveryPlan {
    const rows = this.db
      .prepare(`SELECT * FROM runs WHERE phase IN ('RUNNING', 'QUEUED', 'CANCELLING') ORDER BY seq`)
      .all() as RunRow[];
    const runs = rows.map(fromRow);
    return {
      resume: runs.filter((r) => r.phase === 'RUNNING'),
      queued: runs.filter((r) => r.phase === 'QUEUED'),
      cancelling: runs.filter((r) => r.phase === 'CANCELLING'),
    };
  }
}

/** NaN and infinities are kept as null: neither JSON nor GraphQL can carry them (the loop fails a diverged run). */
function finite(v: number | null | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function common(r: RunCommon): RunCommon {
  return { id: r.id, kind: r.kind, config: r.config, seed: r.seed, baseCheckpointId: r.baseCheckpointId, createdAt: r.createdAt };
}

function stateColumns(s: RunState): [RunPhase, string | null, string | null, number, string | null, string | null] {
  switch (s.phase) {
    case 'QUEUED':
      return [s.phase, null, null, 0, null, null];
    case 'RUNNING':
    case 'CANCELLING':
      return [s.phase, s.startedAt, null, s.step, null, null];
    case 'SUCCEEDED':
    case 'CANCELLED':
      return [s.phase, s.startedAt, s.finishedAt, s.step, null, null];
    case 'FAILED':
      return [s.phase, s.startedAt, s.finishedAt, s.step, s.error.code, s.error.message];
    default:
      return assertNever(s);
  }
}

function fromRow(row: RunRow): RunRecord {
  const base: RunCommon = {
    id: row.id,
    kind: row.kind,
    config: JSON.parse(row.config),
    seed: row.seed,
    baseCheckpointId: row.base_checkpoint_id,
    createdAt: row.created_at,
  };
  const corrupt = (): never => {
    throw new Error(`run ${row.id} in phase ${row.phase} expected its times to be set, but the record lacks them`);
  };
  switch (row.phase) {
    case 'QUEUED':
      return { ...base, phase: row.phase };
    case 'RUNNING':
    case 'CANCELLING':
      return { ...base, phase: row.phase, startedAt: row.started_at ?? corrupt(), step: row.step };
    case 'SUCCEEDED':
      return { ...base, phase: row.phase, startedAt: row.started_at ?? corrupt(), finishedAt: row.finished_at ?? corrupt(), step: row.step };
    case 'CANCELLED':
      return { ...base, phase: row.phase, startedAt: row.started_at, finishedAt: row.finished_at ?? corrupt(), step: row.step };
    case 'FAILED':
      return {
        ...base,
        phase: row.phase,
        startedAt: row.started_at,
        finishedAt: row.finished_at ?? corrupt(),
        step: row.step,
        error: { code: row.error_code ?? 'INTERNAL', message: row.error_message ?? '' },
      };
    default:
      return assertNever(row.phase);
  }
}
