/** Public API of the config layer: llm.yaml-style files, validated and frozen. */
export { loadLlmConfig, parseLlmConfig, validateLlmConfig, type LoadLlmConfigOptions } from './load.ts';
export { applyOverrides, type Overrides } from './overrides.ts';
export { DEFAULT_LLM_CONFIG, type LlmConfig, type LrSchedule } from './schema.ts';
