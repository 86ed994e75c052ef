/** Looks up and checks the reference model's parameters: a Map from DESIGN's tensor names to Float64Array. */
import type { Dims, ModelConfig } from '../../../src/core/config.ts';
import { modelParams } from '../../../src/core/params.ts';

export type RefParams = ReadonlyMap<string, Float64Array>;

/** The tensor called `name`; a missing one is a wrong name somewhere, so fail loudly. */
export function need(params: RefParams, name: string): Float64Array {
  const t = params.get(name);
  if (!t) throw new Error(`reference parameter ${name} expected in the map, but it is missing. Hint: names follow src/core/params.ts.`);
  return t;
}

/** The tensor `name`, or null when absent (the conv of a ker_size 0 model). */
export function maybe(params: RefParams, name: string): Float64Array | null {
  return params.get(name) ?? null;
}

/**
 * Every name of modelParams(dims) must be present with prod(shape) values, and nothing else (a stray
 * name is a misspelling). A tied model may omit head.weight.
 */
export function checkParams(config: ModelConfig, dims: Dims, params: RefParams): void {
  const specs = modelParams(dims);
  const known = new Set(specs.map((s) => s.name));
  for (const spec of specs) {
    const t = params.get(spec.name);
    if (!t) {
      if (spec.name === 'head.weight' && config.tie_weights) continue;
      throw new Error(`reference parameter ${spec.name} expected in the map, but it is missing. Hint: build the map with refInit or from modelParams.`);
    }
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (t.length !== size) {
      throw new Error(`reference parameter ${spec.name} expected ${size} values (shape [${spec.shape.join(', ')}]), but got ${t.length}.`);
    }
  }
  for (const name of params.keys()) {
    if (!known.has(name)) throw new Error(`reference parameter ${name} expected to be one of modelParams' names, but it is not.`);
  }
}
