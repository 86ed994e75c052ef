import { describe, expect, it } from 'vitest';

import { DEFAULT_LIMITS, promptRng, resolveLimits, resolveRequest, type GenerateRequest } from '../../src/serve/index.ts';
import { XlstmError } from '../../src/util/errors.ts';

const limits = resolveLimits({ maxTokens: 100, maxPrompts: 3 });

describe('resolveRequest', () => {
  it.each<[string, GenerateRequest, RegExp]>([
    ['no prompts', { prompts: [] }, /^input\.prompts expected at least one prompt, but got a list of 0\. Hint:/],
    ['an empty prompt', { prompts: ['a', ''] }, /^input\.prompts expected a non-empty string at index 1, but got ""\./],
    ['too many prompts', { prompts: ['a', 'b', 'c', 'd'] }, /^input\.prompts expected at most 3 prompts, but got 4\./],
    ['maxTokens over the limit', { prompts: ['a'], maxTokens: 101 }, /^input\.maxTokens expected an integer from 1 to 100, but got 101\./],
    ['maxTokens 0', { prompts: ['a'], maxTokens: 0 }, /^input\.maxTokens expected an integer from 1 to 100, but got 0\./],
    ['temperature -1', { prompts: ['a'], temperature: -1 }, /^input\.temperature expected a finite number >= 0, but got -1\./],
    ['topK 0', { prompts: ['a'], topK: 0 }, /^input\.topK expected an integer >= 1, but got 0\./],
    ['topP 0', { prompts: ['a'], topP: 0 }, /^input\.topP expected a number in \(0, 1\], but got 0\./],
    ['topP 1.5', { prompts: ['a'], topP: 1.5 }, /^input\.topP expected a number in \(0, 1\], but got 1\.5\./],
    ['an empty stop string', { prompts: ['a'], stop: [''] }, /^input\.stop expected a string of 1 to 64 characters at index 0, but got ""\./],
  ])('refuses %s with INVALID_INPUT naming the field, the expectation and the value', (_name, request, message) => {
    let error: unknown;
    try {
      resolveRequest(request, limits);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(XlstmError);
    expect((error as XlstmError).code).toBe('INVALID_INPUT');
    expect((error as XlstmError).message).toMatch(message);
  });

  it('fills in defaults: temperature 1, top-k and top-p off, the default token budget, a picked seed', () => {
    const r = resolveRequest({ prompts: ['a'] }, DEFAULT_LIMITS);
    expect(r.sampling).toEqual({ temperature: 1, topK: 0, topP: 1 });
    expect(r.maxTokens).toBe(DEFAULT_LIMITS.defaultMaxTokens);
    expect(Number.isInteger(r.seed)).toBe(true);
    expect(r.stop).toEqual([]);
  });

  it('names fields the caller’s way', () => {
    expect(() => resolveRequest({ prompts: ['a'], topK: 0 }, limits, (f) => `--${f}`)).toThrow(/^--topK expected/);
  });
});

describe('promptRng', () => {
  it('depends only on the seed and the prompt index', () => {
    const draw = (seed: number, i: number) => Array.from({ length: 4 }, ((r) => () => r.nextUint32())(promptRng(seed, i)));
    expect(draw(5, 2)).toEqual(draw(5, 2));
    expect(draw(5, 2)).not.toEqual(draw(5, 3));
    expect(draw(5, 2)).not.toEqual(draw(6, 2));
  });
});
