/** A run's lifecycle as a union tagged by `phase`, and the one pure function that moves it. */
import { assertNever } from '../util/assert.ts';
import { XlstmError } from '../util/errors.ts';

export const RUN_PHASES = ['QUEUED', 'RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

export const RUN_KINDS = ['TRAIN', 'FINETUNE'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

/** Why a run failed: an XlstmError code (or INTERNAL) and its message. */
export interface RunError {
  readonly code: string;
  readonly message: string;
}

/** Times are ISO-8601 strings; `step` counts optimizer updates done. */
export type RunState =
  | { readonly phase: 'QUEUED' }
  | { readonly phase: 'RUNNING'; readonly startedAt: string; readonly step: number }
  | { readonly phase: 'CANCELLING'; readonly startedAt: string; readonly step: number }
  | { readonly phase: 'SUCCEEDED'; readonly startedAt: string; readonly finishedAt: string; readonly step: number }
  | { readonly phase: 'FAILED'; readonly startedAt: string | null; readonly finishedAt: string; readonly step: number; readonly error: RunError }
  | { readonly phase: 'CANCELLED'; readonly startedAt: string | null; readonly finishedAt: string; readonly step: number };

export type RunEvent =
  /** The trainer picked the run up. */
  | { readonly type: 'start'; readonly at: string }
  /** Updates done so far; may go back when a restarted run resumes from its last checkpoint. */
  | { readonly type: 'progress'; readonly step: number }
  /** A user asked to stop: a queued run ends at once, a running one winds down first. */
  | { readonly type: 'cancel'; readonly at: string }
  /** The trainer stopped a cancelling run. */
  | { readonly type: 'stop'; readonly at: string }
  /** The run reached its end (a cancel that came too late to matter still ends here). */
  | { readonly type: 'succeed'; readonly at: string }
  | { readonly type: 'fail'; readonly at: string; readonly error: RunError };

export type RunEventType = RunEvent['type'];

/** The events each phase accepts; everything else is refused with RUN_STATE. */
export const LEGAL_EVENTS: Readonly<Record<RunPhase, readonly RunEventType[]>> = {
  QUEUED: ['start', 'cancel', 'fail'],
  RUNNING: ['progress', 'cancel', 'succeed', 'fail'],
  CANCELLING: ['progress', 'stop', 'succeed', 'fail'],
  SUCCEEDED: [],
  FAILED: [],
  CANCELLED: [],
};

export function isTerminal(phase: RunPhase): boolean {
  return LEGAL_EVENTS[phase].length === 0;
}

/** The next state, or XlstmError('RUN_STATE') when `event` is illegal in the current phase. */
export function transition(state: RunState, event: RunEvent, runId = 'run'): RunState {
  const refuse = (): never => {
    const legal = LEGAL_EVENTS[state.phase];
    throw new XlstmError(
      'RUN_STATE',
      `${runId} in phase ${state.phase} expected ${legal.length ? `one of the events ${legal.join(', ')}` : 'no further events (it has ended)'}, but got ${event.type}.` +
        (event.type === 'cancel' && isTerminal(state.phase) ? ' Hint: only queued or running runs can be cancelled.' : ''),
    );
  };
  if (event.type === 'progress' && !(Number.isInteger(event.step) && event.step >= 0)) {
    throw new XlstmError('RUN_STATE', `${runId} progress expected a step count >= 0, but got ${event.step}.`);
  }
  switch (state.phase) {
    case 'QUEUED':
      switch (event.type) {
        case 'start':
          return { phase: 'RUNNING', startedAt: event.at, step: 0 };
        case 'cancel':
          return { phase: 'CANCELLED', startedAt: null, finishedAt: event.at, step: 0 };
        case 'fail':
          return { phase: 'FAILED', startedAt: null, finishedAt: event.at, step: 0, error: event.error };
        default:
          return refuse();
      }
    case 'RUNNING':
    case 'CANCELLING':
      switch (event.type) {
        case 'progress':
          return { ...state, step: event.step };
        case 'cancel':
          return state.phase === 'RUNNING' ? { ...state, phase: 'CANCELLING' } : refuse();
        case 'stop':
          return state.phase === 'CANCELLING' ? { ...state, phase: 'CANCELLED', finishedAt: event.at } : refuse();
        case 'succeed':
          return { phase: 'SUCCEEDED', startedAt: state.startedAt, finishedAt: event.at, step: state.step };
        case 'fail':
          return { phase: 'FAILED', startedAt: state.startedAt, finishedAt: event.at, step: state.step, error: event.error };
        default:
          return refuse();
      }
    case 'SUCCEEDED':
    case 'FAILED':
    case 'CANCELLED':
      return refuse();
    default:
      return assertNever(state);
  }
}
