/** Incremental detokeniser: turns token ids into text one id at a time, never emitting half a UTF-8 character. */
import type { Tokenizer } from './tokenizer.ts';

/**
 * push(id) returns the characters completed by that token (often '', when a character's bytes are split over
 * tokens; the character then comes whole with its last byte). flush() returns what is left, incomplete bytes as
 * U+FFFD, and makes the decoder reusable. The concatenation of every push and the flush equals
 * tokenizer.decode(ids): both follow the WHATWG UTF-8 decoder, whose output does not depend on how the bytes are
 * chunked, and special tokens start with '<', which ends any pending sequence exactly as a separate decode does.
 */
export class StreamDecoder {
  // ignoreBOM keeps a leading U+FEFF, as the tokenizer's decode does.
  private readonly utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(private readonly tokenizer: Tokenizer) {}

  push(id: number): string {
    return this.utf8.decode(this.tokenizer.tokenBytes(id), { stream: true });
  }

  flush(): string {
    return this.utf8.decode();
  }
}
