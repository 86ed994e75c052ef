/** Invariant checks whose messages are built only when they fail. */
export function assert(cond: unknown, message: () => string): asserts cond {
  if (!cond) throw new Error(message());
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value ${JSON.stringify(x)}`);
}
