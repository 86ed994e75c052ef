/**
 * Checkpoint folders on disk: a whole folder written durably and swapped in by rename, sha256 of
 * files, and listings that skip the dot-named temp and backup folders a write leaves while it runs.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { XlstmError } from '../util/errors.ts';

/** File name -> contents, written in this order. */
export type FolderFiles = ReadonlyArray<readonly [name: string, contents: Uint8Array | string]>;

export const WEIGHTS_FILE = 'model.safetensors';

const TEMP_MARK = '.tmp-';
const BACKUP_MARK = '.old-';

/**
 * Writes `files` into a fresh temp folder beside `dest` (fsync of every file and of the folder),
 * then renames it to `dest`. An existing `dest` is first renamed to a backup beside it and removed
 * only once the new folder is in place, so a reader never sees a mix of old and new files. POSIX
 * cannot swap two non-empty folders in one step: a crash between the two renames leaves `dest`
 * absent but both complete folders beside it (`.<name>.old-*`, `.<name>.tmp-*`;
 * `listLeftoverFolders` finds them). On any error the temp folder is removed and the old `dest`
 * restored.
 */
export async function writeFolderAtomic(dest: string, files: FolderFiles): Promise<void> {
  for (const [name] of files) {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes(path.sep)) {
      throw new XlstmError('INVALID_INPUT', `checkpoint file name expected a plain file name, but got ${JSON.stringify(name)}.`);
    }
  }
  const target = path.resolve(dest);
  const parent = path.dirname(target);
  const base = path.basename(target);
  await fsp.mkdir(parent, { recursive: true });
  const existing = await fsp.lstat(target).catch(() => null);
  if (existing && !existing.isDirectory()) {
    throw new XlstmError('INVALID_INPUT', `${dest} expected a checkpoint folder or nothing, but a file is there. Hint: choose another path.`);
  }
  const tmp = await fsp.mkdtemp(path.join(parent, `.${base}${TEMP_MARK}`));
  try {
    for (const [name, contents] of files) await writeDurable(path.join(tmp, name), contents);
    await syncFolder(tmp);
    const suffix = path.basename(tmp).slice(`.${base}${TEMP_MARK}`.length);
    if (existing) await swapIn(tmp, target, path.join(parent, `.${base}${BACKUP_MARK}${suffix}`));
    else await fsp.rename(tmp, target);
    await syncFolder(parent);
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function swapIn(tmp: string, target: string, backup: string): Promise<void> {
  await fsp.rename(target, backup);
  try {
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rename(backup, target);
    throw e;
  }
  await fsp.rm(backup, { recursive: true, force: true });
}

/** Creates `file` (it must not exist), writes it and flushes it to disk before returning. */
export async function writeDurable(file: string, contents: Uint8Array | string): Promise<void> {
  const fh = await fsp.open(file, 'wx');
  try {
    await fh.writeFile(contents);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync of a folder makes renames inside it durable; platforms that cannot do it are skipped. */
async function syncFolder(dir: string): Promise<void> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(dir, 'r');
  } catch (e) {
    if (['EISDIR', 'EPERM', 'EACCES'].includes((e as NodeJS.ErrnoException).code ?? '')) return;
    throw e;
  }
  try {
    await fh.sync();
  } catch (e) {
    if (!['EINVAL', 'EPERM', 'EBADF', 'EISDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
  } finally {
    await fh.close();
  }
}

/** Lowercase hex sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Lowercase hex sha256 of bytes already in memory. */
export function sha256Bytes(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function subfolders(root: string): Promise<string[]> {
  try {
    const entries = await fsp.readdir(root, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Names of the checkpoint folders under `root` (those holding model.safetensors), sorted; dot-named folders are skipped. */
export async function listCheckpointFolders(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await subfolders(root)) {
    if (name.startsWith('.')) continue;
    const weights = await fsp.stat(path.join(root, name, WEIGHTS_FILE)).catch(() => null);
    if (weights?.isFile()) out.push(name);
  }
  return out;
}

/** Temp and backup folders under `root` left by interrupted writes, for a caller to inspect or remove. */
export async function listLeftoverFolders(root: string): Promise<string[]> {
  return (await subfolders(root)).filter(
    (name) => name.startsWith('.') && (name.includes(TEMP_MARK) || name.includes(BACKUP_MARK)),
  );
}
