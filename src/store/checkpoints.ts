/** Checkpoint records: where a checkpoint folder lives, which run wrote it, what it descends from, its losses. */
import { XlstmError } from '../util/errors.ts';
import type { Db } from './db.ts';
import { decodeCursor, pageSize, toPage, type Page, type PageArgs } from './page.ts';

export interface CheckpointRecord {
  readonly id: string;
  /** The checkpoint folder. */
  readonly path: string;
  readonly runId: string | null;
  /** The checkpoint this one was trained from (fine-tune base or the run's previous one). */
  readonly parentId: string | null;
  readonly step: number;
  readonly tokensSeen: number | null;
  readonly trainLoss: number | null;
  readonly valLoss: number | null;
  readonly createdAt: string;
}

export type NewCheckpoint = Omit<CheckpointRecord, 'createdAt' | 'runId' | 'parentId' | 'tokensSeen' | 'trainLoss' | 'valLoss'> &
  Partial<Pick<CheckpointRecord, 'createdAt' | 'runId' | 'parentId' | 'tokensSeen' | 'trainLoss' | 'valLoss'>>;

interface CheckpointRow {
  seq: number;
  id: string;
  path: string;
  run_id: string | null;
  parent_id: string | null;
  step: number;
  tokens_seen: number | null;
  train_loss: number | null;
  val_loss: number | null;
  created_at: string;
}

const TABLE = 'checkpoints';

export class CheckpointStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Registers a checkpoint folder written to disk (meta.json's id, step and losses). */
  add(input: NewCheckpoint): CheckpointRecord {
    if (!Number.isInteger(input.step) || input.step < 0) {
      throw new XlstmError('INVALID_INPUT', `checkpoint ${input.id} step expected an integer >= 0, but got ${input.step}.`);
    }
    if (this.get(input.id)) {
      throw new XlstmError('INVALID_INPUT', `checkpoint id expected to be new, but got ${input.id}, which is registered at ${this.get(input.id)!.path}.`);
    }
    if (input.runId != null && !this.db.prepare('SELECT 1 FROM runs WHERE id = ?').get(input.runId)) {
      throw new XlstmError('RUN_NOT_FOUND', `checkpoint ${input.id} expected an existing run, but got run id ${JSON.stringify(input.runId)}.`);
    }
    this.db
      .prepare(
        `INSERT INTO checkpoints (id, path, run_id, parent_id, step, tokens_seen, train_loss, val_loss, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        input.id,
        input.path,
        input.runId ?? null,
        input.parentId ?? null,
        input.step,
        input.tokensSeen ?? null,
        finite(input.trainLoss),
        finite(input.valLoss),
        input.createdAt ?? this.now().toISOString(),
      );
    return this.get(input.id)!;
  }

  get(id: string): CheckpointRecord | null {
    const row = this.db.prepare('SELECT * FROM checkpoints WHERE id = ?').get(id) as CheckpointRow | undefined;
    return row ? fromRow(row) : null;
  }

  /** Like get, but a missing record is CHECKPOINT_NOT_FOUND. */
  require(id: string): CheckpointRecord {
    const record = this.get(id);
    if (!record) throw new XlstmError('CHECKPOINT_NOT_FOUND', `checkpoint id expected a registered checkpoint, but got ${JSON.stringify(id)}.`);
    return record;
  }

  /** Newest first; `runId` keeps the checkpoints one run wrote. */
  list(args: PageArgs & { readonly runId?: string } = {}): Page<CheckpointRecord> {
    const first = pageSize(args.first);
    const after = decodeCursor(TABLE, args.after);
    const where: string[] = [];
    const params: unknown[] = [];
    if (after !== null) {
      where.push('seq < ?');
      params.push(after);
    }
    if (args.runId !== undefined) {
      where.push('run_id = ?');
      params.push(args.runId);
    }
    const rows = this.db
      .prepare(`SELECT * FROM checkpoints ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`)
      .all(...params, first + 1) as CheckpointRow[];
    return toPage(TABLE, rows, first, fromRow);
  }

  /** The checkpoint a restarted run resumes from: its highest step, the later one on a tie. */
  latestForRun(runId: string): CheckpointRecord | null {
    const row = this.db
      .prepare('SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step DESC, seq DESC LIMIT 1')
      .get(runId) as CheckpointRow | undefined;
    return row ? fromRow(row) : null;
  }

  /** Forgets the record (the folder on disk is the caller's); returns whether it existed. */
  remove(id: string): boolean {
    return this.db.prepare('DELETE FROM checkpoints WHERE id = ?').run(id).changes > 0;
  }
}

function finite(v: number | null | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function fromRow(r: CheckpointRow): CheckpointRecord {
  return {
    id: r.id,
    path: r.path,
    runId: r.run_id,
    parentId: r.parent_id,
    step: r.step,
    tokensSeen: r.tokens_seen,
    trainLoss: r.train_loss,
    valLoss: r.val_loss,
    createdAt: r.created_at,
  };
}
