/** Hooks through which serve/ reports what it does, so metrics live at the edge and serve/ stays library-free. */
import type { ErrorCode } from '../util/errors.ts';

export interface ServeObserver {
  /** A generate request was accepted with this many prompts. */
  requestStarted(prompts: number): void;
  /** A prompt's stream broke off after it started (refusals before the stream are the caller's errors). */
  streamError(code: ErrorCode | 'INTERNAL'): void;
  /** Seconds from a sequence's admission to its first token. */
  firstToken(seconds: number): void;
  /** Seconds between two tokens of one sequence. */
  interToken(seconds: number): void;
  /** Tokens produced by one batched step (or one prefill). */
  tokensGenerated(count: number): void;
}

export const NOOP_OBSERVER: ServeObserver = Object.freeze({
  requestStarted() {},
  streamError() {},
  firstToken() {},
  interToken() {},
  tokensGenerated() {},
});
