/** What every command needs first: the tfjs backend (XLSTM_BACKEND or the first available), logged once. */
import { selectBackend, type BackendInfo } from '../backend/select.ts';

export async function startBackend(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<BackendInfo> {
  const info = await selectBackend(process.env.XLSTM_BACKEND);
  log(`backend: ${info.name} (${info.detail})`);
  return info;
}
