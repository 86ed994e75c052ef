import { describe, expect, it } from 'vitest';
import { SCHEDULE_NAMES, makeSchedule } from '../../src/train/schedule.ts';

// lr 0.1, 10 warm-up steps, decay over steps 10..110 to 0.1 * lr = 0.01.
const options = { lr: 0.1, warmupSteps: 10, maxSteps: 110, minLrRatio: 0.1 };

describe('makeSchedule', () => {
  // Hand-computed: warm-up lr*(s+1)/10; decay progress p = (s-10)/100;
  // cosine 0.1*(0.1 + 0.9*0.5*(1+cos(pi p))), linear 0.1*(1 - 0.9 p).
  // At p = 0.25: cos(pi/4) = 0.70710678..., so cosine = 0.1*(0.1 + 0.45*1.70710678...) = 0.0868198052...
  it.each([
    ['constant', 0, 0.01],
    ['constant', 4, 0.05],
    ['constant', 9, 0.1],
    ['constant', 10, 0.1],
    ['constant', 110, 0.1],
    ['constant', 5000, 0.1],
    ['cosine', 0, 0.01],
    ['cosine', 9, 0.1],
    ['cosine', 10, 0.1],
    ['cosine', 35, 0.0868198052],
    ['cosine', 60, 0.055],
    ['cosine', 110, 0.01],
    ['cosine', 5000, 0.01],
    ['linear', 0, 0.01],
    ['linear', 10, 0.1],
    ['linear', 35, 0.0775],
    ['linear', 60, 0.055],
    ['linear', 85, 0.0325],
    ['linear', 110, 0.01],
    ['linear', 111, 0.01],
  ])('%s at step %d is %f', (name, step, lr) => {
    expect(makeSchedule(name, options)(step)).toBeCloseTo(lr, 10);
  });

  it('starts at the peak without warm-up and sits at the floor when decay has no room', () => {
    expect(makeSchedule('cosine', { ...options, warmupSteps: 0 })(0)).toBe(0.1);
    const noDecay = makeSchedule('linear', { ...options, warmupSteps: 10, maxSteps: 10 });
    expect(noDecay(9)).toBeCloseTo(0.1, 12);
    expect(noDecay(10)).toBeCloseTo(0.01, 12);
  });

  it('never rises after warm-up and never leaves [min, peak]', () => {
    for (const name of SCHEDULE_NAMES) {
      const s = makeSchedule(name, options);
      for (let step = 10; step < 200; step++) {
        expect(s(step + 1)).toBeLessThanOrEqual(s(step));
        expect(s(step)).toBeGreaterThanOrEqual(0.01 - 1e-15);
        expect(s(step)).toBeLessThanOrEqual(0.1);
      }
    }
  });

  it.each([
    ['an unknown name', 'exponential', options, /trainer.lr_schedule expected one of constant, cosine, linear, but got "exponential"/],
    ['warm-up past max_steps', 'cosine', { ...options, warmupSteps: 200 }, /trainer.warmup_steps expected an integer in \[0, max_steps = 110\], but got 200/],
    ['a zero learning rate', 'cosine', { ...options, lr: 0 }, /optimizer.lr expected a positive finite number, but got 0/],
    ['min_lr_ratio above 1', 'linear', { ...options, minLrRatio: 1.5 }, /trainer.min_lr_ratio expected a number in \[0, 1\], but got 1.5/],
    ['zero max_steps', 'linear', { ...options, maxSteps: 0, warmupSteps: 0 }, /trainer.max_steps expected a positive integer, but got 0/],
  ])('rejects %s with INVALID_CONFIG', (_case, name, opts, message) => {
    expect(() => makeSchedule(name, opts)).toThrow(message);
    expect(() => makeSchedule(name, opts)).toThrowError(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  it('rejects a negative or fractional step', () => {
    const s = makeSchedule('cosine', options);
    expect(() => s(-1)).toThrow(/schedule step expected a non-negative integer, but got -1/);
    expect(() => s(1.5)).toThrow(/but got 1.5/);
  });
});
