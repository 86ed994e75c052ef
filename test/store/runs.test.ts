import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/index.ts';

const base = mkdtempSync(join(tmpdir(), 'xlstm-runs-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const opened: Store[] = [];
afterEach(() => opened.splice(0).forEach((s) => s.db.open && s.close()));

/** A clock that ticks one second per reading, so every timestamp is predictable. */
function clock() {
  let t = Date.UTC(2025, 0, 1);
  return () => new Date((t += 1000));
}
const at = (seconds: number) => new Date(Date.UTC(2025, 0, 1) + seconds * 1000).toISOString();

function store(dir = join(base, `home${n++}`)): Store {
  const s = openStore(dir, { now: clock() });
  opened.push(s);
  return s;
}

const CONFIG = { model: { vocab_size: 64 }, optimizer: { lr: 0.001 }, trainer: { max_steps: 10 } };

describe('RunStore', () => {
  it('creates a queued run with its resolved config and seed', () => {
    const { runs } = store();
    const run = runs.create({ id: 'r1', kind: 'FINETUNE', config: CONFIG, seed: 42, baseCheckpointId: 'ck0' });
    expect(run).toEqual({ id: 'r1', kind: 'FINETUNE', config: CONFIG, seed: 42, baseCheckpointId: 'ck0', createdAt: at(1), phase: 'QUEUED' });
    expect(runs.get('r1')).toEqual(run);
    expect(runs.create({ kind: 'TRAIN', config: {}, seed: 1 }).id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('walks a run through its lifecycle and persists every phase', () => {
    const { runs } = store();
    runs.create({ id: 'r1', kind: 'TRAIN', config: CONFIG, seed: 1 }); // t=1
    expect(runs.apply('r1', { type: 'start', at: at(10) })).toMatchObject({ phase: 'RUNNING', startedAt: at(10), step: 0 });
    runs.apply('r1', { type: 'progress', step: 4 });
    expect(runs.apply('r1', { type: 'cancel', at: at(20) })).toMatchObject({ phase: 'CANCELLING', step: 4 });
    const done = runs.apply('r1', { type: 'stop', at: at(30) });
    expect(done).toEqual({ ...runs.get('r1') });
    expect(runs.get('r1')).toEqual({
      id: 'r1', kind: 'TRAIN', config: CONFIG, seed: 1, baseCheckpointId: null, createdAt: at(1),
      phase: 'CANCELLED', startedAt: at(10), finishedAt: at(30), step: 4,
    });
  });

  it('stores the error of a failed run', () => {
    const { runs } = store();
    runs.create({ id: 'r1', kind: 'TRAIN', config: {}, seed: 1 });
    runs.apply('r1', { type: 'start', at: at(5) });
    runs.apply('r1', { type: 'fail', at: at(6), error: { code: 'INVALID_INPUT', message: 'train.txt is binary' } });
    expect(runs.get('r1')).toMatchObject({ phase: 'FAILED', error: { code: 'INVALID_INPUT', message: 'train.txt is binary' } });
  });

  it('refuses an illegal transition with RUN_STATE and leaves the record as it was', () => {
    const { runs } = store();
    runs.create({ id: 'r1', kind: 'TRAIN', config: {}, seed: 1 });
    const before = runs.get('r1');
    expect(() => runs.apply('r1', { type: 'succeed', at: at(9) })).toThrowError(
      expect.objectContaining({ code: 'RUN_STATE', message: expect.stringContaining('run r1 in phase QUEUED expected one of the events start, cancel, fail') }),
    );
    expect(runs.get('r1')).toEqual(before);
  });

  it('reports unknown runs as RUN_NOT_FOUND and refuses duplicate ids', () => {
    const { runs } = store();
    expect(runs.get('nope')).toBeNull();
    expect(() => runs.apply('nope', { type: 'start', at: at(1) })).toThrowError(expect.objectContaining({ code: 'RUN_NOT_FOUND' }));
    runs.create({ id: 'r1', kind: 'TRAIN', config: {}, seed: 1 });
    expect(() => runs.create({ id: 'r1', kind: 'TRAIN', config: {}, seed: 1 })).toThrow(/run id expected to be new, but got r1/);
    expect(() => runs.create({ kind: 'EVAL' as never, config: {}, seed: 1 })).toThrow(/run kind expected one of TRAIN, FINETUNE/);
  });

  it('records metric history, merging later fields at the same step, and advances the step', () => {
    const { runs } = store();
    runs.create({ id: 'r1', kind: 'TRAIN', config: {}, seed: 1 });
    expect(() => runs.recordMetrics('r1', { step: 1, loss: 5 })).toThrowError(expect.objectContaining({ code: 'RUN_STATE' }));
    runs.apply('r1', { type: 'start', at: at(5) });
    runs.recordMetrics('r1', { step: 10, loss: 4.5, lr: 1e-3, tokensPerSecond: 1200, gradNorm: 0.8 });
    runs.recordMetrics('r1', { step: 20, loss: 4.1, lr: 9e-4, tokensPerSecond: 1300, gradNorm: Number.NaN });
    runs.recordMetrics('r1', { step: 20, valLoss: 4.3, samples: ['Once upon a time'] });
    expect(runs.get('r1')).toMatchObject({ phase: 'RUNNING', step: 20 });
    const history = runs.metrics('r1');
    expect(history.map(({ at: _at, ...m }) => m)).toEqual([
      { step: 10, loss: 4.5, lr: 1e-3, tokensPerSecond: 1200, gradNorm: 0.8, valLoss: null, samples: null },
      { step: 20, loss: 4.1, lr: 9e-4, tokensPerSecond: 1300, gradNorm: null, valLoss: 4.3, samples: ['Once upon a time'] },
    ]);
    expect(runs.metrics('r1', { afterStep: 10 }).map((m) => m.step)).toEqual([20]);
  });

  it('pages newest first with first/after, optionally filtered by phase', () => {
    const { runs } = store();
    for (let i = 1; i <= 7; i++) runs.create({ id: `r${i}`, kind: 'TRAIN', config: {}, seed: i });
    for (const id of ['r2', 'r4', 'r5']) runs.apply(id, { type: 'start', at: at(100) });

    const ids = (p: { items: { id: string }[] }) => p.items.map((r) => r.id);
    const p1 = runs.list({ first: 3 });
    expect([ids(p1), p1.hasNextPage]).toEqual([['r7', 'r6', 'r5'], true]);
    const p2 = runs.list({ first: 3, after: p1.endCursor });
    expect([ids(p2), p2.hasNextPage]).toEqual([['r4', 'r3', 'r2'], true]);
    const p3 = runs.list({ first: 3, after: p2.endCursor });
    expect([ids(p3), p3.hasNextPage]).toEqual([['r1'], false]);
    const p4 = runs.list({ first: 3, after: p3.endCursor });
    expect([ids(p4), p4.hasNextPage, p4.endCursor]).toEqual([[], false, null]);

    const running = runs.list({ phase: 'RUNNING', first: 2 });
    expect([ids(running), running.hasNextPage]).toEqual([['r5', 'r4'], true]);
    expect(ids(runs.list({ phase: 'RUNNING', after: running.endCursor }))).toEqual(['r2']);
    expect(ids(runs.list({ phase: ['QUEUED', 'RUNNING'], first: 100 }))).toHaveLength(7);
    expect(runs.list().items).toHaveLength(7);
  });

  it.each([
    [{ first: -1 }, /first expected an integer in \[0, 100\], but got -1/],
    [{ first: 101 }, /first expected an integer in \[0, 100\], but got 101/],
    [{ after: 'garbage' }, /cursor expected an endCursor from a runs page, but got "garbage"/],
    [{ after: Buffer.from('checkpoints:3').toString('base64url') }, /cursor expected an endCursor from a runs page/],
    [{ phase: 'DONE' as never }, /phase filter expected one of QUEUED, RUNNING/],
  ])('refuses bad paging arguments %o with INVALID_INPUT', (args, message) => {
    const { runs } = store();
    expect(() => runs.list(args)).toThrowError(expect.objectContaining({ code: 'INVALID_INPUT', message: expect.stringMatching(message) }));
  });

  it('plans recovery after a restart: running ones resume, queued ones go on, cancelling ones end', () => {
    const dir = join(base, `home${n++}`);
    const before = store(dir);
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) before.runs.create({ id, kind: 'TRAIN', config: { id }, seed: 0 });
    before.runs.apply('a', { type: 'start', at: at(50) });
    before.runs.apply('a', { type: 'succeed', at: at(60) });
    before.runs.apply('b', { type: 'start', at: at(50) });
    before.runs.recordMetrics('b', { step: 30, loss: 3 });
    before.runs.apply('d', { type: 'start', at: at(50) });
    before.runs.apply('e', { type: 'start', at: at(50) });
    before.runs.apply('e', { type: 'cancel', at: at(55) });
    before.close(); // the process stops here

    const after = store(dir);
    const plan = after.runs.recoveryPlan();
    expect(plan.resume.map((r) => [r.id, r.phase === 'RUNNING' && r.step])).toEqual([
      ['b', 30],
      ['d', 0],
    ]);
    expect(plan.queued.map((r) => r.id)).toEqual(['c', 'f']);
    expect(plan.cancelling.map((r) => r.id)).toEqual(['e']);
    expect(plan.resume[0].config).toEqual({ id: 'b' });
  });
});
