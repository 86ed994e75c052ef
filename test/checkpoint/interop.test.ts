// Checkpoints cross to and from the PyTorch reference (shared/reference/xlstm_ref.py), whose
// safetensors reader/writer is an independent implementation of the format.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from '../../src/checkpoint/index.ts';
import { f32ToF16Bits } from '../../src/checkpoint/half.ts';
import { Rng } from '../../src/util/rng.ts';
import { seededTensors, TINY, TINY_OBJECT, TOKENIZER_JSON } from './tiny.ts';

const PYTHON = '/usr/bin/python3';
const REFERENCE = path.resolve(import.meta.dirname, '../../../shared/reference');
const haveTorch =
  existsSync(path.join(REFERENCE, 'xlstm_ref.py')) &&
  spawnSync(PYTHON, ['-c', 'import torch, yaml, numpy'], { stdio: 'ignore' }).status === 0;

function python(script: string, ...args: string[]): unknown {
  const out = execFileSync(PYTHON, ['-c', script, ...args], {
    encoding: 'utf-8',
    env: { ...process.env, PYTHONPATH: REFERENCE, OMP_NUM_THREADS: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'xlstm-interop-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Dump = Record<string, { shape: number[]; values: number[] }>;

describe.skipIf(!haveTorch)('interop with the PyTorch reference', () => {
  it('loads a checkpoint written by `xlstm_ref.py init`, and one without head.weight as tied', async () => {
    const tinyYaml = path.join(root, 'TINY.yaml');
    await writeFile(tinyYaml, `model: ${JSON.stringify(TINY_OBJECT)}\n`);
    const refDir = path.join(root, 'ref');
    const untiedDir = path.join(root, 'ref-headless');
    // One Python start-up: the reference's init command (xlstm_ref.py init DIR --seed 0 --config
    // TINY.yaml), then its own reader dumps what it wrote, and a second folder drops head.weight.
    const dump = python(
      `import sys, json, os, shutil, contextlib, io, xlstm_ref as X
src, dst, cfg = sys.argv[1], sys.argv[2], sys.argv[3]
with contextlib.redirect_stdout(io.StringIO()):
    assert X.main(["init", src, "--seed", "0", "--config", cfg]) == 0
t = X.read_safetensors(os.path.join(src, "model.safetensors"))
os.makedirs(dst)
shutil.copy(os.path.join(src, "config.yaml"), dst)
X.write_safetensors(os.path.join(dst, "model.safetensors"), {k: v for k, v in t.items() if k != "head.weight"})
print(json.dumps({k: {"shape": list(v.shape), "values": v.flatten().tolist()} for k, v in t.items()}))`,
      refDir,
      untiedDir,
      tinyYaml,
    ) as Dump;

    const loaded = await loadCheckpoint(refDir);
    expect(loaded.config).toEqual(TINY);
    expect(loaded.metaSynthesised).toBe(true);
    expect(loaded.tokenizerJson).toBeNull();
    expect([...loaded.tensors.keys()].sort()).toEqual(Object.keys(dump).sort());
    for (const [name, { shape, values }] of Object.entries(dump)) {
      expect(loaded.tensors.get(name)!.shape).toEqual(shape);
      expect(Array.from(loaded.tensors.get(name)!.data), name).toEqual(values);
    }

    const tied = await loadCheckpoint(untiedDir);
    expect(tied.config.tie_weights).toBe(true);
    expect(tied.tensors.has('head.weight')).toBe(false);
    expect(Array.from(tied.tensors.get('embedding.weight')!.data)).toEqual(dump['embedding.weight'].values);
  });

  it('writes checkpoints (F32, F16, tied) that the reference loads with strict names, and F16 bits equal numpy', async () => {
    const tensors = seededTensors(TINY, 3);
    const dirs = { f32: path.join(root, 'ours-f32'), f16: path.join(root, 'ours-f16'), tied: path.join(root, 'ours-tied') };
    await saveCheckpoint(dirs.f32, { config: TINY, tensors, tokenizerJson: TOKENIZER_JSON, meta: {} });
    await saveCheckpoint(dirs.f16, { config: TINY, tensors, tokenizerJson: TOKENIZER_JSON, meta: {}, dtype: 'F16' });
    await saveCheckpoint(dirs.tied, { config: { ...TINY, tie_weights: true }, tensors: seededTensors(TINY, 3, false), tokenizerJson: '{}', meta: {} });

    // Float32 values whose rounding to half is delicate: ties, subnormals, overflow, tiny.
    const rng = new Rng(11);
    const probe = Float32Array.from([
      1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1e-9, -0,
      ...Array.from({ length: 4000 }, () => rng.normal() * 2 ** (rng.int(40) - 28)),
    ]);
    const probeFile = path.join(root, 'probe.f32');
    await writeFile(probeFile, Buffer.from(probe.buffer));

    const result = python(
      `import sys, json, torch, numpy as np, xlstm_ref as X
out = {}
for key, d in zip(("f32", "f16", "tied"), sys.argv[1:4]):
    m = X.load_checkpoint(d)  # strict names and shapes
    with torch.no_grad():
        logits = m(torch.tensor([[1, 2, 3]]), form="recurrent")
    out[key] = {"tie": m.cfg.tie_weights, "finite": bool(torch.isfinite(logits).all()),
                "state": {k: v.flatten().tolist() for k, v in m.state_dict().items()}}
with np.errstate(over="ignore"):  # 65520 rounds to inf on purpose
    out["f16bits"] = np.fromfile(sys.argv[4], dtype="<f4").astype(np.float16).view(np.uint16).tolist()
print(json.dumps(out))`,
      dirs.f32,
      dirs.f16,
      dirs.tied,
      probeFile,
    ) as Record<'f32' | 'f16' | 'tied', { tie: boolean; finite: boolean; state: Record<string, number[]> }> & { f16bits: number[] };

    for (const key of ['f32', 'f16', 'tied'] as const) expect(result[key].finite).toBe(true);
    expect(result.tied.tie).toBe(true);
    for (const [name, t] of tensors) {
      expect(result.f32.state[name], name).toEqual(Array.from(t.data));
      // The reference widens F16 exactly, so it must see our own decoding of our own encoding.
      const halves = (await loadCheckpoint(dirs.f16)).tensors.get(name)!.data;
      expect(result.f16.state[name], name).toEqual(Array.from(halves));
    }
    expect(result.tied.state['head.weight']).toEqual(result.tied.state['embedding.weight']);
    expect(Array.from(probe, (x) => f32ToF16Bits(x))).toEqual(result.f16bits);
  });
});
