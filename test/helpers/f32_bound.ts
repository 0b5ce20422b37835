// The stated error bound of the float32 statistics pass of the 16-bit formats (F16, BF16) on the
// SIMD paths (native/stats/block_h.inc; README, "Accuracy of the 16-bit SIMD path"), evaluated
// on given values. The pass sums the powers of d = x - K over blocks of 2048 elements, K each
// block's shift, with every block sum of (x - K)^j within EPS * sum |x - K|^j, and accepts a
// block only when |K - block mean| <= block std / 4; the blocks are merged exactly (float64).
// The tensor's M_k = sum (x - mu)^k (mu the mean) is then an exact function of the block sums,
// M_k = sum_b sum_j C(k, j) (K_b - mu)^(k - j) S_bj, so to first order in EPS, with
//   p = |x - mean_b| + std_b / 4 >= |x - K_b|,   q_b = |mean_b - mu| + std_b / 4 >= |K_b - mu|,
//   R_k = sum over the elements of (p + q_b)^k - q_b^k   (>= sum_j>=1 C(k, j) q^(k-j) p^j):
//   |d mean| <= EPS R_1 / n      |d M_2| <= EPS R_2
//   |d M_3| <= EPS (R_3 + 3 M_2 R_1 / n)      |d M_4| <= EPS (R_4 + 4 |M_3| R_1 / n)
//   |d sum |x|| <= EPS sum |x|
// (the R_1 terms: the mean moves with the block sums of d), and the statistics follow (std =
// sqrt(M_2 / n), skewness = sqrt(n) M_3 / M_2^1.5, kurtosis = n M_4 / M_2^2 - 3, l2 =
// sqrt(M_2 + n mu^2)). Blocks the pass hands to the float64 kernel (the first of each call,
// NaN/Inf, far shifts, under/overflow) are far inside it.

const { abs, sqrt } = Math; // global lookups are slow in jest's VM context
const { isFinite: isFin } = Number;

/** (kRun + 8) 2^-24, kRun = 32 float32 additions per lane before a fold into float64. */
export const F32_EPS = 40 * 2 ** -24;
/** The kernels' block (kBlock in native/stats/kernels.h). */
export const BLOCK = 2048;

export interface StatBound {
  mean: number;
  std: number;
  skewness: number;
  kurtosis: number;
  l2: number;
  absMean: number;
}

/** True for the dtypes and paths the bound is for (the scalar path is float64 throughout). */
export function usesF32Pass(dtype: string, simd: string): boolean {
  return (dtype === 'F16' || dtype === 'BF16') && simd !== 'scalar';
}

/** Absolute error bounds of the statistics of `values` (decoded, in the order the kernel reads
 *  them, blocks counted from the first) on the float32 pass. */
export function f32Bound(values: ArrayLike<number>, eps = F32_EPS, block = BLOCK): StatBound {
  let n = 0;
  let s = 0;
  let sa = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!isFin(v)) continue;
    n++;
    s += v;
    sa += abs(v);
  }
  const zero: StatBound = { mean: 0, std: 0, skewness: 0, kurtosis: 0, l2: 0, absMean: 0 };
  if (n === 0) return zero;
  let mu = s / n;
  let c = 0;
  for (let i = 0; i < values.length; i++) if (isFin(values[i])) c += values[i] - mu;
  mu += c / n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  let r1 = 0;
  let r2 = 0;
  let r3 = 0;
  let r4 = 0;
  for (let b0 = 0; b0 < values.length; b0 += block) {
    const b1 = Math.min(values.length, b0 + block);
    let nb = 0;
    let sb = 0;
    for (let i = b0; i < b1; i++) if (isFin(values[i])) { nb++; sb += values[i]; }
    if (nb === 0) continue;
    const mb = sb / nb;
    let vb = 0;
    for (let i = b0; i < b1; i++) if (isFin(values[i])) vb += (values[i] - mb) ** 2;
    const sb4 = sqrt(vb / nb) / 4;
    const q = abs(mb - mu) + sb4;
    for (let i = b0; i < b1; i++) {
      const v = values[i];
      if (!isFin(v)) continue;
      const e = v - mu;
      const e2 = e * e;
      m2 += e2;
      m3 += e2 * e;
      m4 += e2 * e2;
      // (p + q)^k - q^k, expanded (no cancellation when p << q)
      const p = abs(v - mb) + sb4;
      const p2 = p * p;
      r1 += p;
      r2 += p2 + 2 * p * q;
      r3 += p2 * p + 3 * p2 * q + 3 * p * q * q;
      r4 += p2 * p2 + 4 * p2 * p * q + 6 * p2 * q * q + 4 * p * q * q * q;
    }
  }
  const dMean = (eps * r1) / n;
  const dM2 = eps * r2;
  const dM3 = eps * (r3 + (3 * m2 * r1) / n);
  const dM4 = eps * (r4 + (4 * abs(m3) * r1) / n);
  const std = sqrt(m2 / n);
  const l2 = sqrt(m2 + n * mu * mu);
  const out: StatBound = {
    mean: dMean,
    std: std > 0 ? dM2 / n / (2 * std) : sqrt(dM2 / n),
    skewness: 0,
    kurtosis: 0,
    l2: l2 > 0 ? (dM2 + 2 * n * abs(mu) * dMean) / (2 * l2) : 0,
    absMean: (eps * sa) / n,
  };
  if (m2 > 0) {
    const g1 = (sqrt(n) * m3) / m2 ** 1.5;
    const b2 = (n * m4) / (m2 * m2);
    out.skewness = (sqrt(n) * dM3) / m2 ** 1.5 + 1.5 * abs(g1) * (dM2 / m2);
    out.kurtosis = (n * dM4) / (m2 * m2) + 2 * b2 * (dM2 / m2);
  }
  return out;
}
