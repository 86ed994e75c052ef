/** The configs query's view of config/*.yaml: each file raw, validated by the config layer, or its error. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

import type { ConfigEntry, ConfigSource } from '../api/schema/index.ts';
import { parseLlmConfig } from '../config/index.ts';
import { confineName, type NameRule } from '../util/confine.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Config names are file names under the config folder, without .yaml. */
export const CONFIG_NAME: NameRule = { what: 'a config name (a file under the config folder, without .yaml)', hint: 'list names with the configs query.' };

export function configFolderSource(dir: string): ConfigSource {
  const read = async (name: string): Promise<ConfigEntry | null> => {
    const file = path.join(dir, `${confineName(name, 'name', CONFIG_NAME)}.yaml`);
    const yaml = await fsp.readFile(file, 'utf8').catch(() => null);
    if (yaml === null) return null;
    try {
      const values = parseLlmConfig(yaml, file) as unknown as Record<string, unknown>;
      return { name, path: file, yaml, values, errors: [] };
    } catch (e) {
      return { name, path: file, yaml, values: null, errors: [(e as Error).message] };
    }
  };
  return {
    async list() {
      const files = await fsp.readdir(dir).catch(() => [] as string[]);
      const names = files.filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length)).filter((n) => NAME.test(n) && !n.includes('..')).sort();
      const entries = await Promise.all(names.map(read));
      return entries.filter((e): e is ConfigEntry => e !== null);
    },
    get: read,
  };
}
