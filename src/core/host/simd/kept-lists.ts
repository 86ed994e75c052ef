/**
 * The sampling rules over explicit lists of token ids, in float64 JavaScript: the nucleus of a list, the
 * inverse-CDF draw over a list in id order, and the threshold that a list's largest logits reach. A list is
 * its ids in id order with their logits beside them (ls[i] is the logit of ids[i]), so that nothing here reads
 * scattered places of the row. The SIMD sampler runs them on the few ids its passes leave; the scalar sampler
 * on lists it builds itself.
 */

export interface IdList {
  readonly ids: Int32Array;
  readonly ls: Float32Array;
}

/** The list of `ids` (in id order) of a row. */
export const listOf = (logits: Float32Array, ids: Int32Array): IdList => ({ ids, ls: Float32Array.from(ids, (j) => logits[j]) });

/** e^((l - max) invT): a token's tempered weight relative to the row's largest. */
const weightOf = (l: number, max: number, invT: number): number => Math.exp((l - max) * invT);

/**
 * The nucleus of a list: sorted by logit (lower id first among equals), the shortest prefix whose weight
 * reaches topP of the list's, plus every token tied with the last one kept; returned in id order.
 */
export function nucleusOf(list: IdList, max: number, invT: number, topP: number): IdList {
  const { ids, ls } = list;
  // Positions sorted by logit, then position (so lower id) first among equals.
  const order = Array.from(ids, (_, i) => i).sort((a, b) => ls[b] - ls[a] || a - b);
  let total = 0;
  for (const i of order) total += weightOf(ls[i], max, invT);
  let mass = 0;
  let cut = order.length;
  for (let n = 0; n < order.length; n++) {
    mass += weightOf(ls[order[n]], max, invT);
    if (mass >= topP * total) {
      cut = n + 1;
      while (cut < order.length && ls[order[cut]] === ls[order[n]]) cut++;
      break;
    }
  }
  const kept = Int32Array.from(order.slice(0, cut)).sort();
  return { ids: kept.map((i) => ids[i]), ls: Float32Array.from(kept, (i) => ls[i]) };
}

/** Inverse CDF over a list (in id order) at u in [0, 1): the first id whose cumulative weight passes u of the total. */
export function drawFrom(list: IdList, max: number, invT: number, u: number): number {
  const { ids, ls } = list;
  let total = 0;
  for (let i = 0; i < ids.length; i++) total += weightOf(ls[i], max, invT);
  let left = u * total;
  let last = ids[ids.length - 1];
  for (let i = 0; i < ids.length; i++) {
    const w = weightOf(ls[i], max, invT);
    if (w === 0) continue;
    left -= w;
    last = ids[i];
    if (left < 0) return ids[i];
  }
  return last;
}

/** Positions in a list fit below this; with the 32 bits of a logit above them a key stays an exact double. */
const POSITIONS = 2 ** 20;

/**
 * The largest logit v of a list (logits ls, weights ws beside them) such that the entries with logit >= v
 * weigh at least `needed` (ws null: each weighs 1, so v is the needed-th largest logit, -Infinity included).
 * NaN logits, and with weights -Infinity and weightless entries, never count. When the list weighs less than
 * `needed` (rounding), its smallest counted logit; -Infinity when nothing counts. Sorts once, natively: each
 * key is the logit's bits mapped to an order-preserving integer, times POSITIONS, plus the entry's position.
 */
export function largestReaching(ls: Float32Array, ws: Float32Array | null, needed: number): number {
  if (ls.length >= POSITIONS) throw new RangeError(`largestReaching expected fewer than ${POSITIONS} entries, but got ${ls.length}`);
  const bits = new Uint32Array(ls.buffer, ls.byteOffset, ls.length);
  const keys = new Float64Array(ls.length);
  let n = 0;
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i];
    if (l !== l || (ws && !(ws[i] > 0 && l > -Infinity))) continue;
    const b = bits[i];
    // Negative floats order by their complemented bits, the others above them with the sign bit set.
    const ordered = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
    keys[n++] = ordered * POSITIONS + i;
  }
  if (n === 0) return -Infinity;
  const sorted = keys.subarray(0, n).sort();
  const position = (key: number): number => key - Math.floor(key / POSITIONS) * POSITIONS;
  let mass = 0;
  for (let r = n - 1; r >= 0; r--) {
    const i = position(sorted[r]);
    mass += ws ? ws[i] : 1;
    if (mass >= needed) return ls[i];
  }
  return ls[position(sorted[0])];
}
