import { describe, expect, it } from 'vitest';
import { RUN_PHASES, transition, type RunEvent, type RunPhase, type RunState } from '../../src/store/run-phase.ts';

const T0 = '2025-01-01T00:00:00.000Z';
const T1 = '2025-01-01T01:00:00.000Z';
const error = { code: 'INVALID_INPUT', message: 'bad data' };

/** One representative state per phase, as the store would hold it. */
const STATES: Record<RunPhase, RunState> = {
  QUEUED: { phase: 'QUEUED' },
  RUNNING: { phase: 'RUNNING', startedAt: T0, step: 5 },
  CANCELLING: { phase: 'CANCELLING', startedAt: T0, step: 6 },
  SUCCEEDED: { phase: 'SUCCEEDED', startedAt: T0, finishedAt: T1, step: 9 },
  FAILED: { phase: 'FAILED', startedAt: T0, finishedAt: T1, step: 3, error },
  CANCELLED: { phase: 'CANCELLED', startedAt: null, finishedAt: T1, step: 0 },
};

const EVENTS: Record<RunEvent['type'], RunEvent> = {
  start: { type: 'start', at: T1 },
  progress: { type: 'progress', step: 7 },
  cancel: { type: 'cancel', at: T1 },
  stop: { type: 'stop', at: T1 },
  succeed: { type: 'succeed', at: T1 },
  fail: { type: 'fail', at: T1, error },
};

/** The lifecycle written out by hand: the resulting state, or null when the event must be refused. */
const EXPECTED: Record<RunPhase, Partial<Record<RunEvent['type'], RunState>>> = {
  QUEUED: {
    start: { phase: 'RUNNING', startedAt: T1, step: 0 },
    cancel: { phase: 'CANCELLED', startedAt: null, finishedAt: T1, step: 0 },
    fail: { phase: 'FAILED', startedAt: null, finishedAt: T1, step: 0, error },
  },
  RUNNING: {
    progress: { phase: 'RUNNING', startedAt: T0, step: 7 },
    cancel: { phase: 'CANCELLING', startedAt: T0, step: 5 },
    succeed: { phase: 'SUCCEEDED', startedAt: T0, finishedAt: T1, step: 5 },
    fail: { phase: 'FAILED', startedAt: T0, finishedAt: T1, step: 5, error },
  },
  CANCELLING: {
    progress: { phase: 'CANCELLING', startedAt: T0, step: 7 },
    stop: { phase: 'CANCELLED', startedAt: T0, finishedAt: T1, step: 6 },
    succeed: { phase: 'SUCCEEDED', startedAt: T0, finishedAt: T1, step: 6 },
    fail: { phase: 'FAILED', startedAt: T0, finishedAt: T1, step: 6, error },
  },
  SUCCEEDED: {},
  FAILED: {},
  CANCELLED: {},
};

const table = RUN_PHASES.flatMap((phase) =>
  Object.keys(EVENTS).map((type) => [phase, type, EXPECTED[phase][type as RunEvent['type']] ?? null] as const),
);

describe('transition', () => {
  it('covers every phase and event (36 pairs)', () => {
    expect(table).toHaveLength(36);
    expect(table.filter(([, , next]) => next !== null)).toHaveLength(11);
  });

  it.each(table.filter(([, , next]) => next !== null))('%s + %s is legal', (phase, type, next) => {
    expect(transition(STATES[phase], EVENTS[type as RunEvent['type']])).toEqual(next);
  });

  it.each(table.filter(([, , next]) => next === null))('%s + %s is refused with RUN_STATE', (phase, type) => {
    expect(() => transition(STATES[phase], EVENTS[type as RunEvent['type']], 'run r1')).toThrowError(
      expect.objectContaining({ code: 'RUN_STATE', message: expect.stringMatching(new RegExp(`^run r1 in phase ${phase} expected .*, but got ${type}\\.`)) }),
    );
  });

  it('names the legal events in its message, and hints when cancelling an ended run', () => {
    expect(() => transition(STATES.QUEUED, EVENTS.succeed, 'run r1')).toThrow(
      'run r1 in phase QUEUED expected one of the events start, cancel, fail, but got succeed.',
    );
    expect(() => transition(STATES.SUCCEEDED, EVENTS.cancel, 'run r1')).toThrow(
      'run r1 in phase SUCCEEDED expected no further events (it has ended), but got cancel. Hint: only queued or running runs can be cancelled.',
    );
  });

  it('refuses a negative or fractional step', () => {
    expect(() => transition(STATES.RUNNING, { type: 'progress', step: -1 })).toThrowError(expect.objectContaining({ code: 'RUN_STATE' }));
    expect(() => transition(STATES.RUNNING, { type: 'progress', step: 1.5 })).toThrow(/expected a step count >= 0, but got 1.5/);
  });

  it('does not modify the state it is given', () => {
    const state = { ...STATES.RUNNING };
    transition(state, EVENTS.cancel);
    expect(state).toEqual(STATES.RUNNING);
  });
});
