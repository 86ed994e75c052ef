/** `xlstm schema`: writes schema/schema.graphql from the type-graphql classes (`--check` fails on drift instead). */
import 'reflect-metadata';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { buildApiSchema, printApiSchema } from '../api/schema/index.ts';
import { XlstmError } from '../util/errors.ts';
import { SCHEMA_FILE } from './paths.ts';

export const SCHEMA_USAGE = 'xlstm schema [--out FILE] [--check]';

export async function schemaCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string', default: SCHEMA_FILE }, check: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`usage: ${SCHEMA_USAGE}\n`);
    return;
  }
  const sdl = printApiSchema(await buildApiSchema());
  const file = path.resolve(values.out);
  if (values.check) {
    const current = await fsp.readFile(file, 'utf8').catch(() => null);
    if (current !== sdl) {
      throw new XlstmError('INVALID_INPUT', `${file} expected to match the schema built from src/api/schema, but it ${current === null ? 'is missing' : 'differs'}. Hint: run npm run schema and commit the file.`);
    }
    process.stderr.write(`${file} is up to date\n`);
    return;
  }
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, sdl);
  process.stderr.write(`wrote ${file}\n`);
}
