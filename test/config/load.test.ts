import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applyOverrides,
  DEFAULT_LLM_CONFIG,
  loadLlmConfig,
  parseLlmConfig,
  validateLlmConfig,
  type LlmConfig,
} from '../../src/config/index.ts';
import { isXlstmError } from '../../src/util/errors.ts';

function configError(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    expect(isXlstmError(e, 'INVALID_CONFIG'), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected INVALID_CONFIG, but nothing was thrown');
}

describe('config/llm.yaml', () => {
  const config = loadLlmConfig('config/llm.yaml');

  it('holds the reference model section', () => {
    expect(config.model).toEqual({
      vocab_size: 50258,
      num_layers: 8,
      signature: [7, 1],
      inp_dim: 64,
      head_dim: 16,
      head_num: 4,
      p_factor: [2, 1.3333333],
      ker_size: 4,
    });
    expect(config.data.root).toBe('data/corpus');
  });

  it('equals the built-in defaults key for key', () => {
    expect(config).toEqual(DEFAULT_LLM_CONFIG);
  });

  it('is deeply frozen', () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.trainer.checkpoint)).toBe(true);
    expect(Object.isFrozen(config.inference.prompts)).toBe(true);
    expect(Object.isFrozen(config.model.signature)).toBe(true);
    expect(() => {
      (config.trainer as { devices: number }).devices = 3;
    }).toThrow(TypeError);
  });
});

describe('defaults', () => {
  it('fills every key of an empty file', () => {
    expect(parseLlmConfig('', 'empty.yaml')).toEqual(DEFAULT_LLM_CONFIG);
    expect(parseLlmConfig('# nothing\n', 'empty.yaml')).toEqual(DEFAULT_LLM_CONFIG);
  });

  it('merges a partial file key by key, model keys included, and treats an empty section as defaults', () => {
    const c = parseLlmConfig('trainer:\n  devices: 2\n  checkpoint:\n    dir: out\nmodel:\n  inp_dim: 32\ninference:\n', 'p.yaml');
    expect(c.trainer).toEqual({ ...DEFAULT_LLM_CONFIG.trainer, devices: 2, checkpoint: { ...DEFAULT_LLM_CONFIG.trainer.checkpoint, dir: 'out' } });
    expect(c.model).toEqual({ ...DEFAULT_LLM_CONFIG.model, inp_dim: 32 });
    expect(c.inference).toEqual(DEFAULT_LLM_CONFIG.inference);
    expect(c.optimizer).toEqual(DEFAULT_LLM_CONFIG.optimizer);
  });

  it('reads YAML 1.2 numbers such as 3e-4 and null limits', () => {
    const c = parseLlmConfig('optimizer:\n  lr: 3e-4\ntrainer:\n  max_steps: null\n  max_epochs: 2\n', 'n.yaml');
    expect(c.optimizer.lr).toBe(3e-4);
    expect(c.trainer.max_steps).toBeNull();
    expect(c.trainer.max_epochs).toBe(2);
  });
});

