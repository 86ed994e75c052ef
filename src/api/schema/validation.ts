/**
 * Input validation through class-validator, with messages in the platform's form
 * "<field> expected <x>, but got <y>. Hint: <action>", surfaced as BAD_USER_INPUT.
 */
import { validateSync, type ValidationArguments, type ValidationError } from 'class-validator';

import { XlstmError } from '../../util/errors.ts';

/** A class-validator `message` for a field under `prefix` ('input.' for an input object, '' for plain args). */
export function expected(prefix: string, what: string, hint: string): (args: ValidationArguments) => string {
  return (args) => `${prefix}${args.property} expected ${what}, but got ${show(args.value)}. Hint: ${hint}`;
}

/** The same for `each: true` checks on lists: names the first offending item. */
export function expectedEach(
  prefix: string,
  what: string,
  hint: string,
  bad: (item: unknown) => boolean,
): (args: ValidationArguments) => string {
  return (args) => {
    const list = Array.isArray(args.value) ? (args.value as unknown[]) : [args.value];
    const i = Math.max(0, list.findIndex(bad));
    return `${prefix}${args.property}[${i}] expected ${what}, but got ${show(list[i])}. Hint: ${hint}`;
  };
}

/** Throws INVALID_INPUT (BAD_USER_INPUT to clients) naming every failed check, when `value` has any. */
export function validateInput(value: object): void {
  const errors = validateSync(value, { forbidUnknownValues: false });
  if (errors.length > 0) throw new XlstmError('INVALID_INPUT', messages(errors).join(' '));
}

/** type-graphql's validateFn: class instances (inputs and args objects) are validated, everything else passes. */
export function validateArgument(argValue: unknown): void {
  if (argValue === null || typeof argValue !== 'object') return;
  for (const item of Array.isArray(argValue) ? argValue : [argValue]) {
    if (item !== null && typeof item === 'object') validateInput(item as object);
  }
}

/** No validation: for arguments already checked elsewhere (a subscription's per-event resolver). */
export function skipValidation(): void {}

function messages(errors: readonly ValidationError[]): string[] {
  return errors.flatMap((e) => [...Object.values(e.constraints ?? {}), ...messages(e.children ?? [])]);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : `a list of ${v.length}`;
  return String(v);
}
