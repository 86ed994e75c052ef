/** Runs a TypeScript child process (through tsx), reading its stdout line by line, so a test can kill -9 it at a chosen moment. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Child {
  readonly process: ChildProcess;
  /** Every stdout line so far. */
  readonly lines: string[];
  /** Resolves with the first line (seen so far or later) that `match` accepts; rejects if the child exits first. */
  waitFor(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  readonly stderr: () => string;
}

export function spawnChild(script: string, args: readonly string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const listeners = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const l of [...listeners]) l();
  });
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  return {
    process: child,
    lines,
    exited,
    stderr: () => err,
    waitFor(match, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = lines.find(match);
          if (hit === undefined) return;
          done();
          resolve(hit);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`child ${script} did not print the expected line within ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${err}`));
        }, timeoutMs);
        const onExit = (code: number | string): void => {
          done();
          reject(new Error(`child ${script} exited (${code}) before printing the expected line; stdout:\n${lines.join('\n')}\nstderr:\n${err}`));
        };
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then((c) => listeners.has(check) && onExit(c));
        check();
      });
    },
  };
}

/** kill -9, and wait until the process is gone. */
export async function killHard(child: Child): Promise<void> {
  child.process.kill('SIGKILL');
  await child.exited;
}
