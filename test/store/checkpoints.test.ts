import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/index.ts';

const base = mkdtempSync(join(tmpdir(), 'xlstm-ckpt-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const opened: Store[] = [];
afterEach(() => opened.splice(0).forEach((s) => s.close()));

function store(): Store {
  let t = Date.UTC(2025, 0, 1);
  const s = openStore(join(base, `home${n++}`), { now: () => new Date((t += 1000)) });
  opened.push(s);
  return s;
}

describe('CheckpointStore', () => {
  it('registers a checkpoint and reads it back', () => {
    const { runs, checkpoints } = store();
    runs.create({ id: 'r1', kind: 'TRAIN', config: {}, seed: 1 });
    const record = checkpoints.add({ id: 'c1', path: '/ck/c1', runId: 'r1', parentId: 'base', step: 100, tokensSeen: 51200, trainLoss: 3.2, valLoss: 3.4 });
    expect(record).toEqual({
      id: 'c1', path: '/ck/c1', runId: 'r1', parentId: 'base', step: 100, tokensSeen: 51200, trainLoss: 3.2, valLoss: 3.4,
      createdAt: '2025-01-01T00:00:02.000Z', // the run took the clock's first tick
    });
    expect(checkpoints.get('c1')).toEqual(record);
    expect(checkpoints.add({ id: 'embedded', path: '/ck/default', step: 0 })).toMatchObject({ runId: null, parentId: null, trainLoss: null });
  });

  it('lists the checkpoints a run wrote and finds the one to resume from', () => {
    const { runs, checkpoints } = store();
    runs.create({ id: 'r1', kind: 'TRAIN', config: {}, seed: 1 });
    runs.create({ id: 'r2', kind: 'TRAIN', config: {}, seed: 2 });
    checkpoints.add({ id: 'a', path: '/a', runId: 'r1', step: 100 });
    checkpoints.add({ id: 'b', path: '/b', runId: 'r2', step: 500 });
    checkpoints.add({ id: 'c', path: '/c', runId: 'r1', step: 300 });
    checkpoints.add({ id: 'd', path: '/d', runId: 'r1', step: 200 });
    expect(checkpoints.list({ runId: 'r1' }).items.map((c) => c.id)).toEqual(['d', 'c', 'a']);
    expect(checkpoints.latestForRun('r1')?.id).toBe('c');
    expect(checkpoints.latestForRun('r2')?.id).toBe('b');
    expect(checkpoints.latestForRun('none')).toBeNull();
  });

  it('pages newest first', () => {
    const { checkpoints } = store();
    for (let i = 1; i <= 5; i++) checkpoints.add({ id: `c${i}`, path: `/c${i}`, step: i });
    const p1 = checkpoints.list({ first: 2 });
    const p2 = checkpoints.list({ first: 2, after: p1.endCursor });
    const p3 = checkpoints.list({ first: 2, after: p2.endCursor });
    expect([p1, p2, p3].map((p) => [p.items.map((c) => c.id), p.hasNextPage])).toEqual([
      [['c5', 'c4'], true],
      [['c3', 'c2'], true],
      [['c1'], false],
    ]);
  });

  it('removes records, and keeps checkpoints when their run record goes', () => {
    const { db, runs, checkpoints } = store();
    runs.create({ id: 'r1', kind: 'TRAIN', config: {}, seed: 1 });
    checkpoints.add({ id: 'c1', path: '/c1', runId: 'r1', step: 1 });
    checkpoints.add({ id: 'c2', path: '/c2', step: 1 });
    expect(checkpoints.remove('c2')).toBe(true);
    expect(checkpoints.remove('c2')).toBe(false);
    db.prepare('DELETE FROM runs WHERE id = ?').run('r1');
    expect(checkpoints.get('c1')).toMatchObject({ runId: null });
  });

  it.each([
    ['a duplicate id', { id: 'c1', path: '/other', step: 1 }, 'INVALID_INPUT', /checkpoint id expected to be new, but got c1, which is registered at \/c1/],
    ['an unknown run', { id: 'c9', path: '/c9', runId: 'ghost', step: 1 }, 'RUN_NOT_FOUND', /checkpoint c9 expected an existing run, but got run id "ghost"/],
    ['a negative step', { id: 'c9', path: '/c9', step: -1 }, 'INVALID_INPUT', /checkpoint c9 step expected an integer >= 0, but got -1/],
  ])('refuses %s', (_case, input, code, message) => {
    const { checkpoints } = store();
    checkpoints.add({ id: 'c1', path: '/c1', step: 1 });
    expect(() => checkpoints.add(input)).toThrowError(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });

  it('reports a missing checkpoint as CHECKPOINT_NOT_FOUND', () => {
    expect(() => store().checkpoints.require('nope')).toThrowError(expect.objectContaining({ code: 'CHECKPOINT_NOT_FOUND' }));
  });
});
