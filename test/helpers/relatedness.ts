// Test-side reference of the pairwise pass's relatedness sums (the contract of engine-v2): for
// one tensor of two models, over the positions where both are finite, the means, population
// variances, sum of squared differences, 1 - r computed directly, and the Pearson r between
// a[p] and b[p + s R] (s = 1, 2; R = rowElems: rows shifted by one and two) over the same
// positions p for both shifts (those with p + 2R inside the tensor and the three values
// finite; the pass samples windows of them, this reference takes them all). Two passes in
// float64.
import type { TensorSums } from '../../lib/method/relatedness';

function pearsonOneMinus(a: number[], b: number[]): { n: number; ma: number; mb: number; va: number; vb: number; omr: number; sumSq: number } {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let k = 0; k < n; k++) { ma += a[k]; mb += b[k]; }
  ma /= n; mb /= n;
  let va = 0, vb = 0, dd = 0, ss = 0;
  for (let k = 0; k < n; k++) {
    const x = a[k] - ma, y = b[k] - mb;
    va += x * x; vb += y * y; dd += (x - y) * (x - y); ss += (a[k] - b[k]) * (a[k] - b[k]);
  }
  va /= n; vb /= n;
  const sa = Math.sqrt(va), sb = Math.sqrt(vb);
  const omr = sa > 0 && sb > 0 ? (dd / n - (sa - sb) * (sa - sb)) / (2 * sa * sb) : NaN;
  return { n, ma, mb, va, vb, omr, sumSq: ss };
}

/** The sums of one tensor of the pair (a, b), each `rows` x `rowElems` (1-D: rowElems = 1). */
export function tensorSums(name: string, a: ArrayLike<number>, b: ArrayLike<number>, rows: number, rowElems: number): TensorSums {
  const xa: number[] = [], xb: number[] = [];
  let skipped = 0;
  for (let k = 0; k < rows * rowElems; k++) {
    if (Number.isFinite(a[k]) && Number.isFinite(b[k])) { xa.push(a[k]); xb.push(b[k]); } else skipped++;
  }
  const main = xa.length ? pearsonOneMinus(xa, xb) : { n: 0, ma: NaN, mb: NaN, va: NaN, vb: NaN, omr: NaN, sumSq: 0 };
  const R = rowElems;
  const ok: number[] = [];
  for (let p = 0; p + 2 * R < rows * R; p++) if (Number.isFinite(a[p]) && Number.isFinite(b[p + R]) && Number.isFinite(b[p + 2 * R])) ok.push(p);
  const shift = (s: number) => {
    if (ok.length === 0) return { r: NaN, n: 0 };
    const p = pearsonOneMinus(ok.map((q) => a[q]), ok.map((q) => b[q + s * R]));
    return { r: 1 - p.omr, n: p.n };
  };
  const s1 = shift(1), s2 = shift(2);
  return {
    name, count: main.n, skipped, sumSq: main.sumSq, meanA: main.ma, meanB: main.mb, varA: main.va, varB: main.vb,
    oneMinusR: main.omr, rShift1: s1.r, rShift2: s2.r, nShift1: s1.n, nShift2: s2.n,
  };
}
