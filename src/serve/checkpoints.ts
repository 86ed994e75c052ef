/**
 * The checkpoints a server can serve: folders under one root, named by their id. Ids are confined to that
 * root (no separators, no dot names), so no request can reach a path outside it.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

import {
  listCheckpointFolders,
  META_FORMAT_VERSION,
  parseCheckpointConfig,
  readSafetensorsHeader,
  repairInterruptedWrites,
  sha256File,
  validateMeta,
  WEIGHTS_FILE,
  type Meta,
} from '../checkpoint/index.ts';
import type { ModelConfig } from '../core/index.ts';
import { confineName, confineRealPath, type NameRule } from '../util/confine.ts';
import { XlstmError } from '../util/errors.ts';

export interface CheckpointInfo {
  readonly id: string;
  readonly meta: Meta;
  /** True for a folder without meta.json (the PyTorch reference writes none): `meta` is made up from the files. */
  readonly metaSynthesised: boolean;
  readonly config: ModelConfig;
  /** config.yaml as stored. */
  readonly configYaml: string;
  /** Bytes of every file in the folder. */
  readonly sizeBytes: number;
  readonly isDefault: boolean;
}

export interface CheckpointFilter {
  /** Part of the id, case-insensitive. */
  readonly idContains?: string | null;
  /** Only checkpoints trained from this one. */
  readonly parent?: string | null;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly totalCount: number;
  readonly hasNextPage: boolean;
  /** Pass as `after` for the next page; null on an empty page. */
  readonly endCursor: string | null;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Ids are folder names directly under the root: the shared confinement rule, with the catalogue's words. */
export const CHECKPOINT_ID: NameRule = {
  what: "a checkpoint id (a folder name of letters, digits, '.', '_' or '-')",
  hint: 'list ids with the checkpoints query.',
  maxLength: 128,
};
export const DEFAULT_FILE = 'DEFAULT';

export class CheckpointCatalogue {
  private constructor(
    readonly root: string,
    readonly defaultId: string | null,
  ) {}

  /**
   * Opens a root; the default checkpoint is the one named in `root/DEFAULT` (one line), else the only folder,
   * else none. `defaultId` overrides both.
   */
  static async open(root: string, defaultId?: string): Promise<CheckpointCatalogue> {
    const absolute = path.resolve(root);
    // A write killed halfway leaves hidden folders; a swap killed between its renames leaves no folder at all.
    const repaired = await repairInterruptedWrites(absolute);
    for (const id of repaired.restored) console.warn(`checkpoint ${id} was restored after an interrupted write.`);
    const probe = new CheckpointCatalogue(absolute, null);
    let chosen = defaultId ?? null;
    if (chosen === null) {
      const named = await fsp.readFile(path.join(absolute, DEFAULT_FILE), 'utf8').catch(() => null);
      if (named !== null && named.trim() !== '') chosen = named.trim();
      else {
        const ids = await probe.ids();
        if (ids.length === 1) chosen = ids[0];
      }
    }
    if (chosen !== null) probe.dirOf(chosen, defaultId !== undefined ? '--checkpoint' : `${DEFAULT_FILE} file`);
    return new CheckpointCatalogue(absolute, chosen);
  }

  /** The folder of a checkpoint id; `field` names the id's origin in the error. */
  dirOf(id: string, field = 'checkpoint'): string {
    confineName(id, field, CHECKPOINT_ID);
    return path.join(this.root, id);
  }

  /** Like dirOf, and the folder must hold a checkpoint that is really inside the root (no link out of it). */
  async requireDir(id: string, field = 'checkpoint'): Promise<string> {
    const dir = this.dirOf(id, field);
    if (!(await this.ids()).includes(id)) {
      throw new XlstmError(
        'CHECKPOINT_NOT_FOUND',
        `${field} expected the id of a checkpoint under ${this.root}, but got ${JSON.stringify(id)}. Hint: list ids with the checkpoints query.`,
      );
    }
    await confineRealPath(this.root, id, field, { rootName: 'the checkpoints root', hint: 'move the checkpoint folder into the root instead of linking to it.' });
    return dir;
  }

  async ids(): Promise<string[]> {
    return (await listCheckpointFolders(this.root)).filter((name) => ID.test(name));
  }

