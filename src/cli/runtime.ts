/** What every command needs first: the tfjs backend (XLSTM_BACKEND or the first available), logged once. */
import { selectBackend, type BackendInfo } from '../backend/select.ts';

type Log = (line: string) => void;

const stderr: Log = (l) => void process.stderr.write(`${l}\n`);

export async function startBackend(log: Log = stderr): Promise<BackendInfo> {
  const info = await selectBackend(process.env.XLSTM_BACKEND);
  log(`backend: ${info.name} (${info.detail})`);
  return info;
}

/** Where a training command computes: the trainer process's backend and its gradient workers'. */
export interface TrainingBackends {
  /** Weights, AdamW, evaluation and checkpoints. */
  readonly trainer: BackendInfo;
  /** What the data-parallel worker processes select. */
  readonly workers: string;
  /** Gradients in worker processes even for one device. */
  readonly isolate: boolean;
}

/**
 * On webgpu the gradients run in worker processes, one per GPU, and the trainer stays on the host
 * backend: its AdamW clipping, validation and checkpoint writes read tensors synchronously, which
 * webgpu under Node cannot.
 */
export async function startTrainingBackends(log: Log = stderr): Promise<TrainingBackends> {
  const info = await startBackend(log);
  if (info.name !== 'webgpu') return { trainer: info, workers: info.name, isolate: false };
  const host = await selectBackend('wasm').catch(() => selectBackend('cpu'));
  log(`trainer on ${host.name}; gradients in worker processes on webgpu, one per GPU`);
  return { trainer: host, workers: 'webgpu', isolate: true };
}
