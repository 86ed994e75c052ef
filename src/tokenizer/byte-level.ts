/** GPT-2's reversible byte <-> character alphabet, in which every byte-level BPE token is spelled. */

/**
 * Bytes that are printable Latin-1 stand for themselves; the other 68 (controls, space, NBSP, soft hyphen)
 * are moved, in byte order, to U+0100 upwards so that no token contains whitespace or control characters.
 */
function isSelfPrintable(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

/** The character code standing for each byte (index = byte). */
const BYTE_TO_CODE: readonly number[] = (() => {
  const codes: number[] = [];
  let moved = 0;
  for (let b = 0; b < 256; b++) codes.push(isSelfPrintable(b) ? b : 0x100 + moved++);
  return codes;
})();

/** The byte each character code stands for, -1 for codes outside the alphabet. */
const CODE_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x100 + 68).fill(-1);
  BYTE_TO_CODE.forEach((code, b) => (table[code] = b));
  return table;
})();

/**
 * Writes the bytes a byte-level token stands for into `out` from `offset`, returning the count, or -1 when the
 * token has a character outside the alphabet (so it is not a byte-level token). `out` needs token.length room.
 */
export function byteLevelToBytesInto(token: string, out: Uint8Array, offset: number): number {
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i);
    const b = code < CODE_TO_BYTE.length ? CODE_TO_BYTE[code] : -1;
    if (b < 0) return -1;
    out[offset + i] = b;
  }
  return token.length;
}
