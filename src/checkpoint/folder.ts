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

export interface RepairReport {
  /** Checkpoint folders put back in place (from the new copy when it was complete, else the old one). */
  readonly restored: readonly string[];
  /** Leftover temp, backup and deletion folders removed. */
  readonly removed: readonly string[];
}

export interface RepairOptions {
  /**
   * A temp folder with no backup beside it may be a write still running in another process: it is removed only
   * once nothing in it changed for this long (default 10 minutes). Backups are decided without waiting.
   */
  readonly staleMs?: number;
  readonly now?: () => number;
}

const LEFTOVER = /^\.(.+)\.(tmp|old)-([A-Za-z0-9]+)$/;
const DELETING = /^\.deleting-/;

/**
 * Finishes or undoes what a killed writeFolderAtomic left under `root`. A backup `.NAME.old-S` exists only after
 * the new copy `.NAME.tmp-S` was complete and synced, so: NAME present -> the swap finished, drop the backup;
 * NAME absent and the new copy there -> move the new copy in; NAME absent and no new copy -> put the backup
 * back. Temp folders without a backup were never complete and go once stale; so do `.deleting-*` folders.
 */
export async function repairInterruptedWrites(root: string, options: RepairOptions = {}): Promise<RepairReport> {
  const names = (await subfolders(root)).filter((n) => LEFTOVER.test(n) || DELETING.test(n));
  return repairNames(root, names, options);
}

/** The same for one checkpoint folder `dest` only (what a run about to resume from it needs). */
export async function repairInterruptedWrite(dest: string, options: RepairOptions = {}): Promise<RepairReport> {
  const target = path.resolve(dest);
  const base = path.basename(target);
  const names = (await subfolders(path.dirname(target))).filter((n) => LEFTOVER.exec(n)?.[1] === base);
  return repairNames(path.dirname(target), names, options);
}

async function repairNames(root: string, names: readonly string[], options: RepairOptions): Promise<RepairReport> {
  const restored: string[] = [];
  const removed: string[] = [];
  const exists = async (p: string): Promise<boolean> => (await fsp.lstat(p).catch(() => null)) !== null;
  const remove = async (name: string): Promise<void> => {
    await fsp.rm(path.join(root, name), { recursive: true, force: true });
    removed.push(name);
  };
  const pending = new Set(names);
  for (const name of names) {
    const m = LEFTOVER.exec(name);
    if (!m || m[2] !== 'old') continue;
    const [, base, , suffix] = m;
    const dest = path.join(root, base);
    const fresh = `.${base}${TEMP_MARK}${suffix}`;
    pending.delete(name);
    pending.delete(fresh);
    if (await exists(dest)) {
      await remove(name);
      if (await exists(path.join(root, fresh))) await remove(fresh);
    } else if (await exists(path.join(root, fresh))) {
      await fsp.rename(path.join(root, fresh), dest);
      await remove(name);
      restored.push(base);
    } else {
      await fsp.rename(path.join(root, name), dest);
      restored.push(base);
    }
  }
  const staleMs = options.staleMs ?? 10 * 60_000;
  const now = (options.now ?? Date.now)();
  for (const name of pending) {
    if (now - (await newestChange(path.join(root, name))) >= staleMs) await remove(name);
  }
  if (restored.length > 0 || removed.length > 0) await syncFolder(root);
  return { restored, removed };
}

/** The latest mtime of a folder and the files in it (a long write keeps touching its files, not the folder). */
async function newestChange(dir: string): Promise<number> {
  let newest = (await fsp.stat(dir).catch(() => null))?.mtimeMs ?? 0;
  for (const entry of await fsp.readdir(dir).catch(() => [] as string[])) {
    const st = await fsp.stat(path.join(dir, entry)).catch(() => null);
    if (st) newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

/** Temp and backup folders under `root` left by interrupted writes, for a caller to inspect or remove. */
export async function listLeftoverFolders(root: string): Promise<string[]> {
  return (await subfolders(root)).filter(
    (name) => name.startsWith('.') && (name.includes(TEMP_MARK) || name.includes(BACKUP_MARK)),
  );
}
