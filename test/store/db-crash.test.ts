/** kill -9 of a process writing to the store: SQLite in WAL mode keeps every committed record and an intact file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { openStore } from '../../src/store/index.ts';
import { killHard, spawnChild } from '../support/children/spawn.ts';

const WRITER = new URL('../support/children/store-writer.ts', import.meta.url).pathname;
const home = mkdtempSync(path.join(tmpdir(), 'xlstm-db-crash-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('kill -9 while writing the store', () => {
  it('reopens in WAL mode with an intact database holding every record reported committed', async () => {
    const child = spawnChild(WRITER, [home]);
    await child.waitFor((l) => l === 'committed 200');
    await killHard(child);
    const committed = Math.max(...child.lines.map((l) => Number(l.replace('committed ', ''))));

    const store = openStore(home);
    try {
      expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      const runs = store.db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number };
      // Every reported commit survived (more may have been committed after the last line the parent read).
      expect(runs.n).toBeGreaterThanOrEqual(committed);
      for (const n of [1, Math.ceil(committed / 2), committed]) {
        expect(store.runs.get(`run-${n}`)).toMatchObject({ phase: 'RUNNING', seed: n });
        expect(store.runs.metrics(`run-${n}`)).toEqual([expect.objectContaining({ step: 1, loss: n })]);
      }
      // And it still takes writes.
      store.runs.create({ id: 'after-crash', kind: 'TRAIN', config: {}, seed: 0, baseCheckpointId: null });
      expect(store.runs.get('after-crash')).not.toBeNull();
    } finally {
      store.close();
    }
  });
});
