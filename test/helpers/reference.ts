// Independent float64 reference for the statistics, and seeded random data.
// Corrected two-pass algorithm (Chan, Golub & LeVeque 1983) with compensated (Neumaier)
// sums: the mean first, then sums of d = x - mean, d^2, d^3, d^4, and the residual
// c = sum(d)/n (the rounding error of the mean) folded in exactly.

// Global lookups (Math.*, Number.*) are slow inside jest's VM context: alias them once.
const { abs, sqrt, log, cos, imul, PI } = Math;
const { isNaN: isNaNum, isFinite: isFin } = Number;

/** Uniform numbers in [0, 1) as a function: the sequence of new Rng(seed).next(). */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1) (mulberry32). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    return sqrt(-2 * log(u)) * cos(2 * PI * this.next());
  }
  /** Student-t with `df` degrees of freedom (heavy tails for small df). */
  studentT(df: number): number {
    let chi2 = 0;
    for (let i = 0; i < df; i++) chi2 += this.normal() ** 2;
    return this.normal() / sqrt(chi2 / df);
  }
}

class Neumaier {
  sum = 0;
  c = 0;
  add(x: number): void {
    const t = this.sum + x;
    if (abs(this.sum) >= abs(x)) this.c += this.sum - t + x;
    else this.c += x - t + this.sum;
    this.sum = t;
  }
  get value(): number {
    return this.sum + this.c;
  }
}

export interface RefStats {
  finite: number;
  mean: number;
  std: number;
  skewness: number;
  kurtosis: number;
  min: number;
  max: number;
  l2: number;
  absMean: number;
  nan: number;
  inf: number;
}

export function refStats(x: ArrayLike<number>): RefStats {
  let nan = 0;
  let inf = 0;
  let finite = 0;
  let min = Infinity;
  let max = -Infinity;
  const s1 = new Neumaier();
  const sa = new Neumaier();
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (isNaNum(v)) nan++;
    else if (!isFin(v)) inf++;
    else {
      finite++;
      s1.add(v);
      sa.add(abs(v));
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (finite === 0) {
    return { finite, mean: NaN, std: NaN, skewness: NaN, kurtosis: NaN, min: NaN, max: NaN, l2: 0, absMean: NaN, nan, inf };
  }
  const mean = s1.value / finite;
  const sd = new Neumaier();
  const s2 = new Neumaier();
  const s3 = new Neumaier();
  const s4 = new Neumaier();
  const sq = new Neumaier();
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!isFin(v)) continue;
    const d = v - mean;
    const d2 = d * d;
    sd.add(d);
    s2.add(d2);
    s3.add(d2 * d);
    s4.add(d2 * d2);
    sq.add(v * v);
  }
  const c = sd.value / finite;
  const m2 = (s2.value - finite * c * c) / finite;
  const m3 = (s3.value - 3 * c * s2.value + 2 * finite * c ** 3) / finite;
  const m4 = (s4.value - 4 * c * s3.value + 6 * c * c * s2.value - 3 * finite * c ** 4) / finite;
  const zero = m2 <= (1e-15 * (mean + c)) ** 2; // scipy's rule for constant data
  return {
    finite,
    mean: mean + c,
    std: sqrt(m2),
    skewness: zero ? NaN : m3 / m2 ** 1.5,
    kurtosis: zero ? NaN : m4 / (m2 * m2) - 3,
    min,
    max,
    l2: sqrt(sq.value),
    absMean: sa.value / finite,
    nan,
    inf,
  };
}

/** |a - b| <= rel * max(|b|, floor); NaN matches NaN. */
export function close(a: number, b: number, rel: number, floor = 0): boolean {
  if (isNaNum(b)) return isNaNum(a);
  if (!isFin(b)) return a === b;
  return abs(a - b) <= rel * Math.max(abs(b), floor);
}
