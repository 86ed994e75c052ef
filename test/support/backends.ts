/** The backends the test suite runs on: every one installable on a CPU-only machine. */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const;
