/** Finds stop strings in streamed text, looking only at a window as long as the longest stop string. */
export class StopMatcher {
  private tail = '';
  private readonly keep: number;

  constructor(private readonly stops: readonly string[]) {
    this.keep = Math.max(0, ...stops.map((s) => s.length)) - 1;
  }

  /**
   * Feeds the next piece of decoded text. Returns -1 when no stop string ends inside it, else the length of the
   * piece's prefix that ends right after the earliest completed stop string.
   */
  feed(piece: string): number {
    if (this.stops.length === 0 || piece === '') return -1;
    const window = this.tail + piece;
    let best = -1;
    for (const stop of this.stops) {
      // Search from where a match could still end inside the new piece, so old matches are not found again.
      const from = Math.max(0, this.tail.length - stop.length + 1);
      const at = window.indexOf(stop, from);
      if (at >= 0) {
        const end = at + stop.length - this.tail.length;
        if (best < 0 || end < best) best = end;
      }
    }
    this.tail = this.keep > 0 ? window.slice(-this.keep) : '';
    return best;
  }
}
