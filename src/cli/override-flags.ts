/** Command-line arguments of the training commands: known flags plus `--section.key value` config overrides. */
import { XlstmError } from '../util/errors.ts';

export interface ParsedFlags {
  /** Known flags by name (without dashes). */
  readonly flags: Map<string, string | true>;
  /** `section.key=value` for every dotted flag, in order. */
  readonly overrides: string[];
}

/**
 * `--name value`, `--name=value` and boolean `--name`; a dotted name (`--trainer.devices 2`) is a
 * config override. Unknown plain flags and stray arguments are errors that list the known ones.
 */
export function parseFlags(argv: readonly string[], known: Readonly<Record<string, 'string' | 'boolean'>>, command: string): ParsedFlags {
  const flags = new Map<string, string | true>();
  const overrides: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      flags.set('help', true);
      continue;
    }
    if (!arg.startsWith('--')) {
      throw new XlstmError('INVALID_INPUT', `${command} expected --flags, but got ${JSON.stringify(arg)}. Hint: run "xlstm ${command} --help".`);
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq > 0 ? eq : undefined);
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && !/^--?\d/.test(next))) {
        throw new XlstmError('INVALID_INPUT', `--${name} expected a value, but got ${next === undefined ? 'nothing' : JSON.stringify(next)}.`);
      }
      i++;
      return next;
    };
    if (name.includes('.')) overrides.push(`${name}=${takeValue()}`);
    else if (known[name] === 'boolean') flags.set(name, true);
    else if (known[name] === 'string') flags.set(name, takeValue());
    else {
      throw new XlstmError(
        'INVALID_INPUT',
        `${command} expected one of the flags ${Object.keys(known).map((k) => `--${k}`).join(', ')} or a config override such as --trainer.devices 2, but got --${name}.`,
      );
    }
  }
  return { flags, overrides };
}
