/** Reads a YAML config for a command; the model section is validated, the rest passed through. */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { validateModelConfig, type ModelConfig } from '../core/index.ts';
import { XlstmError } from '../util/errors.ts';

export async function readConfigFile(file: string): Promise<{ model: ModelConfig; raw: Record<string, unknown> }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new XlstmError('INVALID_CONFIG', `${file} expected a readable YAML file, but got ${(e as Error).message}.`, { cause: e });
  }
  const raw = (parse(text) ?? {}) as Record<string, unknown>;
  return { model: validateModelConfig(raw.model, `${file}: model`), raw };
}
