/** Largest |a - b| over the largest |b|: the relative difference the kernel tests and the card's block check use. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let j = 0; j < b.length; j++) {
    err = Math.max(err, Math.abs(a[j] - b[j]));
    scale = Math.max(scale, Math.abs(b[j]));
  }
  return err / scale;
}
