/** The tokenizer layer's public API: GPT-2 byte-level BPE and its incremental detokeniser. */
export { Tokenizer } from './tokenizer.ts';
export { StreamDecoder } from './stream-decoder.ts';
export { buildGpt2TokenizerJson, EOS_ID, EOS_TOKEN, PAD_ID, PAD_TOKEN } from './gpt2-json.ts';
