/**
 * One generate request as a stream of events: per prompt, a token event as soon as each token exists and a
 * finish event with the reason; stop strings are matched on the decoded text, never on half a character.
 */
import { StreamDecoder, type Tokenizer } from '../tokenizer/index.ts';
import { XlstmError, type ErrorCode } from '../util/errors.ts';
import { Channel } from './channel.ts';
import type { ServeLimits } from './limits.ts';
import type { ServeObserver } from './observer.ts';
import { promptRng, resolveRequest, graphqlLabel, type FieldLabel, type GenerateRequest, type ResolvedRequest } from './request.ts';
import type { Scheduler, SequenceEnd, SequenceSpec } from './scheduler.ts';
import { StopMatcher } from './stop-matcher.ts';

export type FinishReason = 'EOS' | 'LENGTH' | 'STOP' | 'CANCELLED' | 'ERROR';

export interface TokenEvent {
  readonly kind: 'token';
  readonly promptIndex: number;
  readonly tokenId: number;
  /** The characters this token completes: '' while a character's bytes are still arriving. */
  readonly text: string;
  /** Where the token sits in its sequence, counting the prompt's tokens from 0. */
  readonly position: number;
  readonly logprob: number;
}

export interface FinishEvent {
  readonly kind: 'finish';
  readonly promptIndex: number;
  readonly finishReason: FinishReason;
  readonly generatedTokens: number;
  readonly seed: number;
}

/** Something went wrong after the stream started; the affected prompts still get a finish event (ERROR). */
export interface ErrorEvent {
  readonly kind: 'error';
  readonly promptIndex: number;
  readonly code: ErrorCode | 'INTERNAL';
  readonly message: string;
}

export type GenerateEvent = TokenEvent | FinishEvent | ErrorEvent;

/** A started request: iterate it for events; return() (an unsubscribe) cancels what has not finished. */
export interface GenerateStream extends AsyncIterableIterator<GenerateEvent> {
  readonly seed: number;
  return(): Promise<IteratorResult<GenerateEvent>>;
}

/** What generation needs from a loaded model. */
export interface GenerationTarget {
  readonly tokenizer: Tokenizer;
  readonly scheduler: Scheduler;
}

/** Request checks that need the tokenizer: each prompt's length in tokens. */
export function encodePrompts(
  request: ResolvedRequest,
  tokenizer: Tokenizer,
  limits: ServeLimits,
  label: FieldLabel = graphqlLabel,
): number[][] {
  return request.prompts.map((prompt, i) => {
    const ids = tokenizer.encode(prompt);
    if (ids.length === 0 || ids.length > limits.maxPromptTokens) {
      throw new XlstmError(
        'INVALID_INPUT',
        `${label('prompts')} expected at most ${limits.maxPromptTokens} tokens in prompt ${i}, but got ${ids.length}. ` +
          'Hint: shorten the prompt; xLSTM carries state, so a long context can be fed in pieces.',
      );
    }
    return ids;
  });
}

/**
 * Validates and submits a request. Bad input and a full scheduler throw here (XlstmError INVALID_INPUT or
 * CAPACITY), before any event; later trouble arrives as events.
 */
export function startGeneration(
  target: GenerationTarget,
  raw: GenerateRequest,
  limits: ServeLimits,
  observer: ServeObserver,
  label: FieldLabel = graphqlLabel,
): GenerateStream {
  const request = resolveRequest(raw, limits, label);
  const promptTokens = encodePrompts(request, target.tokenizer, limits, label);
  let handles: { cancel(): void }[] = [];
  const channel = new Channel<GenerateEvent>(() => handles.forEach((h) => h.cancel()));
  let open = request.prompts.length;
  const specs = promptTokens.map((tokens, index) =>
    promptSpec(target.tokenizer, request, index, tokens, observer, (event) => {
      channel.push(event);
      if (event.kind === 'finish' && --open === 0) channel.end();
    }),
  );
  handles = target.scheduler.submit(specs);
  observer.requestStarted(request.prompts.length);
  return Object.assign(channel, { seed: request.seed });
}

/** The scheduler's view of one prompt: decoding, stop conditions and finish reasons live here. */
function promptSpec(
  tokenizer: Tokenizer,
  request: ResolvedRequest,
  promptIndex: number,
  tokens: readonly number[],
  observer: ServeObserver,
  emit: (event: GenerateEvent) => void,
): SequenceSpec {
  const decoder = new StreamDecoder(tokenizer);
  const stops = new StopMatcher(request.stop);
  let generated = 0;
  let finished = false;
  const finish = (finishReason: FinishReason): void => {
    if (finished) return;
    finished = true;
    emit({ kind: 'finish', promptIndex, finishReason, generatedTokens: generated, seed: request.seed });
  };
  return {
    promptTokens: tokens,
    sampling: request.sampling,
    rng: promptRng(request.seed, promptIndex),
    onToken(tokenId, logprob) {
      if (tokenId === tokenizer.eosId) {
        finish('EOS');
        return false;
      }
      const position = tokens.length + generated;
      generated++;
      let text = decoder.push(tokenId);
      const cut = stops.feed(text);
      if (cut >= 0) text = text.slice(0, cut);
      emit({ kind: 'token', promptIndex, tokenId, text, position, logprob });
      if (cut >= 0) finish('STOP');
      else if (generated >= request.maxTokens) finish('LENGTH');
      return !finished;
    },
    onEnd(end: SequenceEnd) {
      if (finished) return;
      if (end.kind === 'error') {
        const code = end.error instanceof XlstmError ? end.error.code : 'INTERNAL';
        // Internal failures keep their details in the server log, never in the stream; the id finds them there.
        let message: string;
        if (end.error instanceof XlstmError) message = end.error.message;
        else {
          const errorId = crypto.randomUUID();
          message = `generation failed inside the server (error id ${errorId}).`;
          console.error(`internal error ${errorId}: generation failed: ${end.error instanceof Error ? (end.error.stack ?? end.error.message) : String(end.error)}`);
        }
        observer.streamError(code);
        emit({ kind: 'error', promptIndex, code, message });
      }
      finish(end.kind === 'cancelled' ? 'CANCELLED' : end.kind === 'error' ? 'ERROR' : 'LENGTH');
    },
  };
}
