/** The registry of mLSTM sequence forms, chosen by name when a model is built or called. */
import { XlstmError } from '../../util/errors.ts';
import type { MlstmForm } from './cell.ts';
import { mlstmChunkwise } from './chunkwise.ts';
import { mlstmParallel } from './parallel.ts';
import { mlstmRecurrent } from './recurrent.ts';

export const FORMS = {
  parallel: mlstmParallel,
  chunkwise: (x, s, want) => mlstmChunkwise(x, s, want),
  recurrent: mlstmRecurrent,
} as const satisfies Record<string, MlstmForm>;

export type FormName = keyof typeof FORMS;

export function formByName(name: string): MlstmForm {
  if (!(name in FORMS)) {
    throw new XlstmError('INVALID_INPUT', `form expected one of ${Object.keys(FORMS).join(', ')}, but got "${name}".`);
  }
  return FORMS[name as FormName];
}