// [label, yaml text, substring the message must contain, line the message must point to (or null)]
const ERRORS: Array<[string, string, string, number | null]> = [
  ['an impossible integer', 'trainer:\n  devices: 0\n', 'bad.yaml: trainer.devices expected an integer >= 1, but got 0', 2],
  ['a string where an integer goes', 'data:\n  batch_size: "8"\n', 'data.batch_size expected an integer >= 1, but got "8"', 2],
  ['a fractional integer', 'data:\n  max_length: 2.5\n', 'data.max_length expected an integer >= 1, but got 2.5', 2],
  ['a negative seed', 'seed_everything: -1\n', 'seed_everything expected an integer in [0, 4294967295], but got -1', 1],
  ['a zero learning rate', 'optimizer:\n  lr: 0\n', 'optimizer.lr expected a number > 0, but got 0', 2],
  ['betas of the wrong length', 'optimizer:\n  betas: [0.9]\n', 'optimizer.betas expected a list of two numbers in [0, 1), but got [0.9]', 2],
  ['a beta of 1', 'optimizer:\n  betas: [0.9, 1]\n', 'optimizer.betas expected a list of two numbers in [0, 1)', 2],
  ['a val_split of 1', 'data:\n  val_split: 1\n', 'data.val_split expected a number in [0, 1), but got 1', 2],
  ['a min_lr_ratio above 1', 'trainer:\n  min_lr_ratio: 1.5\n', 'trainer.min_lr_ratio expected a number in [0, 1], but got 1.5', 2],
  ['an unknown schedule', 'trainer:\n  lr_schedule: step\n', 'trainer.lr_schedule expected one of constant, cosine, linear, but got "step"', 2],
  ['an unknown tokenizer', 'tokenizer:\n  name: llama\n', 'tokenizer.name expected one of gpt2, but got "llama"', 2],
  ['a boolean that is a string', 'trainer:\n  checkpoint:\n    save_last: "yes"\n', 'trainer.checkpoint.save_last expected true or false, but got "yes"', 3],
  ['an empty checkpoint dir', 'trainer:\n  checkpoint:\n    dir: ""\n', 'trainer.checkpoint.dir expected a non-empty string, but got ""', 3],
  ['prompts that are not strings', 'inference:\n  prompts: [hello, 3]\n', 'inference.prompts expected a list of strings, but got ["hello",3]', 2],
  ['a negative temperature', 'inference:\n  temperature: -1\n', 'inference.temperature expected a number >= 0, but got -1', 2],
  ['a section that is a list', 'trainer: [1, 2]\n', 'trainer expected a mapping with keys max_steps, max_epochs', 1],
  ['a top level that is a list', '- 1\n- 2\n', 'bad.yaml: expected a mapping with sections seed_everything, model', null],
  ['an unknown top-level key', 'sed_everything: 3\n', 'bad.yaml: the top level has unknown key "sed_everything" (line 1). Hint: allowed keys are seed_everything, model, tokenizer, optimizer, data, trainer, inference; did you mean "seed_everything"?', 1],
  ['an unknown nested key', 'trainer:\n  devices: 1\n  devcies: 2\n', 'trainer has unknown key "devcies" (line 3). Hint: allowed keys are max_steps, max_epochs, devices,', 3],
  ['an unknown checkpoint key', 'trainer:\n  checkpoint:\n    keep: 3\n', 'trainer.checkpoint has unknown key "keep" (line 3). Hint: allowed keys are save_last, save_top_k, every_n_steps, dir.', 3],
  ['an impossible model value', 'model:\n  vocab_size: 64\n  inp_dim: 0\n', 'bad.yaml: model.inp_dim expected an integer >= 1, but got 0', 3],
  ['a wrong model list', 'model:\n  signature: [1]\n', 'bad.yaml: model.signature expected a list of two numbers, but got [1]', 2],
  ['an unknown model key', 'model:\n  heads: 4\n', 'bad.yaml: model has unknown key heads', 2],
  ['no limit on training', 'trainer:\n  max_steps: null\n  max_epochs: null\n', 'trainer.max_steps expected an integer >= 1 when trainer.max_epochs is null', 2],
  ['top-k checkpoints without validation', 'data:\n  val_split: 0\n', 'trainer.checkpoint.save_top_k expected 0 when data.val_split is 0', null],
  ['YAML that does not parse', 'trainer:\n  devices: [1, 2\n', 'bad.yaml: expected valid YAML, but got', null],
  ['a duplicated key', 'trainer:\n  devices: 1\n  devices: 2\n', 'bad.yaml: expected valid YAML, but got Map keys must be unique', null],
  ['an unknown tag', 'trainer:\n  devices: !!python/int 2\n', 'bad.yaml: expected valid YAML, but got', null],
];

describe('errors', () => {
  it.each(ERRORS)('rejects %s', (_label, text, expected, line) => {
    const message = configError(() => parseLlmConfig(text, 'bad.yaml'));
    expect(message.startsWith('bad.yaml')).toBe(true);
    expect(message).toContain(expected);
    if (line !== null) expect(message).toContain(`(line ${line})`);
  });

  it('names the line of a YAML syntax error', () => {
    expect(configError(() => parseLlmConfig('a: 1\nb: [1, 2\nc: 3\n', 'bad.yaml'))).toMatch(/line \d+/);
  });

  it('reports a missing file', () => {
    expect(configError(() => loadLlmConfig('config/nope.yaml'))).toContain(
      'config/nope.yaml expected a readable YAML config file, but nothing is there',
    );
  });
});

