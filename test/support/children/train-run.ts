/**
 * A child process for crash tests: a run queue under HOME (the tiny model, the character codec, DATA as its
 * dataset). "start" queues a run of MAX_STEPS steps with a resumable checkpoint every 2 steps; "resume" only
 * starts the queue, which resumes what the store says was RUNNING. Each update is printed as one JSON line.
 * Usage: train-run.ts HOME DATA start|resume MAX_STEPS
 */
import { selectBackend } from '../../../src/backend/select.ts';
import type { RunUpdate } from '../../../src/train/index.ts';
import { openQueue, tinyYaml } from '../../train/support/queue.ts';

const [home, data, mode, maxSteps] = process.argv.slice(2);
await selectBackend('cpu');
const { queue, store } = openQueue(home);
const print = (u: RunUpdate): void => {
  const e = u.event as { kind: string; step?: number; resumed?: boolean; id?: string } | null;
  process.stdout.write(`${JSON.stringify({ run: u.runId, phase: u.phase, kind: e?.kind ?? null, step: e?.step ?? null, resumed: e?.resumed ?? null, id: e?.id ?? null })}\n`);
};
let id: string;
if (mode === 'start') {
  queue.start();
  id = (await queue.startTraining({ config: tinyYaml(data, { max_steps: Number(maxSteps), val_check_interval: 1000, checkpoint: { every_n_steps: 2 } }) })).id;
} else {
  id = store.runs.list({ phase: 'RUNNING' }).items[0].id;
}
const updates = queue.progress(id);
if (mode !== 'start') queue.start();
for await (const u of updates) print(u);
await queue.close();
store.close();
process.stdout.write('exit\n');
