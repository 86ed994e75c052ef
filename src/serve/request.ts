/** Checks a generate request against the server's limits and fills in defaults; every refusal names the field. */
import { randomInt } from 'node:crypto';

import { XlstmError } from '../util/errors.ts';
import { Rng } from '../util/rng.ts';
import type { ServeLimits } from './limits.ts';

/** What a client sends; absent and null mean "use the default". */
export interface GenerateRequest {
  readonly prompts: readonly string[];
  readonly checkpoint?: string | null;
  readonly maxTokens?: number | null;
  readonly temperature?: number | null;
  readonly topK?: number | null;
  readonly topP?: number | null;
  readonly seed?: number | null;
  readonly stop?: readonly string[] | null;
}

/** The sampling knobs in core's convention: temperature 0 is greedy, topK 0 and topP 1 are off. */
export interface Sampling {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
}

export interface ResolvedRequest {
  readonly prompts: readonly string[];
  readonly checkpoint: string | undefined;
  readonly maxTokens: number;
  readonly sampling: Sampling;
  readonly seed: number;
  readonly stop: readonly string[];
}

export const DEFAULT_TEMPERATURE = 1;

/** How a field is called where the request came from: `input.topK` in GraphQL, `--top-k` on the command line. */
export type FieldLabel = (field: keyof GenerateRequest) => string;
export const graphqlLabel: FieldLabel = (field) => `input.${field}`;

export function resolveRequest(req: GenerateRequest, limits: ServeLimits, label: FieldLabel = graphqlLabel): ResolvedRequest {
  const bad = (field: keyof GenerateRequest, expected: string, got: unknown, hint: string): never => {
    throw new XlstmError('INVALID_INPUT', `${label(field)} expected ${expected}, but got ${show(got)}. Hint: ${hint}`);
  };
  const { prompts } = req;
  if (!Array.isArray(prompts) || prompts.length === 0) {
    bad('prompts', 'at least one prompt', prompts, 'pass prompts: ["Once upon a time"].');
  }
  if (prompts.length > limits.maxPrompts) {
    bad('prompts', `at most ${limits.maxPrompts} prompts`, prompts.length, 'split the request.');
  }
  prompts.forEach((p, i) => {
    if (typeof p !== 'string' || p.length === 0) {
      bad('prompts', `a non-empty string at index ${i}`, p, 'remove empty prompts; the model needs at least one token.');
    }
  });
  const maxTokens = req.maxTokens ?? limits.defaultMaxTokens;
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > limits.maxTokens) {
    bad('maxTokens', `an integer from 1 to ${limits.maxTokens}`, maxTokens, `ask for at most ${limits.maxTokens} tokens.`);
  }
  const temperature = req.temperature ?? DEFAULT_TEMPERATURE;
  if (!Number.isFinite(temperature) || temperature < 0) {
    bad('temperature', 'a finite number >= 0', temperature, 'use 0 for greedy decoding or a positive value to sample.');
  }
  const topK = req.topK ?? 0;
  if (req.topK !== undefined && req.topK !== null && (!Number.isInteger(topK) || topK < 1)) {
    bad('topK', 'an integer >= 1', topK, 'leave topK out to sample from the whole vocabulary.');
  }
  const topP = req.topP ?? 1;
  if (!Number.isFinite(topP) || topP <= 0 || topP > 1) {
    bad('topP', 'a number in (0, 1]', topP, 'use 1 to switch nucleus sampling off.');
  }
  const seed = req.seed ?? randomInt(0, 2 ** 31 - 1);
  if (!Number.isSafeInteger(seed)) bad('seed', 'an integer', seed, 'pass a whole number.');
  const stop = req.stop ?? [];
  if (stop.length > limits.maxStops) {
    bad('stop', `at most ${limits.maxStops} stop strings`, stop.length, 'keep the ones that matter.');
  }
  stop.forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0 || s.length > limits.maxStopLength) {
      bad('stop', `a string of 1 to ${limits.maxStopLength} characters at index ${i}`, s, 'shorten or remove it.');
    }
  });
  const checkpoint = req.checkpoint ?? undefined;
  return { prompts: [...prompts], checkpoint, maxTokens, sampling: { temperature, topK, topP }, seed, stop: [...stop] };
}

/**
 * The random stream of prompt `index` in a request seeded with `seed`: it depends on nothing else, so a prompt
 * samples the same tokens alone, in a batch, or beside other clients.
 */
export function promptRng(seed: number, index: number): Rng {
  return new Rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  return String(v);
}
