/** `xlstm export`: a checkpoint as a shippable copy, without optimizer state, optionally in float16. */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { XlstmError } from '../util/errors.ts';

export const EXPORT_USAGE = 'xlstm export --checkpoint DIR --out DIR [--dtype F16|F32] [--notes TEXT]';

export async function exportCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { checkpoint: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string', default: 'F16' }, notes: { type: 'string' } },
  });
  if (!values.checkpoint || !values.out) throw new XlstmError('INVALID_INPUT', `usage: ${EXPORT_USAGE}`);
  if (values.dtype !== 'F16' && values.dtype !== 'F32') throw new XlstmError('INVALID_INPUT', `--dtype expected F16 or F32, but got "${values.dtype}".`);
  const src = await loadCheckpoint(values.checkpoint);
  const m = src.meta;
  const meta = await saveCheckpoint(values.out, {
    config: src.config,
    tensors: src.tensors,
    tokenizerJson: src.tokenizerJson ?? Tokenizer.gpt2().toJson(),
    dtype: values.dtype,
    extraConfig: src.extraConfig,
    meta: {
      parent: m.id,
      run_id: m.run_id,
      step: m.step,
      tokens_seen: m.tokens_seen,
      train_loss: m.train_loss,
      val_loss: m.val_loss,
      provenance: { ...m.provenance, exported: `xlstm export --dtype ${values.dtype} from ${m.id}`, ...(values.notes ? { notes: values.notes } : {}) },
    },
  });
  process.stderr.write(`wrote ${path.resolve(values.out)} (${meta.id}, ${values.dtype}, step ${meta.step}, val_loss ${meta.val_loss})\n`);
}
