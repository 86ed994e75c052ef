import { describe, expect, it, vi } from 'vitest';

import { DEFAULT_LIMITS, NOOP_OBSERVER, startGeneration, type GenerateEvent, type Scheduler, type SequenceSpec } from '../../src/serve/index.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';

/** A scheduler whose every sequence fails the way a bug would: a plain error with private details. */
function failingScheduler(error: unknown): Scheduler {
  return {
    submit(specs: readonly SequenceSpec[]) {
      setTimeout(() => specs.forEach((s) => s.onEnd({ kind: 'error', error })));
      return specs.map(() => ({ cancel() {} }));
    },
  } as unknown as Scheduler;
}

describe('a generation that fails inside the server', () => {
  it('streams an INTERNAL error event with an error id and no details, and logs the stack under that id', async () => {
    const logged: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((line: string) => void logged.push(line));
    try {
      const stream = startGeneration({ tokenizer: Tokenizer.gpt2(), scheduler: failingScheduler(new TypeError('password for db')) }, { prompts: ['hi'] }, DEFAULT_LIMITS, NOOP_OBSERVER);
      const events: GenerateEvent[] = [];
      for await (const e of stream) events.push(e);
      expect(events.map((e) => e.kind)).toEqual(['error', 'finish']);
      const error = events[0] as Extract<GenerateEvent, { kind: 'error' }>;
      expect(error.code).toBe('INTERNAL');
      const id = /^generation failed inside the server \(error id ([0-9a-f-]{36})\)\.$/.exec(error.message)?.[1];
      expect(id).toBeDefined();
      expect(error.message).not.toMatch(/password/);
      expect(events[1]).toMatchObject({ kind: 'finish', finishReason: 'ERROR' });
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatch(new RegExp(`^internal error ${id}: generation failed: TypeError: password for db\\n    at `));
    } finally {
      spy.mockRestore();
    }
  });
});
