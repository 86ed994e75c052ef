/** Runs the PyTorch peer (shared/reference/bench_ref.py) at both thread settings and keeps the better figure of each. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PeerFigures {
  readonly torch: string;
  /** tokens/s by batch size */
  readonly decode: Record<number, number>;
  /** tokens/s by sequence length */
  readonly train: Record<number, number>;
  readonly settings: Record<string, string>;
}

interface PeerJson {
  torch: string;
  decode: { batch: number; tokens_per_s: number }[];
  train: { seq_len: number; tokens_per_s: number }[];
}

export const PEER_SCRIPT = process.env.XLSTM_REFERENCE_BENCH ?? path.resolve('../shared/reference/bench_ref.py');
const PYTHON = process.env.XLSTM_PYTHON ?? '/usr/bin/python3';

export function runPeer(extraArgs: string[] = []): PeerFigures {
  const dir = mkdtempSync(path.join(tmpdir(), 'xlstm-peer-'));
  try {
    const runs = [
      { label: '--threads 1', args: ['--threads', '1'], env: {} },
      { label: '--threads 2, OMP_WAIT_POLICY=PASSIVE', args: ['--threads', '2'], env: { OMP_WAIT_POLICY: 'PASSIVE' } },
    ].map((r, j) => {
      const out = path.join(dir, `peer${j}.json`);
      execFileSync(PYTHON, [PEER_SCRIPT, ...r.args, ...extraArgs, '--json', out], {
        env: { ...process.env, ...r.env },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      return { label: r.label, json: JSON.parse(readFileSync(out, 'utf8')) as PeerJson };
    });
    const decode: Record<number, number> = {};
    const train: Record<number, number> = {};
    const settings: Record<string, string> = {};
    for (const { label, json } of runs) {
      for (const d of json.decode ?? []) {
        if (!(decode[d.batch] >= d.tokens_per_s)) {
          decode[d.batch] = d.tokens_per_s;
          settings[`decode B=${d.batch}`] = label;
        }
      }
      for (const t of json.train ?? []) {
        if (!(train[t.seq_len] >= t.tokens_per_s)) {
          train[t.seq_len] = t.tokens_per_s;
          settings[`train T=${t.seq_len}`] = label;
        }
      }
    }
    return { torch: runs[0].json.torch, decode, train, settings };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
