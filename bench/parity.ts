/**
 * `npm run parity`: writes checkpoints with `xlstm init` for three configs and compares
 * `xlstm logits` (every form) with the PyTorch reference's `xlstm_ref.py logits` on the same folder.
 * Prints a table and exits non-zero when any max relative difference exceeds 1e-4.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const REFERENCE = process.env.XLSTM_REFERENCE ?? path.resolve('../shared/reference/xlstm_ref.py');
const PYTHON = process.env.XLSTM_PYTHON ?? '/usr/bin/python3';
const TOLERANCE = 1e-4;

const cases = [
  { name: 'reference (llm.yaml)', config: 'config/llm.yaml', ids: '464,2068,7586,21831,18045,625,262,16931,3290,13' },
  { name: 'tiny', config: 'bench/parity/tiny.yaml', ids: '1,5,9,33,2,7,60,11,4,3,22,19,63,0' },
  { name: 'ker_size 0, signature [2,3]', config: 'bench/parity/noconv.yaml', ids: '17,400,3,99,511,0,256,1,2,3,4,5' },
];
const forms = ['parallel', 'chunkwise', 'recurrent'] as const;

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

let worst = 0;
const dir = mkdtempSync(path.join(tmpdir(), 'xlstm-parity-'));
try {
  for (const [n, c] of cases.entries()) {
    const out = path.join(dir, `case${n}`);
    run('node', ['bin/xlstm.js', 'init', '--config', c.config, '--seed', String(n + 1), '--out', out]);
    const ref = JSON.parse(run(PYTHON, [REFERENCE, 'logits', out, '--ids', c.ids, '--dtype', 'float64'])) as { logits: number[][] };
    const want = ref.logits[0];
    const scale = Math.max(...want.map(Math.abs));
    for (const form of forms) {
      const ours = JSON.parse(run('node', ['bin/xlstm.js', 'logits', '--checkpoint', out, '--ids', c.ids, '--form', form])) as { shape: number[]; last: number[] };
      let err = 0;
      ours.last.forEach((v, j) => (err = Math.max(err, Math.abs(v - want[j]))));
      const rel = err / scale;
      worst = Math.max(worst, rel);
      console.log(`${c.name.padEnd(30)} ${form.padEnd(10)} shape [${ours.shape.join(', ')}]  max |diff| ${err.toExponential(2)}  relative ${rel.toExponential(2)}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`worst relative difference ${worst.toExponential(2)} (tolerance ${TOLERANCE})`);
if (!(worst <= TOLERANCE)) process.exitCode = 1;