describe('overrides', () => {
  it('apply KEY=VALUE strings over the file, values read as YAML', () => {
    const c = loadLlmConfig('config/llm.yaml', {
      overrides: ['trainer.devices=2', 'optimizer.betas=[0.8, 0.9]', 'trainer.max_epochs=null', 'inference.prompts=[hello, "two words"]'],
    });
    expect(c.trainer.devices).toBe(2);
    expect(c.optimizer.betas).toEqual([0.8, 0.9]);
    expect(c.trainer.max_epochs).toBeNull();
    expect(c.inference.prompts).toEqual(['hello', 'two words']);
  });

  it('accept a map of dotted keys (CLI flags), string values read as YAML', () => {
    const c = parseLlmConfig('trainer:\n  devices: 4\n', 'f.yaml', {
      overrides: { 'trainer.devices': '2', 'data.root': 'other/text', 'model.inp_dim': 32, 'trainer.checkpoint.save_last': 'false' },
    });
    expect(c.trainer.devices).toBe(2);
    expect(c.data.root).toBe('other/text');
    expect(c.model.inp_dim).toBe(32);
    expect(c.trainer.checkpoint.save_last).toBe(false);
  });

  it('are validated the same way and named in the message instead of a line', () => {
    const message = configError(() => loadLlmConfig('config/llm.yaml', { overrides: ['trainer.devices=0'] }));
    expect(message).toBe('config/llm.yaml, override trainer.devices=0: trainer.devices expected an integer >= 1, but got 0.');
    expect(configError(() => loadLlmConfig('config/llm.yaml', { overrides: { 'model.head_num': '0' } }))).toContain(
      'config/llm.yaml, override model.head_num=0: model.head_num expected an integer >= 1, but got 0',
    );
    expect(configError(() => loadLlmConfig('config/llm.yaml', { overrides: ['trainer.gpus=2'] }))).toContain(
      'override trainer.gpus=2: trainer has unknown key "gpus". Hint: allowed keys are',
    );
  });

  it.each<[string, string[], string]>([
    ['no equals sign', ['trainer.devices'], 'override expected KEY=VALUE such as trainer.devices=2, but got "trainer.devices"'],
    ['a malformed key', ['trainer..devices=2'], 'key expected a dotted path of names'],
    ['a prototype key', ['__proto__.polluted=1'], 'key expected a dotted path of names'],
    ['a path through a number', ['trainer.devices.count=2'], 'trainer.devices expected a mapping to set count in, but got 1'],
    ['a value that is not YAML', ['optimizer.betas=[0.9'], 'value expected YAML'],
  ])('reject %s', (_label, overrides, expected) => {
    expect(configError(() => loadLlmConfig('config/llm.yaml', { overrides }))).toContain(expected);
  });

  it('applyOverrides returns a new raw object, leaves its input alone, and validates like a file', () => {
    const raw = { trainer: { devices: 1 } };
    const next = applyOverrides(raw, ['trainer.devices=3', 'data.batch_size=4']);
    expect(raw).toEqual({ trainer: { devices: 1 } });
    const c: LlmConfig = validateLlmConfig(next, 'cli');
    expect(c.trainer.devices).toBe(3);
    expect(c.data.batch_size).toBe(4);
    expect(configError(() => validateLlmConfig(applyOverrides(raw, ['trainer.devices=-1']), 'cli'))).toContain(
      'cli: trainer.devices expected an integer >= 1, but got -1',
    );
  });

  it('do not let the caller mutate the result through an override value', () => {
    const prompts = ['x'];
    const c = parseLlmConfig('', 'o.yaml', { overrides: { 'inference.prompts': prompts } });
    prompts.push('y');
    expect(c.inference.prompts).toEqual(['x']);
    expect(Object.isFrozen(prompts)).toBe(false);
  });
});

describe('files on disk', () => {
  it('loads a file by path and names that path in errors', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'xlstm-config-'));
    try {
      const file = path.join(dir, 'run.yaml');
      await writeFile(file, 'seed_everything: 7\ntrainer:\n  warmup_steps: -5\n');
      expect(configError(() => loadLlmConfig(file))).toBe(
        `${file}: trainer.warmup_steps expected an integer >= 0, but got -5 (line 3).`,
      );
      await writeFile(file, 'seed_everything: 7\n');
      expect(loadLlmConfig(file).seed_everything).toBe(7);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
