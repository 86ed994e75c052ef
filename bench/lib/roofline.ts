/**
 * The decode roofline of the CPU performance issue: the backend's measured matMul rate on the model's own weight
 * shapes, with every core busy at once (one worker thread per core, each with `rows` rows as a DecodePool thread
 * has), divided into the model's 2 x (non-embedding parameters) FLOP per token.
 */
import { weightEntries, type XlstmModel } from './core-api.ts';
import { typeScriptWorker } from '../../src/util/ts-worker.ts';

export interface Roofline {
  readonly threads: number;
  readonly rowsPerThread: number;
  readonly gflopsPerThread: number[];
  readonly gflops: number;
  readonly nonEmbeddingParameters: number;
  readonly flopPerToken: number;
  readonly tokensPerS: number;
}

export async function measureRoofline(model: XlstmModel, backend: 'cpu' | 'wasm', threads: number, rowsPerThread: number, seconds = 3): Promise<Roofline> {
  const entries = weightEntries(model.weights);
  const nonEmbeddingParameters = model.parameterCount() - model.weights.embedding.size;
  // The matrices the step multiplies by, stored [in, out] as it uses them (the head included; depthwise conv kernels
  // are not matMuls).
  const shapes = entries.filter(([name, t]) => name !== 'embedding' && !name.endsWith('convW') && t.rank === 2).map(([, t]) => [t.shape[0], t.shape[1]] as [number, number]);
  const rates = await Promise.all(
    Array.from({ length: threads }, (_, i) => {
      const worker = typeScriptWorker(new URL('./matmul-rate-worker.ts', import.meta.url), {
        workerData: { backend, rows: rowsPerThread, shapes, seconds },
        name: `matmul-rate-${i}`,
      });
      return new Promise<number>((resolve, reject) => {
        worker.once('message', (rate: number) => {
          resolve(rate);
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    }),
  );
  const gflops = rates.reduce((a, b) => a + b, 0);
  const flopPerToken = 2 * nonEmbeddingParameters;
  return { threads, rowsPerThread, gflopsPerThread: rates, gflops, nonEmbeddingParameters, flopPerToken, tokensPerS: (gflops * 1e9) / flopPerToken };
}
