/** `xlstm logits`: the logits of a checkpoint for given ids, as JSON, so other tools can check the model. */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../checkpoint/index.ts';
import { formByName, XlstmModel, type FormName } from '../core/index.ts';
import { XlstmError } from '../util/errors.ts';
import { startBackend } from './runtime.ts';

export const LOGITS_USAGE = 'xlstm logits --checkpoint DIR --ids 464,2068,7586 [--form parallel|chunkwise|recurrent]';

export function parseIds(text: string, vocab: number): number[] {
  const ids = text.split(',').map((s) => s.trim());
  return ids.map((s) => {
    const id = Number(s);
    if (s === '' || !Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new XlstmError('INVALID_INPUT', `--ids expected comma-separated integers in [0, ${vocab}), but got "${s}".`);
    }
    return id;
  });
}

export async function logitsCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { checkpoint: { type: 'string' }, ids: { type: 'string' }, form: { type: 'string', default: 'parallel' } },
  });
  if (!values.checkpoint || !values.ids) throw new XlstmError('INVALID_INPUT', `usage: ${LOGITS_USAGE}`);
  formByName(values.form);
  await startBackend(() => {});
  const ckpt = await loadCheckpoint(values.checkpoint);
  const ids = parseIds(values.ids, ckpt.config.vocab_size);
  const model = XlstmModel.fromArrays(ckpt.config, ckpt.tensors);
  const logits = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], 'int32'), values.form as FormName));
  const [, T, V] = logits.shape;
  const last = Array.from((await tf.slice(logits, [0, T - 1, 0], [1, 1, V]).data()) as Float32Array);
  process.stdout.write(`${JSON.stringify({ shape: [T, V], last })}\n`);
  logits.dispose();
  model.dispose();
}
