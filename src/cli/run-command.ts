/** Runs one queued run in the foreground for `xlstm train` / `xlstm finetune`: progress output, Ctrl-C cancels. */
import type { RunRecord, Store } from '../store/index.ts';
import type { RunQueue } from '../train/index.ts';
import { ProgressPrinter, type ProgressOutput } from './train-progress.ts';

/**
 * Executes `record` and prints its progress to `out`. The first SIGINT cancels the run (it stops
 * before the next step and keeps its last checkpoint); a second one exits at once. The exit status is
 * 1 for a failed run and 130 for a cancelled one.
 */
export async function runInForeground(queue: RunQueue, store: Store, record: RunRecord, out: ProgressOutput, logEvery: number): Promise<RunRecord> {
  const printer = new ProgressPrinter(out, logEvery);
  const updates = queue.progress(record.id);
  const printing = (async () => {
    for await (const u of updates) printer.update(u);
  })();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    printer.end();
    out.write('cancelling: the run stops after the current step (Ctrl-C again to quit at once)\n');
    queue.cancel(record.id);
  };
  process.on('SIGINT', onSigint);
  try {
    const final = await queue.runOne(record.id);
    await printing;
    printer.end();
    // The failure itself was printed with the run's updates; the exit status carries it.
    if (final.phase === 'FAILED') process.exitCode = 1;
    if (final.phase === 'CANCELLED') process.exitCode = 130;
    const last = store.checkpoints.list({ runId: final.id, first: 1 }).items[0];
    if (last) out.write(`latest checkpoint: ${last.id} at ${last.path}\n`);
    return final;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
