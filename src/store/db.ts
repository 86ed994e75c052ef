/** The SQLite connection (better-sqlite3, WAL mode) under the data folder, and its numbered migrations. */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../util/assert.ts';
import { XlstmError } from '../util/errors.ts';

export type Db = Database.Database;

/** The database file inside the data folder (XLSTM_HOME, resolved by the caller). */
export const DB_FILE = 'xlstm.db';

export interface Migration {
  /** 1, 2, 3, ...: stored in PRAGMA user_version once applied. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Append only: a released migration is never edited, a change is a new version. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, metrics and checkpoints',
    sql: `
      CREATE TABLE runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('TRAIN', 'FINETUNE')),
        phase TEXT NOT NULL CHECK (phase IN ('QUEUED', 'RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
        config TEXT NOT NULL CHECK (json_valid(config)),
        seed INTEGER NOT NULL,
        base_checkpoint_id TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        step INTEGER NOT NULL DEFAULT 0,
        error_code TEXT,
        error_message TEXT
      );
      CREATE INDEX runs_by_phase ON runs (phase, seq);

      CREATE TABLE run_metrics (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        at TEXT NOT NULL,
        loss REAL,
        lr REAL,
        tokens_per_second REAL,
        grad_norm REAL,
        val_loss REAL,
        samples TEXT CHECK (samples IS NULL OR json_valid(samples)),
        PRIMARY KEY (run_id, step)
      ) WITHOUT ROWID;

      -- parent_id has no foreign key: a checkpoint may descend from one that was never registered here.
      CREATE TABLE checkpoints (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        run_id TEXT REFERENCES runs (id) ON DELETE SET NULL,
        parent_id TEXT,
        step INTEGER NOT NULL,
        tokens_seen INTEGER,
        train_loss REAL,
        val_loss REAL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX checkpoints_by_run ON checkpoints (run_id, step);
    `,
  },
];

/**
 * Opens (creating when needed) `<dataDir>/xlstm.db` in WAL mode, so readers (GraphQL queries)
 * never wait for the trainer's writes, and brings the schema up to date.
 */
export function openDatabase(dataDir: string, migrations: readonly Migration[] = MIGRATIONS): Db {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, DB_FILE);
  let db: Db;
  try {
    db = new Database(file);
  } catch (e) {
    throw new XlstmError('INVALID_CONFIG', `store database ${file} expected to open, but got ${(e as Error).message}. Hint: check XLSTM_HOME.`, { cause: e });
  }
  try {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    assert(mode === 'wal', () => `store database ${file} expected journal_mode wal, but got ${String(mode)}`);
    db.pragma('synchronous = NORMAL'); // durable across process crashes in WAL mode; fsync at checkpoints only
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, migrations);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Applies the migrations newer than the database, each in its own transaction; returns the new version. */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): number {
  migrations.forEach((m, i) =>
    assert(m.version === i + 1, () => `migration ${m.name} expected version ${i + 1}, but got ${m.version}`),
  );
  const current = schemaVersion(db);
  if (current > migrations.length) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `store database schema expected version ${migrations.length} or older, but got ${current}. ` +
        'Hint: this data folder was written by a newer version of xlstm; upgrade, or point XLSTM_HOME elsewhere.',
    );
  }
  for (const m of migrations.slice(current)) {
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return schemaVersion(db);
}
