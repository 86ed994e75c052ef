/**
 * `xlstm finetune --checkpoint ID_OR_DIR --data PATH [--steps N --lr X ...]`: continues training a
 * checkpoint on a dataset, with the checkpoint's architecture and tokenizer. New checkpoints go to
 * --checkpoints-dir (default XLSTM_CHECKPOINTS or the repository's checkpoints/).
 */
import path from 'node:path';
import { openStore } from '../store/index.ts';
import { XlstmError } from '../util/errors.ts';
import { intFlag, numberFlag } from './int-flag.ts';
import { parseFlags } from './override-flags.ts';
import { CHECKPOINTS_DIR, CONFIG_DIR } from './paths.ts';
import { runInForeground } from './run-command.ts';
import { createRunQueue } from './runs.ts';
import { startTrainingBackends } from './runtime.ts';

export const FINETUNE_USAGE = `xlstm finetune --checkpoint ID|DIR --data PATH [options] [--section.key VALUE ...]
  --checkpoint        the checkpoint to start from: an id under the checkpoints folder, or a folder
  --data              a .txt/.jsonl file, or a folder with train (and optional valid, test) files
  --steps N           optimizer steps (default 100)
  --lr X              peak learning rate (default 1e-4)
  --batch-size N      rows per micro-batch over all devices (default 8)
  --max-length N      tokens per row (default 128)
  --devices N         data-parallel worker processes (default 1)
  --warmup-steps N    default: a tenth of the steps
  --val-check-interval N  steps between evaluations (default: a fifth of the steps)
  --seed N
  --checkpoints-dir   where the new checkpoints go (default XLSTM_CHECKPOINTS or checkpoints/)
  --KEY VALUE         any other config key, e.g. --trainer.grad_clip 0.5`;

const FLAGS = {
  checkpoint: 'string',
  data: 'string',
  steps: 'string',
  lr: 'string',
  'batch-size': 'string',
  'max-length': 'string',
  devices: 'string',
  'warmup-steps': 'string',
  'val-check-interval': 'string',
  seed: 'string',
  'checkpoints-dir': 'string',
  help: 'boolean',
} as const;

export async function finetuneCommand(argv: string[]): Promise<void> {
  const { flags, overrides } = parseFlags(argv, FLAGS, 'finetune');
  if (flags.has('help')) {
    process.stdout.write(`usage: ${FINETUNE_USAGE}\n`);
    return;
  }
  const text = (name: string): string | undefined => flags.get(name) as string | undefined;
  const required = (name: string): string => {
    const v = text(name);
    if (v === undefined) throw new XlstmError('INVALID_INPUT', `finetune expected --${name}, but got nothing. Hint: run "xlstm finetune --help".`);
    return v;
  };
  const request = {
    checkpoint: required('checkpoint'),
    dataset: required('data'),
    steps: intFlag('--steps', text('steps'), 1),
    learningRate: numberFlag('--lr', text('lr')),
    batchSize: intFlag('--batch-size', text('batch-size'), 1),
    maxLength: intFlag('--max-length', text('max-length'), 1),
    devices: intFlag('--devices', text('devices'), 1),
    warmupSteps: intFlag('--warmup-steps', text('warmup-steps'), 0),
    valCheckInterval: intFlag('--val-check-interval', text('val-check-interval'), 1),
    seed: intFlag('--seed', text('seed'), 0),
    overrides,
  };
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const backends = await startTrainingBackends(log);
  const root = path.resolve(text('checkpoints-dir') ?? process.env.XLSTM_CHECKPOINTS ?? CHECKPOINTS_DIR);
  const store = openStore(path.resolve(process.env.XLSTM_HOME ?? '.xlstm'));
  try {
    const queue = createRunQueue({ store, checkpointsRoot: root, configDir: CONFIG_DIR, workDir: process.cwd(), allowPaths: true, backend: backends.workers, isolate: backends.isolate });
    const record = await queue.startFineTune(request);
    const logEvery = (record.config as { resolved: { trainer: { log_every_n_steps: number } } }).resolved.trainer.log_every_n_steps;
    log(`run ${record.id}: fine-tuning ${request.checkpoint} on ${request.dataset}; checkpoints in ${root}`);
    await runInForeground(queue, store, record, process.stderr, logEvery);
  } finally {
    store.close();
  }
}
