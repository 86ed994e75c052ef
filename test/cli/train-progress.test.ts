import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cli/override-flags.ts';
import { formatDuration, ProgressPrinter } from '../../src/cli/train-progress.ts';
import type { RunUpdate } from '../../src/train/index.ts';

const step = (n: number, max = 4): RunUpdate => ({
  runId: 'r',
  phase: 'RUNNING',
  error: null,
  event: { kind: 'step', step: n, maxSteps: max, loss: 2.5, lr: 1e-3, gradNorm: 0.5, clipped: false, tokensPerSecond: 1000, tokensSeen: 100 * n, epoch: 0 },
});

function capture(isTTY: boolean): { out: { write(t: string): void; isTTY: boolean; columns: number }; text: () => string } {
  let text = '';
  return { out: { write: (t: string) => void (text += t), isTTY, columns: 100 }, text: () => text };
}

describe('ProgressPrinter', () => {
  it('should print plain lines every log_every_n_steps (and the first and last step) when not on a terminal', () => {
    const { out, text } = capture(false);
    let clock = 0;
    const p = new ProgressPrinter(out, 2, () => (clock += 10));
    [1, 2, 3, 4].forEach((n) => p.update(step(n)));
    p.update({ runId: 'r', phase: 'SUCCEEDED', error: null, event: null });
    const lines = text().trim().split('\n');
    expect(lines.map((l) => l.split(' ')[1])).toEqual(['1/4', '2/4', '4/4', 'r']);
    expect(lines[1]).toBe('step 2/4 loss 2.5000 lr 1.00e-3 grad 0.500 1000 tok/s left 20s');
    expect(lines[3]).toBe('run r SUCCEEDED');
  });

  it('should redraw one bar in place on a terminal and move off it for other lines', () => {
    const { out, text } = capture(true);
    const p = new ProgressPrinter(out, 10, () => 0);
    p.update(step(1));
    p.update(step(2));
    p.update({ runId: 'r', phase: 'RUNNING', error: null, event: { kind: 'eval', step: 2, valLoss: 1.25, samples: ['ab'] } });
    const t = text();
    expect(t.startsWith('\r[######..................] step 1/4')).toBe(true);
    expect(t).toContain('\r[############............] step 2/4');
    expect(t).toContain('\nstep 2 val_loss 1.2500\n  sample 1: "ab"\n');
  });

  it('should print a failed run with its reason', () => {
    const { out, text } = capture(false);
    new ProgressPrinter(out, 1).update({ runId: 'r', phase: 'FAILED', event: null, error: { code: 'INVALID_CONFIG', message: 'training step 3 expected a finite loss, but got NaN.' } });
    expect(text()).toBe('run r FAILED: training step 3 expected a finite loss, but got NaN.\n');
  });

  it.each([
    [5, '5s'],
    [65, '1m05s'],
    [3725, '1h02m'],
    [NaN, '?'],
  ])('should format %s seconds as %s', (s, want) => expect(formatDuration(s)).toBe(want));
});

describe('parseFlags', () => {
  const known = { config: 'string', help: 'boolean' } as const;

  it('should take dotted flags as config overrides in order', () => {
    const parsed = parseFlags(['--config', 'a.yaml', '--trainer.devices', '2', '--optimizer.lr=-1e-3', '--optimizer.betas', '[0.9, 0.99]'], known, 'train');
    expect(parsed.flags.get('config')).toBe('a.yaml');
    expect(parsed.overrides).toEqual(['trainer.devices=2', 'optimizer.lr=-1e-3', 'optimizer.betas=[0.9, 0.99]']);
  });

  it.each([
    [['--conifg', 'x'], /train expected one of the flags --config, --help or a config override such as --trainer.devices 2, but got --conifg/],
    [['--trainer.devices'], /--trainer.devices expected a value, but got nothing/],
    [['stray'], /train expected --flags, but got "stray"/],
  ])('should refuse %j', (argv, message) => {
    expect(() => parseFlags(argv, known, 'train')).toThrow(message);
  });
});
