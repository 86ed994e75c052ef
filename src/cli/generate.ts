/**
 * `xlstm generate`: streams completions of one or more prompts to the terminal as tokens arrive, running the
 * same batched scheduler as the server, in-process. Tokens go to stdout; finish lines go to stderr.
 */
import { parseArgs } from 'node:util';

import { Serving, type FieldLabel } from '../serve/index.ts';
import { XlstmError } from '../util/errors.ts';
import { intFlag, numberFlag } from './int-flag.ts';
import { CHECKPOINTS_DIR } from './paths.ts';
import { startBackend } from './runtime.ts';

export const GENERATE_USAGE = `xlstm generate [--checkpoint ID] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]
               [--seed S] [--stop TEXT]... [--checkpoints-dir DIR] PROMPT [PROMPT...]`;

const FLAG_OF: Record<string, string> = {
  prompts: 'PROMPT arguments',
  checkpoint: '--checkpoint',
  maxTokens: '--max-tokens',
  temperature: '--temperature',
  topK: '--top-k',
  topP: '--top-p',
  seed: '--seed',
  stop: '--stop',
};
const cliLabel: FieldLabel = (field) => FLAG_OF[field] ?? field;

export async function generateCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      checkpoint: { type: 'string', short: 'c' },
      'checkpoints-dir': { type: 'string' },
      'max-tokens': { type: 'string', short: 'n' },
      temperature: { type: 'string', short: 't' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      stop: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: ${GENERATE_USAGE}\n`);
    return;
  }
  if (positionals.length === 0) {
    throw new XlstmError('INVALID_INPUT', `PROMPT arguments expected at least one prompt, but got none. Usage: ${GENERATE_USAGE}`);
  }
  const request = {
    prompts: positionals,
    checkpoint: values.checkpoint,
    maxTokens: intFlag('--max-tokens', values['max-tokens'], 1),
    temperature: numberFlag('--temperature', values.temperature),
    topK: intFlag('--top-k', values['top-k'], 1),
    topP: numberFlag('--top-p', values['top-p']),
    seed: intFlag('--seed', values.seed, -(2 ** 31), 2 ** 31 - 1),
    stop: values.stop,
  };
  await startBackend();
  const serving = await Serving.open({
    checkpointsRoot: values['checkpoints-dir'] ?? process.env.XLSTM_CHECKPOINTS ?? CHECKPOINTS_DIR,
    defaultCheckpoint: values.checkpoint,
    limits: { maxActive: Math.max(1, positionals.length), maxPrompts: Math.max(16, positionals.length) },
  });
  try {
    await serving.loadDefault();
    const stream = await serving.generate(request, cliLabel);
    const stopOnSignal = (): void => void stream.return();
    process.once('SIGINT', stopOnSignal);
    try {
      await print(stream, positionals.length);
    } finally {
      process.off('SIGINT', stopOnSignal);
    }
  } finally {
    await serving.close();
  }
}

/** One prompt: its text flows on as is. Several: a "[i] " header whenever the stream switches prompt. */
async function print(stream: Awaited<ReturnType<Serving['generate']>>, prompts: number): Promise<void> {
  let shown = -1;
  for await (const event of stream) {
    switch (event.kind) {
      case 'token':
        if (prompts > 1 && event.promptIndex !== shown) {
          process.stdout.write(`${shown >= 0 ? '\n' : ''}[${event.promptIndex}] `);
          shown = event.promptIndex;
        }
        process.stdout.write(event.text);
        break;
      case 'finish':
        process.stderr.write(`\n[${event.promptIndex}] ${event.finishReason} after ${event.generatedTokens} tokens (seed ${event.seed})\n`);
        shown = -1;
        break;
      case 'error':
        process.stderr.write(`\n[${event.promptIndex}] error ${event.code}: ${event.message}\n`);
        break;
    }
  }
}
