/**
 * A child process for crash tests: writes run records and metrics to the store under HOME as fast as it can,
 * printing "committed N" once run N, its start and a metric point are committed. Usage: store-writer.ts HOME
 */
import { openStore } from '../../../src/store/index.ts';

const [home] = process.argv.slice(2);
const store = openStore(home);
for (let n = 1; ; n++) {
  const id = `run-${n}`;
  store.runs.create({ id, kind: 'TRAIN', config: { n, padding: 'x'.repeat(2000) }, seed: n, baseCheckpointId: null });
  store.runs.apply(id, { type: 'start', at: new Date().toISOString() });
  store.runs.recordMetrics(id, { step: 1, loss: n });
  process.stdout.write(`committed ${n}\n`);
  // Let stdout drain now and then, so the parent sees lines while the writes go on.
  if (n % 50 === 0) await new Promise((r) => setImmediate(r));
}
