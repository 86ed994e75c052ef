/**
 * How `xlstm train` and `xlstm finetune` show a run: a one-line progress bar (step, loss, tokens/s,
 * time left) redrawn in place on a terminal, plain log lines every log_every_n_steps otherwise;
 * evaluations, samples, checkpoints and the end always get their own lines.
 */
import type { RunUpdate } from '../train/index.ts';

export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

const BAR = 24;

/** "1h02m", "4m05s", "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

export class ProgressPrinter {
  private readonly tty: boolean;
  private barShown = false;
  /** Seconds per step, smoothed, for the time left. */
  private secondsPerStep: number | null = null;
  private lastAt: number | null = null;

  constructor(
    private readonly out: ProgressOutput,
    private readonly logEvery: number,
    private readonly now: () => number = () => performance.now() / 1000,
  ) {
    this.tty = out.isTTY === true;
  }

  update(u: RunUpdate): void {
    const e = u.event;
    if (e === null) {
      if (u.phase === 'FAILED') this.line(`run ${u.runId} FAILED: ${u.error?.message ?? 'unknown error'}`);
      else this.line(`run ${u.runId} ${u.phase}`);
      return;
    }
    switch (e.kind) {
      case 'start':
        this.line(
          `${e.resumed ? `resuming at step ${e.step}` : 'starting'}: ${e.parameters.toLocaleString('en-US')} parameters, ` +
            `${e.trainWindows} training and ${e.validWindows} validation windows, ${e.maxSteps} steps on ${e.devices} device${e.devices > 1 ? 's' : ''}`,
        );
        this.lastAt = this.now();
        return;
      case 'step': {
        const t = this.now();
        if (this.lastAt !== null) {
          const dt = t - this.lastAt;
          this.secondsPerStep = this.secondsPerStep === null ? dt : 0.9 * this.secondsPerStep + 0.1 * dt;
        }
        this.lastAt = t;
        const left = this.secondsPerStep === null ? '?' : formatDuration(this.secondsPerStep * (e.maxSteps - e.step));
        const figures = `step ${e.step}/${e.maxSteps} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} grad ${e.gradNorm.toFixed(3)} ${Math.round(e.tokensPerSecond)} tok/s left ${left}`;
        if (this.tty) {
          const filled = Math.round((BAR * e.step) / e.maxSteps);
          this.bar(`[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${figures}`);
        } else if (e.step % this.logEvery === 0 || e.step === e.maxSteps || e.step === 1) this.line(figures);
        return;
      }
      case 'eval':
        this.line(`step ${e.step} val_loss ${e.valLoss === null ? 'n/a (no validation data)' : e.valLoss.toFixed(4)}`);
        e.samples.forEach((s, i) => this.line(`  sample ${i + 1}: ${JSON.stringify(s)}`));
        return;
      case 'checkpoint':
        this.line(`step ${e.step} saved checkpoint ${e.id} (${e.reason})${e.removed.length ? `, removed ${e.removed.join(', ')}` : ''}`);
        return;
      case 'done':
        this.line(`${e.reason === 'completed' ? 'finished' : 'stopped'} at step ${e.step}`);
        return;
    }
  }

  /** Leaves the bar's line so later output starts on a fresh one. */
  end(): void {
    if (this.barShown) this.out.write('\n');
    this.barShown = false;
  }

  private bar(text: string): void {
    const width = Math.max(20, (this.out.columns ?? 120) - 1);
    this.out.write(`\r${text.slice(0, width).padEnd(width)}`);
    this.barShown = true;
  }

  private line(text: string): void {
    this.end();
    this.out.write(`${text}\n`);
  }
}
