/** A character tokenizer with a 64-token vocabulary (62 characters, eos, pad), for tiny-model training tests. */
import type { TextCodec } from '../../../src/train/index.ts';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export class CharCodec implements TextCodec {
  readonly eosId = 62;
  readonly padId = 63;
  readonly vocabSize = 64;

  encode(text: string): number[] {
    return [...text].map((ch) => {
      const id = ALPHABET.indexOf(ch);
      if (id < 0) throw new Error(`CharCodec cannot encode ${JSON.stringify(ch)}`);
      return id;
    });
  }

  decode(ids: readonly number[]): string {
    return ids.map((id) => (id < ALPHABET.length ? ALPHABET[id] : id === this.eosId ? '|' : '_')).join('');
  }

  toJson(): string {
    return JSON.stringify({ type: 'char', alphabet: ALPHABET });
  }
}
