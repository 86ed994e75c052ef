/**
 * Gradient of BatchMatMul built from explicit transposes and plain matMuls only. On wasm (tfjs 4.22,
 * measured on the 2-core dev machine) a matMul with transposeA/transposeB on one matrix is 5-20x
 * slower than a transpose followed by a plain one ([1024,64]x[64,50258]: dA 2374 vs 242 ms, dB 2546
 * vs 341 ms), while with a real batch (> 1) both run the same slow batched path and tie within noise
 * ([32,128,16]x[32,16,128]: about 7 ms each way). So a batch that is shared by one operand is folded
 * into the matrix rows or columns to get 2-D products, and broadcast batch axes are summed back.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sizeOf, sumToShape, swapLast } from './util.ts';

type T = tf.Tensor;

/**
 * With a' = op(A) [.., m, k] and b' = op(B) [.., k, n] (op transposes when the flag is set),
 * C = a' b' gives dA' = dC b'^T and dB' = a'^T dC; dA and dB are those, transposed back when the
 * flag was set, and summed over the batch axes their input was broadcast along.
 */
function matMulGrads(dC: T, a: T, b: T, transposeA: boolean, transposeB: boolean): { da: () => T; db: () => T } {
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batchC = dC.shape.slice(0, -2);
  const sizeA = sizeOf(batchA);
  const sizeB = sizeOf(batchB);
  const sizeC = sizeOf(batchC);
  const [m, n] = dC.shape.slice(-2);
  const k = transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1];

  // b'^T and a'^T as stored matrices: a flag that was set means the input already is the transpose.
  const bT = (x: T): T => (transposeB ? x : swapLast(x)); // b'^T [.., n, k]
  const aT = (x: T): T => (transposeA ? x : swapLast(x)); // a'^T [.., k, m]
  const finishA = (g: T): T => (transposeA ? swapLast(g) : g); // dA' [.., m, k] -> dA
  const finishB = (g: T): T => (transposeB ? swapLast(g) : g); // dB' [.., k, n] -> dB

  if (sizeB === 1 && sizeA > 1) {
    // B is one matrix shared by every batch of A (a linear layer): fold A's batch into its rows,
    // so both gradients are single 2-D matMuls and dB needs no sum over the batch afterwards.
    const b2 = tf.reshape(b, b.shape.slice(-2));
    const dC2 = tf.reshape(dC, [sizeC * m, n]);
    return {
      da: () => {
        const g = tf.matMul(dC2, bT(b2)); // [C*m, k]
        return tf.reshape(finishA(tf.reshape(g, [sizeC, m, k])), a.shape);
      },
      db: () => {
        // a'^T with the batch folded into the columns: [k, C*m].
        const a3 = tf.reshape(a, [sizeA, ...a.shape.slice(-2)]);
        const aFolded = tf.reshape(tf.transpose(a3, transposeA ? [1, 0, 2] : [2, 0, 1]), [k, sizeA * m]);
        return tf.reshape(finishB(tf.matMul(aFolded, dC2)), b.shape); // [k, n]
      },
    };
  }

  if (sizeA === 1 && sizeB > 1) {
    // A is one matrix shared by every batch of B: dA sums over the batch, done inside one 2-D
    // matMul by folding the batch into the contracted axis.
    const a2 = tf.reshape(a, a.shape.slice(-2));
    const dC3 = tf.reshape(dC, [sizeC, m, n]);
    return {
      da: () => {
        const dCFolded = tf.reshape(tf.transpose(dC3, [1, 0, 2]), [m, sizeC * n]); // [m, C*n]
        const b3 = tf.reshape(b, [sizeB, ...b.shape.slice(-2)]);
        const bFolded = tf.reshape(bT(b3), [sizeB * n, k]); // [C*n, k]
        return tf.reshape(finishA(tf.matMul(dCFolded, bFolded)), a.shape);
      },
      db: () => {
        // dB'_c = a'^T dC_c for every batch c, as one 2-D matMul over dC's batches laid side by side.
        const dCSide = tf.reshape(tf.transpose(dC3, [1, 0, 2]), [m, sizeC * n]); // [m, C*n]
        const g = tf.reshape(tf.matMul(aT(a2), dCSide), [k, sizeC, n]);
        return tf.reshape(finishB(tf.transpose(g, [1, 0, 2])), b.shape); // [C, k, n] -> dB
      },
    };
  }

  // Both batched. tfjs's BatchMatMul pairs batches by index (modulo the smaller batch) and is
  // wrong when both sides broadcast, so unless the batches already match, both operands are
  // expanded to the output's batch explicitly and the gradients summed back afterwards.
  const same = sizeA === sizeC && sizeB === sizeC;
  const lead = sizeC === 1 ? [] : [sizeC];
  const full = (x: T, batch: number[]): T => {
    if (same) return tf.reshape(x, [...lead, ...x.shape.slice(-2)]);
    const ones = new Array(batchC.length - batch.length).fill(1);
    return tf.broadcastTo(tf.reshape(x, [...ones, ...x.shape]), [...batchC, ...x.shape.slice(-2)]);
  };
  const dC3 = same ? tf.reshape(dC, [...lead, m, n]) : dC;
  return {
    da: () => {
      const g = finishA(tf.matMul(dC3, bT(full(b, batchB))));
      return sumToShape(tf.reshape(g, [...batchC, ...g.shape.slice(-2)]), a.shape);
    },
    db: () => {
      const g = finishB(tf.matMul(aT(full(a, batchA)), dC3));
      return sumToShape(tf.reshape(g, [...batchC, ...g.shape.slice(-2)]), b.shape);
    },
  };
}

export const matmulGradients: tf.GradConfig[] = [
  {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => {
      const { da, db } = matMulGrads(dy as T, a, b, attrs.transposeA as boolean, attrs.transposeB as boolean);
      return { a: da, b: db };
    },
  },
];
