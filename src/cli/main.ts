/** The `xlstm` command: dispatches to one subcommand and turns platform errors into one-line messages. */
import { explainBackendError } from '../backend/errors.ts';
import { currentBackend } from '../backend/select.ts';
import { isXlstmError } from '../util/errors.ts';

const USAGE = `usage: xlstm <command> [options]

commands:
  serve      serve the GraphQL API (default checkpoint from checkpoints/)
  generate   stream completions of prompts from a checkpoint
  train      train a model from a YAML config (config/llm.yaml)
  finetune   fine-tune a checkpoint on a dataset
  init       write a freshly initialised checkpoint
  export     copy a checkpoint without optimizer state, in float16 by default
  logits     print a checkpoint's logits for token ids, as JSON
  schema     write schema/schema.graphql

Run "xlstm <command> --help" for a command's options.`;

type Command = (argv: string[]) => Promise<void>;

// Each command is imported when called, so `xlstm logits` does not load the GraphQL stack.
const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.ts')).serveCommand,
  generate: async () => (await import('./generate.ts')).generateCommand,
  train: async () => (await import('./train.ts')).trainCommand,
  finetune: async () => (await import('./finetune.ts')).finetuneCommand,
  init: async () => (await import('./init.ts')).initCommand,
  export: async () => (await import('./export.ts')).exportCommand,
  logits: async () => (await import('./logits.ts')).logitsCommand,
  schema: async () => (await import('./schema.ts')).schemaCommand,
};

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`xlstm: unknown command "${name}".\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  await (await load())(rest);
}

main(process.argv.slice(2)).catch((raw: unknown) => {
  const e = explainBackendError(raw, currentBackend()?.name ?? 'tfjs');
  if (isXlstmError(e)) {
    process.stderr.write(`xlstm: ${e.code}: ${e.message}\n`);
  } else {
    process.stderr.write(`xlstm: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
  process.exitCode = 1;
});
