/** The server's lifecycle as a union tagged by phase, with its one transition function. */
import { assertNever } from '../../util/assert.ts';
import type { ServerPhaseName } from '../schema/index.ts';

export type ServerState =
  | { readonly phase: 'starting' }
  | { readonly phase: 'serving'; readonly url: string; readonly since: number }
  | { readonly phase: 'draining'; readonly url: string; readonly since: number }
  | { readonly phase: 'stopped'; readonly at: number };

export type ServerEvent =
  | { readonly type: 'listening'; readonly url: string }
  | { readonly type: 'drain' }
  | { readonly type: 'stopped' };

/** The next state, or an error naming the phase that does not allow the event. */
export function transition(state: ServerState, event: ServerEvent, now: number = Date.now()): ServerState {
  const refuse = (): never => {
    throw new Error(`server expected an event allowed while ${state.phase}, but got ${event.type}.`);
  };
  switch (state.phase) {
    case 'starting':
      if (event.type === 'listening') return { phase: 'serving', url: event.url, since: now };
      if (event.type === 'stopped') return { phase: 'stopped', at: now };
      return refuse();
    case 'serving':
      if (event.type === 'drain') return { phase: 'draining', url: state.url, since: now };
      return refuse();
    case 'draining':
      if (event.type === 'stopped') return { phase: 'stopped', at: now };
      return refuse();
    case 'stopped':
      return refuse();
    default:
      return assertNever(state);
  }
}

export function phaseOf(state: ServerState): ServerPhaseName {
  return state.phase;
}