  /** A checkpoint's description, or null when there is none by that id. */
  async info(id: string): Promise<CheckpointInfo | null> {
    const dir = this.dirOf(id, 'id');
    if (!(await this.ids()).includes(id)) return null;
    const metaFile = path.join(dir, 'meta.json');
    const configFile = path.join(dir, 'config.yaml');
    const [metaText, configYaml] = await Promise.all([fsp.readFile(metaFile, 'utf8').catch(() => null), readText(configFile)]);
    const meta = metaText === null ? await synthesizeMeta(id, dir, metaFile) : validateMeta(parseJson(metaText, metaFile), metaFile);
    const { config } = parseCheckpointConfig(configYaml, configFile);
    const files = await fsp.readdir(dir, { withFileTypes: true });
    let sizeBytes = 0;
    for (const f of files) if (f.isFile()) sizeBytes += (await fsp.stat(path.join(dir, f.name))).size;
    return { id, meta, metaSynthesised: metaText === null, config, configYaml, sizeBytes, isDefault: id === this.defaultId };
  }

  /** Every readable checkpoint, newest first; unreadable folders are logged and left out. */
  async list(filter: CheckpointFilter = {}): Promise<CheckpointInfo[]> {
    const out: CheckpointInfo[] = [];
    const needle = filter.idContains?.toLowerCase();
    for (const id of await this.ids()) {
      if (needle && !id.toLowerCase().includes(needle)) continue;
      const info = await this.info(id).catch((e: unknown) => {
        console.warn(`checkpoint ${id} left out of the listing: ${(e as Error).message}`);
        return null;
      });
      if (!info) continue;
      if (filter.parent != null && info.meta.parent !== filter.parent) continue;
      out.push(info);
    }
    return out.sort((a, b) => (a.meta.created === b.meta.created ? a.id.localeCompare(b.id) : a.meta.created < b.meta.created ? 1 : -1));
  }

  /** Removes a checkpoint folder: renamed aside first, so a reader never sees half of it. */
  async remove(id: string): Promise<void> {
    const dir = await this.requireDir(id, 'id');
    const aside = path.join(this.root, `.deleting-${id}-${process.pid}`);
    await fsp.rename(dir, aside);
    await fsp.rm(aside, { recursive: true, force: true });
  }
}

/** One page of `items` after the item whose id is `after`; cursors are the ids themselves, base64url-wrapped. */
export function pageOf<T extends { readonly id: string }>(items: readonly T[], first: number, after?: string | null): Page<T> {
  let start = 0;
  if (after != null) {
    const id = Buffer.from(after, 'base64url').toString('utf8');
    const at = items.findIndex((item) => item.id === id);
    if (at < 0) {
      throw new XlstmError('INVALID_INPUT', `after expected a cursor from an earlier page, but got ${JSON.stringify(after)}. Hint: start again without after.`);
    }
    start = at + 1;
  }
  const slice = items.slice(start, start + first);
  const last = slice.at(-1);
  return {
    items: slice,
    totalCount: items.length,
    hasNextPage: start + first < items.length,
    endCursor: last ? Buffer.from(last.id, 'utf8').toString('base64url') : null,
  };
}

async function readText(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new XlstmError('CHECKPOINT_CORRUPT', `${file} expected to exist, but reading it failed: ${(e as Error).message}`, { cause: e });
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new XlstmError('CHECKPOINT_CORRUPT', `${file} expected JSON, but got: ${(e as Error).message}`, { cause: e });
  }
}

/** The meta loadCheckpoint makes up for a folder without meta.json, from the weights file alone. */
async function synthesizeMeta(id: string, dir: string, metaFile: string): Promise<Meta> {
  const weights = path.join(dir, WEIGHTS_FILE);
  const [header, sha256, stat] = await Promise.all([readSafetensorsHeader(weights), sha256File(weights), fsp.stat(weights)]);
  return validateMeta(
    {
      format_version: META_FORMAT_VERSION,
      id,
      parent: null,
      run_id: null,
      step: 0,
      tokens_seen: 0,
      train_loss: null,
      val_loss: null,
      created: stat.mtime.toISOString(),
      sha256,
      dtype: header.tensors.values().next().value?.dtype ?? 'F32',
    },
    metaFile,
  );
}
