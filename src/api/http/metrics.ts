/** Prometheus metrics of one server (its own registry, so several servers can share a process in tests). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { ServeObserver } from '../../serve/index.ts';
import { publicCode } from '../schema/index.ts';

export interface ApiMetrics {
  readonly registry: Registry;
  /** Hand this to serve/ so generation reports tokens and latencies. */
  readonly observer: ServeObserver;
  /** A GraphQL operation started (query, mutation or subscription) over a transport. */
  operation(transport: 'http' | 'ws', type: string): void;
  /** An error reached a client with this extensions.code. */
  failure(code: string): void;
  /** Where the active and queued gauges read from, once the serving side exists. */
  watch(counts: () => { active: number; queued: number }): void;
  /** Where the tfjs memory gauges read from (the composition root knows tfjs; this layer does not). */
  watchMemory(memory: () => { numTensors: number; numBytes: number }): void;
  render(): Promise<string>;
  readonly contentType: string;
}

const PREFIX = 'xlstm_';

export function createMetrics(): ApiMetrics {
  const registry = new Registry();
  let counts = (): { active: number; queued: number } => ({ active: 0, queued: 0 });
  let memory = (): { numTensors: number; numBytes: number } | null => null;
  const requests = new Counter({
    name: `${PREFIX}graphql_requests_total`,
    help: 'GraphQL operations started, by transport and operation type.',
    labelNames: ['transport', 'operation'] as const,
    registers: [registry],
  });
  const failures = new Counter({
    name: `${PREFIX}failures_total`,
    help: 'Errors sent to clients (GraphQL errors and ErrorEvents), by extensions.code.',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const generateRequests = new Counter({
    name: `${PREFIX}generate_requests_total`,
    help: 'Generate requests accepted.',
    registers: [registry],
  });
  const prompts = new Counter({ name: `${PREFIX}generate_prompts_total`, help: 'Prompts accepted.', registers: [registry] });
  const tokens = new Counter({ name: `${PREFIX}tokens_generated_total`, help: 'Tokens generated.', registers: [registry] });
  new Gauge({
    name: `${PREFIX}active_sequences`,
    help: 'Sequences in running batches.',
    registers: [registry],
    collect() {
      this.set(counts().active);
    },
  });
  new Gauge({
    name: `${PREFIX}queued_sequences`,
    help: 'Sequences waiting for a batch row.',
    registers: [registry],
    collect() {
      this.set(counts().queued);
    },
  });
  // RSS and tfjs memory: what a soak compares at its start and end to see whether anything leaks.
  new Gauge({
    name: `${PREFIX}process_resident_memory_bytes`,
    help: 'Resident set size of the server process.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: `${PREFIX}tf_tensors`,
    help: 'tfjs tensors alive (tf.memory().numTensors).',
    registers: [registry],
    collect() {
      const m = memory();
      if (m) this.set(m.numTensors);
    },
  });
  new Gauge({
    name: `${PREFIX}tf_bytes`,
    help: 'Bytes held by tfjs tensors (tf.memory().numBytes).',
    registers: [registry],
    collect() {
      const m = memory();
      if (m) this.set(m.numBytes);
    },
  });
  const ttft = new Histogram({
    name: `${PREFIX}time_to_first_token_seconds`,
    help: "From a prompt's admission to the scheduler to its first token.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const itl = new Histogram({
    name: `${PREFIX}inter_token_latency_seconds`,
    help: 'Between two tokens of one sequence.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const observer: ServeObserver = {
    requestStarted(n) {
      generateRequests.inc();
      prompts.inc(n);
    },
    streamError(code) {
      failures.inc({ code: publicCode(code) });
    },
    firstToken(seconds) {
      ttft.observe(seconds);
    },
    interToken(seconds) {
      itl.observe(seconds);
    },
    tokensGenerated(count) {
      if (count > 0) tokens.inc(count);
    },
  };
  return {
    registry,
    observer,
    operation(transport, type) {
      requests.inc({ transport, operation: type });
    },
    failure(code) {
      failures.inc({ code });
    },
    watch(source) {
      counts = source;
    },
    watchMemory(source) {
      memory = source;
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
