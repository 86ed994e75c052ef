/** Streaming UTF-8 validation that reports the exact byte offset of the first NUL byte or malformed sequence. */

export interface ScanIssue {
  readonly kind: 'nul' | 'utf8';
  /** Byte offset in the whole stream: the NUL byte, or the first byte of the malformed sequence. */
  readonly offset: number;
}

/**
 * TextDecoder's fatal mode says that a file is malformed but not where, so this follows the
 * WHATWG decoder's byte ranges (no overlongs, no surrogates, nothing above U+10FFFF) itself.
 * State carries across push() calls, so chunks may end inside a character.
 */
export class Utf8Scanner {
  private need = 0;
  private lower = 0x80;
  private upper = 0xbf;
  private sequenceStart = 0;
  private consumed = 0;

  /** Scans the next chunk; returns the first issue, after which the scanner must not be used. */
  push(chunk: Uint8Array): ScanIssue | null {
    const base = this.consumed;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (this.need === 0) {
        if (b < 0x80) {
          if (b === 0) return { kind: 'nul', offset: base + i };
          continue;
        }
        this.sequenceStart = base + i;
        if (b >= 0xc2 && b <= 0xdf) {
          this.need = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
          if (b === 0xe0) this.lower = 0xa0;
          if (b === 0xed) this.upper = 0x9f;
          this.need = 2;
        } else if (b >= 0xf0 && b <= 0xf4) {
          if (b === 0xf0) this.lower = 0x90;
          if (b === 0xf4) this.upper = 0x8f;
          this.need = 3;
        } else {
          return { kind: 'utf8', offset: base + i };
        }
      } else {
        if (b < this.lower || b > this.upper) return { kind: 'utf8', offset: this.sequenceStart };
        this.lower = 0x80;
        this.upper = 0xbf;
        this.need -= 1;
      }
    }
    this.consumed += chunk.length;
    return null;
  }

  /** Call at the end of the stream: a character cut off by the end of the file is an issue. */
  end(): ScanIssue | null {
    return this.need > 0 ? { kind: 'utf8', offset: this.sequenceStart } : null;
  }
}
