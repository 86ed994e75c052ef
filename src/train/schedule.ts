/** Learning-rate schedules as pure functions of the optimizer step, looked up by name. */
import { XlstmError } from '../util/errors.ts';

/** The learning rate for the update with 0-based index `step`. */
export type Schedule = (step: number) => number;

export interface ScheduleOptions {
  /** Peak learning rate (optimizer.lr). */
  readonly lr: number;
  /** Updates spent ramping up linearly from lr/warmupSteps to lr (trainer.warmup_steps). */
  readonly warmupSteps: number;
  /** Updates in the whole run (trainer.max_steps, or epochs x batches per epoch): decay ends here. */
  readonly maxSteps: number;
  /** The decay floor as a fraction of lr (trainer.min_lr_ratio). */
  readonly minLrRatio: number;
}

/** The shape after warm-up: progress p in [0, 1] through the decay phase -> multiplier in [minLrRatio, 1]. */
type Decay = (p: number, minLrRatio: number) => number;

const DECAYS = {
  constant: () => 1,
  cosine: (p, r) => r + (1 - r) * 0.5 * (1 + Math.cos(Math.PI * p)),
  linear: (p, r) => 1 - (1 - r) * p,
} satisfies Record<string, Decay>;

export type ScheduleName = keyof typeof DECAYS;
export const SCHEDULE_NAMES = Object.keys(DECAYS) as ScheduleName[];

/**
 * Linear warm-up, then the named decay to minLrRatio * lr at maxSteps, then flat. Warm-up uses
 * (step + 1) / warmupSteps so the very first update already moves (step 0 is not lr 0) and the
 * last warm-up step reaches lr exactly. `constant` ignores minLrRatio after warm-up.
 */
export function makeSchedule(name: string, options: ScheduleOptions): Schedule {
  if (!Object.hasOwn(DECAYS, name)) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `trainer.lr_schedule expected one of ${SCHEDULE_NAMES.join(', ')}, but got ${JSON.stringify(name)}.`,
    );
  }
  checkOptions(options);
  const decay: Decay = DECAYS[name as ScheduleName];
  const { lr, warmupSteps, maxSteps, minLrRatio } = options;
  const decaySteps = maxSteps - warmupSteps;
  return (step: number): number => {
    if (!Number.isInteger(step) || step < 0) {
      throw new XlstmError('INVALID_INPUT', `schedule step expected a non-negative integer, but got ${step}.`);
    }
    if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
    const p = decaySteps === 0 ? 1 : Math.min(1, (step - warmupSteps) / decaySteps);
    return lr * decay(p, minLrRatio);
  };
}

function checkOptions(o: ScheduleOptions): void {
  const fail = (key: string, expected: string, got: unknown): never => {
    throw new XlstmError('INVALID_CONFIG', `${key} expected ${expected}, but got ${String(got)}.`);
  };
  if (!(o.lr > 0 && Number.isFinite(o.lr))) fail('optimizer.lr', 'a positive finite number', o.lr);
  if (!Number.isInteger(o.maxSteps) || o.maxSteps < 1) fail('trainer.max_steps', 'a positive integer', o.maxSteps);
  if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0 || o.warmupSteps > o.maxSteps) {
    fail('trainer.warmup_steps', `an integer in [0, max_steps = ${o.maxSteps}]`, o.warmupSteps);
  }
  if (!(o.minLrRatio >= 0 && o.minLrRatio <= 1)) fail('trainer.min_lr_ratio', 'a number in [0, 1]', o.minLrRatio);
}
