import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DB_FILE, MIGRATIONS, openDatabase, schemaVersion, type Migration } from '../../src/store/db.ts';

const base = mkdtempSync(join(tmpdir(), 'xlstm-db-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(base, `home${n++}`, 'nested');

const tables = (db: Database.Database) =>
  (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map(
    (r) => r.name,
  );

describe('openDatabase', () => {
  it('creates the data folder and the schema, in WAL mode with foreign keys on', () => {
    const dir = freshDir();
    const db = openDatabase(dir);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(tables(db)).toEqual(['checkpoints', 'run_metrics', 'runs']);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    db.prepare(`INSERT INTO runs (id, kind, phase, config, seed, created_at) VALUES ('r', 'TRAIN', 'QUEUED', '{}', 1, 'now')`).run();
    expect(existsSync(join(dir, `${DB_FILE}-wal`))).toBe(true);
    db.close();
  });

  it('keeps data and applies nothing twice when reopened', () => {
    const dir = freshDir();
    const first = openDatabase(dir);
    first.prepare(`INSERT INTO runs (id, kind, phase, config, seed, created_at) VALUES ('r', 'TRAIN', 'QUEUED', '{}', 1, 'now')`).run();
    first.close();
    const again = openDatabase(dir);
    expect(again.prepare('SELECT count(*) AS c FROM runs').get()).toEqual({ c: 1 });
    expect(schemaVersion(again)).toBe(1);
    again.close();
  });

  it('applies only the migrations newer than the database', () => {
    const dir = freshDir();
    openDatabase(dir).close();
    const v2: Migration = { version: 2, name: 'run notes', sql: 'ALTER TABLE runs ADD COLUMN note TEXT' };
    const db = openDatabase(dir, [...MIGRATIONS, v2]);
    expect(schemaVersion(db)).toBe(2);
    expect((db.prepare('PRAGMA table_info(runs)').all() as { name: string }[]).map((c) => c.name)).toContain('note');
    db.close();
  });

  it('rolls a failing migration back completely', () => {
    const dir = freshDir();
    openDatabase(dir).close();
    const broken: Migration = { version: 2, name: 'broken', sql: 'CREATE TABLE extra (x INTEGER); INSERT INTO no_such_table VALUES (1);' };
    expect(() => openDatabase(dir, [...MIGRATIONS, broken])).toThrow(/no such table: no_such_table/);
    const db = openDatabase(dir);
    expect(schemaVersion(db)).toBe(1);
    expect(tables(db)).not.toContain('extra');
    db.close();
  });

  it('refuses a database written by a newer schema', () => {
    const dir = freshDir();
    const db = openDatabase(dir);
    db.pragma('user_version = 7');
    db.close();
    expect(() => openDatabase(dir)).toThrowError(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/schema expected version 1 or older, but got 7/) }),
    );
  });

  it('refuses migrations that are not numbered 1, 2, 3, ...', () => {
    const skip: Migration = { version: 3, name: 'gap', sql: 'SELECT 1' };
    expect(() => openDatabase(freshDir(), [...MIGRATIONS, skip])).toThrow(/migration gap expected version 2, but got 3/);
  });
});
