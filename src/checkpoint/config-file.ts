/** A checkpoint's config.yaml: the model keys under `model:` (or, when read, at the top level) plus other resolved sections. */
import { Document, parseDocument, visit } from 'yaml';
import { configToObject, validateModelConfig, type ModelConfig } from '../core/config.ts';
import { XlstmError } from '../util/errors.ts';

export interface CheckpointConfig {
  readonly config: ModelConfig;
  /** Every top-level section other than `model` (empty when the model keys sit at the top level). */
  readonly extra: Readonly<Record<string, unknown>>;
}

/** Parses config.yaml text; every failure is CHECKPOINT_CORRUPT naming `file`. */
export function parseCheckpointConfig(text: string, file: string): CheckpointConfig {
  const doc = parseDocument(text, { uniqueKeys: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    throw new XlstmError('CHECKPOINT_CORRUPT', `${file}: expected valid YAML, but got ${problem.message}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new XlstmError('CHECKPOINT_CORRUPT', `${file}: expected plain YAML data, but got ${(e as Error).message}`, { cause: e });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new XlstmError('CHECKPOINT_CORRUPT', `${file}: expected a mapping with a model: section, but got ${JSON.stringify(raw)}.`);
  }
  const top = raw as Record<string, unknown>;
  const nested = 'model' in top;
  try {
    const config = validateModelConfig(nested ? top.model : top, nested ? `${file}: model` : file);
    const { model: _model, ...extra } = top;
    return { config, extra: nested ? extra : {} };
  } catch (e) {
    if (e instanceof XlstmError && e.code === 'INVALID_CONFIG') {
      throw new XlstmError('CHECKPOINT_CORRUPT', e.message, { cause: e });
    }
    throw e;
  }
}

/** config.yaml text: `model:` first, then the extra sections; short lists in flow style like the reference's. */
export function stringifyCheckpointConfig(config: ModelConfig, extra: Readonly<Record<string, unknown>> = {}): string {
  if ('model' in extra) {
    throw new XlstmError('INVALID_INPUT', 'extraConfig expected sections other than model, but got a model key. Hint: pass the model as config.');
  }
  const doc = new Document({ model: configToObject(config), ...extra });
  visit(doc, {
    Seq(_, node) {
      if (node.items.length <= 8) node.flow = true;
    },
  });
  return doc.toString({ flowCollectionPadding: false });
}
