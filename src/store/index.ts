/** The store's public surface: run and checkpoint records in SQLite under the data folder. No tensors here. */
import { CheckpointStore } from './checkpoints.ts';
import { openDatabase, type Db } from './db.ts';
import { RunStore } from './runs.ts';

export interface Store {
  readonly db: Db;
  readonly runs: RunStore;
  readonly checkpoints: CheckpointStore;
  close(): void;
}

/** Opens `<dataDir>/xlstm.db` (dataDir is XLSTM_HOME, resolved by the caller); `now` is injectable for tests. */
export function openStore(dataDir: string, options: { readonly now?: () => Date } = {}): Store {
  const db = openDatabase(dataDir);
  return {
    db,
    runs: new RunStore(db, options.now),
    checkpoints: new CheckpointStore(db, options.now),
    close: () => db.close(),
  };
}

export { CheckpointStore, type CheckpointRecord, type NewCheckpoint } from './checkpoints.ts';
export { DB_FILE, MIGRATIONS, migrate, openDatabase, schemaVersion, type Db, type Migration } from './db.ts';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type Page, type PageArgs } from './page.ts';
export {
  LEGAL_EVENTS,
  RUN_KINDS,
  RUN_PHASES,
  isTerminal,
  transition,
  type RunError,
  type RunEvent,
  type RunEventType,
  type RunKind,
  type RunPhase,
  type RunState,
} from './run-phase.ts';
export { RunStore, type MetricPoint, type MetricRecord, type NewRun, type RecoveryPlan, type RunCommon, type RunRecord } from './runs.ts';
