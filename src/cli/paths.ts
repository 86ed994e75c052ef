/** Folders of the repository the commands default to, found from this file rather than the working directory. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// XLSTM_ROOT names the repository for a bundled build, which runs from outside it (bench/gpu/prepare-serve.sh).
export const REPO_ROOT = process.env.XLSTM_ROOT
  ? path.resolve(process.env.XLSTM_ROOT)
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHECKPOINTS_DIR = path.join(REPO_ROOT, 'checkpoints');
export const CONFIG_DIR = path.join(REPO_ROOT, 'config');
export const SCHEMA_FILE = path.join(REPO_ROOT, 'schema', 'schema.graphql');

export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}
