/** What every resolver receives: the serving layer, the config files, and facts about the running server. */
import type { Serving } from '../../serve/index.ts';
import type { ConfigSource } from './configs/config.source.ts';

export const SERVER_PHASES = ['starting', 'serving', 'draining', 'stopped'] as const;
export type ServerPhaseName = (typeof SERVER_PHASES)[number];

export interface ServerInfo {
  readonly version: string;
  /** The tfjs backend in use. */
  backend(): string;
  /** What runs under it: the GPU adapter, the native package or the wasm features. */
  backendDetail(): string;
  uptimeSeconds(): number;
  phase(): ServerPhaseName;
}

export interface ApiContext {
  readonly serving: Serving;
  readonly configs: ConfigSource;
  readonly server: ServerInfo;
}
