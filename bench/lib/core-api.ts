/** The core and util pieces the benchmarks use, in one import. */
export * from '../../src/core/index.ts';
export { Rng } from '../../src/util/rng.ts';
