/** Helpers for training tests: temp folders, collecting a run's events, reading a checkpoint's weights. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadCheckpoint } from '../../../src/checkpoint/index.ts';
import { train, type ProgressEvent, type TrainingRun } from '../../../src/train/index.ts';

const made: string[] = [];

export function tempDir(label: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `xlstm-${label}-`));
  made.push(dir);
  return dir;
}

/** Deletes every folder tempDir made (call in afterAll). */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Runs to the end; `stopWhen` aborts the run as soon as it returns true for an event. */
export async function collect(run: TrainingRun, stopWhen: (e: ProgressEvent) => boolean = () => false): Promise<ProgressEvent[]> {
  const controller = new AbortController();
  const events: ProgressEvent[] = [];
  for await (const event of train(run, controller.signal)) {
    events.push(event);
    if (stopWhen(event)) controller.abort();
  }
  return events;
}

/** Largest absolute difference between two checkpoints' tensors (which must have the same names). */
export async function maxWeightDiff(dirA: string, dirB: string): Promise<number> {
  const [a, b] = await Promise.all([loadCheckpoint(dirA), loadCheckpoint(dirB)]);
  let diff = 0;
  for (const [name, ta] of a.tensors) {
    const tb = b.tensors.get(name);
    if (!tb) throw new Error(`${dirB} lacks ${name}`);
    for (let i = 0; i < ta.data.length; i++) diff = Math.max(diff, Math.abs(ta.data[i] - tb.data[i]));
  }
  return diff;
}
