/** Where the configs query reads config files from; the composition root supplies it (api/ does not read YAML). */
export interface ConfigEntry {
  /** File name without .yaml, e.g. "llm". */
  readonly name: string;
  readonly path: string;
  readonly yaml: string;
  /** The validated config with defaults filled in, or null when it does not validate. */
  readonly values: Readonly<Record<string, unknown>> | null;
  /** Why it does not validate: each message names the file, key and line. Empty when valid. */
  readonly errors: readonly string[];
}

export interface ConfigSource {
  list(): Promise<ConfigEntry[]>;
  get(name: string): Promise<ConfigEntry | null>;
}
