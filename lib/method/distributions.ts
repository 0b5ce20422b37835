// Helpers of stage 4 of the pipeline (families): the distributions the relatedness test needs,
// in float64 with their far tails (the test reports p-values of 1e-30 and beyond, so the upper
// tails are computed on the log scale instead of as 1 - cdf).
//   - the standard normal: upper tail and its logarithm, quantile;
//   - Student's t with nu degrees of freedom: upper tail (and its logarithm) from the
//     regularised incomplete beta function, quantile.
// Checked against scipy.stats in test/distributions.test.ts (values computed there once and
// written into the test).
import { MotherError } from '../core/errors';

const LN10 = Math.log(10);
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** log Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 digits). */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new MotherError('ERR_INVALID_ARGUMENT', `logGamma needs x > 0, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const y = x - 1;
  let a = c[0];
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (y + i);
  return LOG_SQRT_2PI + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * log Q(a, x), the regularised upper incomplete gamma function, for x > 0: the series of P for
 * x < a + 1, the continued fraction of Q beyond (Lentz's algorithm), both on the log scale.
 */
function logUpperGamma(a: number, x: number): number {
  const logFront = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-17) break;
    }
    return Math.log1p(-Math.exp(logFront + Math.log(sum)));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return logFront + Math.log(h);
}

/** log erfc(x) for x >= 0: erfc(x) = Q(1/2, x^2). */
function logErfcPositive(x: number): number {
  if (x === 0) return 0;
  if (x === Infinity) return -Infinity;
  return logUpperGamma(0.5, x * x);
}

/** P(Z > z) for a standard normal Z. */
export function normalSf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  return z >= 0 ? 0.5 * Math.exp(logErfcPositive(z / Math.SQRT2)) : 1 - 0.5 * Math.exp(logErfcPositive(-z / Math.SQRT2));
}

/** log10 P(Z > z), finite far beyond where the tail underflows. */
export function normalLog10Sf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < 0) return Math.log10(normalSf(z));
  return (Math.log(0.5) + logErfcPositive(z / Math.SQRT2)) / LN10;
}

/** The standard normal quantile: z with P(Z <= z) = p (Acklam's start, Newton steps on the log tail). */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new MotherError('ERR_INVALID_ARGUMENT', `a probability must be in [0, 1], got ${p}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  return p < 0.5 ? -normalUpperQuantile(p) : normalUpperQuantile(1 - p);
}

/** y > 0 with P(Z > y) = q, for 0 < q < 1/2. */
function normalUpperQuantile(q: number): number {
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  let y: number;
  if (q < 0.02425) {
    const s = Math.sqrt(-2 * Math.log(q));
    y = -(((((c[0] * s + c[1]) * s + c[2]) * s + c[3]) * s + c[4]) * s + c[5]) / ((((d[0] * s + d[1]) * s + d[2]) * s + d[3]) * s + 1);
  } else {
    const s = q - 0.5;
    const r = s * s;
    y = -((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * s) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  // Newton on g(y) = ln P(Z > y) - ln q: g'(y) = -phi(y) / P(Z > y)
  const logq = Math.log(q);
  for (let i = 0; i < 8; i++) {
    const logSf = normalLog10Sf(y) * LN10;
    const logPhi = -0.5 * y * y - LOG_SQRT_2PI;
    const step = (logSf - logq) * Math.exp(logSf - logPhi);
    y += step;
    if (Math.abs(step) <= 1e-15 * Math.abs(y)) break;
  }
  return y;
}

/**
 * log of the regularised incomplete beta I_x(a, b) for 0 < x < 1 with x < (a + 1) / (a + b + 2)
 * (where the continued fraction converges fast; Lentz's algorithm).
 */
function logIncompleteBetaSmall(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let f = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    f *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const logFront = a * Math.log(x) + b * Math.log1p(-x) - (logGamma(a) + logGamma(b) - logGamma(a + b)) - Math.log(a);
  return logFront + Math.log(f);
}

/** log I_x(a, b), the regularised incomplete beta function, 0 <= x <= 1. */
function logIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return -Infinity;
  if (x >= 1) return 0;
  if (x < (a + 1) / (a + b + 2)) return logIncompleteBetaSmall(x, a, b);
  return Math.log1p(-Math.exp(logIncompleteBetaSmall(1 - x, b, a)));
}

function checkDof(nu: number): void {
  if (!(nu > 0)) throw new MotherError('ERR_INVALID_ARGUMENT', `degrees of freedom must be > 0, got ${nu}`);
}

/** Beyond this many degrees of freedom Student's t is the normal to double precision in the tails used here. */
const NORMAL_DOF = 1e7;

/** log10 P(T > t) for Student's t with nu degrees of freedom. */
export function studentLog10Sf(t: number, nu: number): number {
  checkDof(nu);
  if (Number.isNaN(t)) return NaN;
  if (nu >= NORMAL_DOF) return normalLog10Sf(t);
  if (t === Infinity) return -Infinity;
  if (t === -Infinity) return 0;
  // P(T > |t|) = I_{nu / (nu + t^2)}(nu / 2, 1 / 2) / 2
  const x = nu / (nu + t * t);
  const logHalfTail = logIncompleteBeta(x, nu / 2, 0.5) + Math.log(0.5);
  if (t >= 0) return logHalfTail / LN10;
  return Math.log1p(-Math.exp(logHalfTail)) / LN10;
}

/** P(T > t) for Student's t with nu degrees of freedom. */
export function studentSf(t: number, nu: number): number {
  return 10 ** studentLog10Sf(t, nu);
}

/** The quantile of Student's t: t with P(T > t) = q (upper-tail probability q in (0, 1)). */
export function studentUpperQuantile(q: number, nu: number): number {
  checkDof(nu);
  if (!(q > 0 && q < 1)) throw new MotherError('ERR_INVALID_ARGUMENT', `an upper-tail probability must be in (0, 1), got ${q}`);
  if (nu >= NORMAL_DOF) return -normalQuantile(q);
  if (q > 0.5) return -studentUpperQuantile(1 - q, nu);
  const target = Math.log10(q);
  // bracket on the upper side, then bisect on log10 sf (monotone decreasing in t)
  let lo = 0;
  let hi = Math.max(1, -normalQuantile(q));
  while (studentLog10Sf(hi, nu) > target) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (studentLog10Sf(mid, nu) > target) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}
