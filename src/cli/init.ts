/** `xlstm init`: writes a freshly initialised checkpoint (DESIGN's initialisation) from a config's model section. */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { saveCheckpoint } from '../checkpoint/index.ts';
import { XlstmModel } from '../core/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { XlstmError } from '../util/errors.ts';
import { readConfigFile } from './config-file.ts';
import { startBackend } from './runtime.ts';

export const INIT_USAGE = 'xlstm init --config config/llm.yaml --seed N --out DIR [--dtype F32|F16]';

export async function initCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', default: 'config/llm.yaml' },
      seed: { type: 'string', default: '0' },
      out: { type: 'string' },
      dtype: { type: 'string', default: 'F32' },
    },
  });
  if (!values.out) throw new XlstmError('INVALID_INPUT', `--out expected a folder, but got nothing. Usage: ${INIT_USAGE}`);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new XlstmError('INVALID_INPUT', `--seed expected an integer >= 0, but got "${values.seed}".`);
  if (values.dtype !== 'F32' && values.dtype !== 'F16') throw new XlstmError('INVALID_INPUT', `--dtype expected F32 or F16, but got "${values.dtype}".`);
  const { model: config } = await readConfigFile(values.config);
  await startBackend();
  const model = XlstmModel.init(config, seed);
  const meta = await saveCheckpoint(values.out, {
    config,
    tensors: model.toArrays(),
    tokenizerJson: Tokenizer.gpt2().toJson(),
    dtype: values.dtype,
    meta: { provenance: { command: `xlstm init --config ${values.config} --seed ${seed}`, notes: 'fresh initialisation' } },
  });
  model.dispose();
  process.stderr.write(`wrote ${path.resolve(values.out)} (${meta.id}, sha256 ${meta.sha256.slice(0, 12)}...)\n`);
}
