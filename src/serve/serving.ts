/** The serving side of the platform in one object: checkpoints on disk, loaded models, and generation. */
import { XlstmError } from '../util/errors.ts';
import { CheckpointCatalogue } from './checkpoints.ts';
import { resolveDecodeThreads } from './decode-threads.ts';
import { startGeneration, type GenerateStream } from './generate.ts';
import { resolveLimits, type ServeLimits } from './limits.ts';
import { NOOP_OBSERVER, type ServeObserver } from './observer.ts';
import { ModelRegistry } from './registry.ts';
import { graphqlLabel, type FieldLabel, type GenerateRequest } from './request.ts';

export interface ServingOptions {
  /** The folder whose subfolders are the checkpoints. */
  readonly checkpointsRoot: string;
  /** Overrides root/DEFAULT. */
  readonly defaultCheckpoint?: string;
  readonly limits?: Partial<ServeLimits>;
  readonly observer?: ServeObserver;
  /**
   * Threads that decode each loaded model (SchedulerOptions.decodeThreads): 1, the default, decodes in this
   * thread; N > 1 on a pool of N worker threads on the cpu and wasm backends (others always decode in process).
   * `xlstm serve` passes resolveDecodeThreads(--decode-threads or XLSTM_DECODE_THREADS): one per core.
   */
  readonly decodeThreads?: number;
}

export class Serving {
  private constructor(
    readonly catalogue: CheckpointCatalogue,
    readonly registry: ModelRegistry,
    readonly limits: ServeLimits,
    private readonly observer: ServeObserver,
  ) {}

  static async open(options: ServingOptions): Promise<Serving> {
    const limits = resolveLimits(options.limits);
    const observer = options.observer ?? NOOP_OBSERVER;
    const catalogue = await CheckpointCatalogue.open(options.checkpointsRoot, options.defaultCheckpoint);
    const decodeThreads = resolveDecodeThreads(options.decodeThreads ?? 1);
    return new Serving(catalogue, new ModelRegistry(catalogue, limits, observer, decodeThreads), limits, observer);
  }

  /** Loads the default checkpoint; a root without one is an error that says how to name one. */
  async loadDefault(): Promise<string> {
    const id = this.catalogue.defaultId;
    if (id === null) {
      throw new XlstmError(
        'CHECKPOINT_NOT_FOUND',
        `the checkpoints root ${this.catalogue.root} expected a default checkpoint, but has no DEFAULT file and not exactly one checkpoint. ` +
          'Hint: pass --checkpoint ID or write the id into checkpoints/DEFAULT.',
      );
    }
    await this.registry.load(id);
    return id;
  }

  /** Starts a request on its model; bad input, an unloaded model and a full queue throw before any event. */
  async generate(request: GenerateRequest, label: FieldLabel = graphqlLabel): Promise<GenerateStream> {
    const target = await this.registry.target(request.checkpoint, label('checkpoint'));
    return startGeneration(target, request, this.limits, this.observer, label);
  }

  /** Deletes a checkpoint folder; the default one and loaded ones are refused. */
  async deleteCheckpoint(id: string): Promise<void> {
    if (id === this.catalogue.defaultId) {
      throw new XlstmError('INVALID_INPUT', `id expected a checkpoint other than the default, but got ${JSON.stringify(id)}, which the server falls back to. Hint: change checkpoints/DEFAULT first.`);
    }
    if (this.registry.isLoaded(id)) {
      throw new XlstmError('INVALID_INPUT', `id expected a checkpoint that is not loaded, but ${JSON.stringify(id)} is loaded. Hint: run unloadModel first.`);
    }
    await this.catalogue.remove(id);
  }

  /** Stops every model: open streams end with CANCELLED. */
  async close(): Promise<void> {
    await this.registry.close();
  }
}
