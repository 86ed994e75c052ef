/**
 * `xlstm train --config config/llm.yaml [--section.key value ...]`: trains from a YAML config, as the
 * reference project's `python run.py fit --config config/llm.yaml` does. The run is recorded under
 * XLSTM_HOME (default ./.xlstm) and its checkpoints go to trainer.checkpoint.dir.
 */
import path from 'node:path';
import { loadLlmConfig } from '../config/index.ts';
import { openStore } from '../store/index.ts';
import { parseFlags } from './override-flags.ts';
import { CONFIG_DIR } from './paths.ts';
import { runInForeground } from './run-command.ts';
import { createRunQueue } from './runs.ts';
import { startTrainingBackends } from './runtime.ts';

export const TRAIN_USAGE = `xlstm train --config FILE [--section.key VALUE ...]
  --config     YAML config (default config/llm.yaml): sections seed_everything, model, tokenizer,
               optimizer, data, trainer, inference; unknown keys are errors
  --KEY VALUE  override any config key, e.g. --trainer.devices 2 --trainer.max_steps 100
Relative paths (data.root, trainer.checkpoint.dir) are read from the working directory. Runs are
recorded under XLSTM_HOME (default .xlstm). Ctrl-C stops after the current step, keeping the last checkpoint.`;

export async function trainCommand(argv: string[]): Promise<void> {
  const { flags, overrides } = parseFlags(argv, { config: 'string', help: 'boolean' }, 'train');
  if (flags.has('help')) {
    process.stdout.write(`usage: ${TRAIN_USAGE}\n`);
    return;
  }
  const file = (flags.get('config') as string | undefined) ?? path.join(CONFIG_DIR, 'llm.yaml');
  // Resolved once here for the checkpoint folder and the log interval; the queue resolves it again, identically.
  const config = loadLlmConfig(file, { overrides });
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const backends = await startTrainingBackends(log);
  const store = openStore(path.resolve(process.env.XLSTM_HOME ?? '.xlstm'));
  try {
    const queue = createRunQueue({
      store,
      checkpointsRoot: path.resolve(config.trainer.checkpoint.dir),
      configDir: CONFIG_DIR,
      workDir: process.cwd(),
      allowPaths: true,
      backend: backends.workers,
      isolate: backends.isolate,
    });
    const record = await queue.startTraining({ config: file, overrides });
    log(`run ${record.id}: checkpoints in ${path.resolve(config.trainer.checkpoint.dir)}`);
    await runInForeground(queue, store, record, process.stderr, config.trainer.log_every_n_steps);
  } finally {
    store.close();
  }
}
