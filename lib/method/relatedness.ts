// Stage 4 of the pipeline (families): are two models related (one derived from the other, or
// both from a common ancestor), from the weights alone, as a calibrated independence test.
//
// The physics. Models fine-tuned from a common ancestor keep correlated weights. Independently
// initialised runs of one architecture do not: their hidden units come in arbitrary order, so
// their weight matrices are like independent random matrices. The evidence per compared tensor
// is the Pearson correlation r of the two tensors; the null is measured from the same pass: the
// correlation between the rows of one model and the rows of the other shifted by s = 1 and 2
// rows (rShift1, rShift2). A shift breaks any real relation, and keeps what all row pairings
// share (structure fixed by the data or the architecture, such as spatial taps of a
// convolution or a shared mean), so it is subtracted; how much the shifted correlations of two
// different shifts differ measures the spread of the statistic under the null, which is
// larger than i.i.d. theory gives when the weights have shared structure.
//
// The statistic, per pair (i, j), over the comparable tensors t with n_t positions compared
// and n1_t, n2_t positions in the two shifted comparisons (Fisher's z = atanh):
//   dz_t  = atanh(r_t) - (atanh(r1_t) + atanh(r2_t)) / 2          excess over the shifted null
//   v_t   = 1/(n_t - 3) + (1/(n1_t - 3) + 1/(n2_t - 3)) / 4        its i.i.d. variance
//   w_t   = 1 / v_t
//   Z     = sum_t w_t dz_t / sqrt(sum_t w_t)                       N(0, 1) under an i.i.d. null
//   d'_t  = (atanh(r1_t) - atanh(r2_t)) / sqrt(1/(n1_t - 3) + 1/(n2_t - 3))   a null draw
// The null variance kappa of Z is measured, not assumed: kappa = sum w_t d'_t^2 / sum w_t over
// every tensor of every pair tested together (recover: the comparability group; related: the
// pairs of the command), at least 1 (the i.i.d. value); the pairs found related in a first
// round are then left out of the measurement and the test is run again (their shifted
// correlations are not null draws: neighbouring rows of related models still correlate). The
// calibrated statistic is z = Z / sqrt(kappa), referred to Student's t with as many degrees of
// freedom as null draws went into kappa; the test is one-sided (related models correlate
// positively).
//
// The decision, with m the number of pairs tested together, alpha = 0.01 (Bonferroni: the
// chance that any independent pair of the m is called related is at most alpha) and the pooled
// excess correlation e = tanh(sum w dz / sum w) with its confidence bounds at the same level:
//   related     p <= alpha / m and e >= r0 = 0.1 (or the pair is an exact copy: every compared
//               tensor identical): significant, and as strong as a relation (measured:
//               relatives correlate at 0.24-0.999, independent runs at |r| < 0.03); a
//               significant but weaker excess is shared structure or chance, never a family link;
//   unrelated   not related, and the upper bound of e is below r0: any relation of r0 or more
//               is excluded;
//   undecided   otherwise (too little data to tell);
//   not comparable   no tensor could be compared (each model stays in its own family).
// A tensor is left out of a pair's statistic, with the reason, when no position was compared
// (all NaN/Inf), a model's values are constant (r undefined), or it has too few rows for the
// shifted null (fewer than 4 positions in a shifted comparison).
import { MotherError } from '../core/errors';
import { studentLog10Sf, studentUpperQuantile } from './distributions';

/** The family-wise error rate of "related" over the pairs tested together. */
export const RELATEDNESS_ALPHA = 0.01;
/** The weakest relation (excess correlation): "related" needs at least this much, "unrelated" excludes it. */
export const RELATED_R0 = 0.1;
/** 1 - r is floored here (exact copies have 1 - r = 0): atanh(r) <= 18.4. */
const MIN_ONE_MINUS_R = Number.EPSILON;

/**
 * The sums of the pairwise pass for one compared tensor of one pair (i < j: A is model i).
 * These are the per-pair, per-tensor outputs of the native pass with `relatedness: true`.
 */
export interface TensorSums {
  name: string;
  /** Positions compared (finite in both models). */
  count: number;
  /** Positions skipped because either value was NaN or +-Inf. */
  skipped: number;
  /** Sum of (a - b)^2 over the compared positions: exactly 0 when the values are identical. */
  sumSq: number;
  meanA: number;
  meanB: number;
  /** Population variances over the compared positions. */
  varA: number;
  varB: number;
  /** 1 - Pearson r over the compared positions, computed directly; NaN when a variance is 0. */
  oneMinusR: number;
  /** Pearson r between A's row k and B's row k + s, s = 1 and 2; NaN when not computed. */
  rShift1: number;
  rShift2: number;
  /** Positions of each shifted comparison (0 when not computed). */
  nShift1: number;
  nShift2: number;
}

/** One tensor's part in a pair's statistic. */
export interface TensorTerm {
  name: string;
  /** True when the tensor enters the statistic; otherwise `reason` says why not. */
  used: boolean;
  reason?: string;
  count: number;
  /** Pearson r (NaN when undefined). */
  r: number;
  rShift1: number;
  rShift2: number;
  /** Excess Fisher z over the shifted null, and its i.i.d. variance. */
  dz: number;
  variance: number;
  /** The tensor's own z: dz / sqrt(variance) (before the null calibration). */
  z: number;
  /** The null draw d'. */
  nullDraw: number;
  /** Identical values over the compared positions. */
  identical: boolean;
}

/** The statistic of one pair before calibration. */
export interface PairStatistic {
  tensors: TensorTerm[];
  /** Tensors entering the statistic. */
  used: number;
  /** At least one tensor entered the statistic. */
  comparable: boolean;
  /** Every compared tensor holds identical values (and at least one was compared). */
  identical: boolean;
  /** Z (N(0, 1) under an i.i.d. null); NaN when not comparable. */
  rawZ: number;
  /** Pooled correlation tanh(sum w atanh r / sum w), for display; NaN when not comparable. */
  r: number;
  /** Pooled excess correlation over the shifted null, tanh(sum w dz / sum w). */
  excess: number;
  /** Sum of the weights (1 / variance). */
  weight: number;
  /** The pair's own null draws: sum w d'^2, and how many. */
  nullSum: number;
  nullDraws: number;
  /** The pair's own null statistic Z' = sum w d' / sqrt(sum w) (a draw of Z under the null). */
  nullZ: number;
}

/** The measured null. */
export interface NullCalibration {
  /** The variance of Z under the null, as used: max(1, measured). */
  kappa: number;
  /** What the shifted draws gave (NaN without draws). */
  measured: number;
  /** Null draws (tensors) that went in; also the degrees of freedom of the reference t. */
  draws: number;
  /** Pairs whose draws went in. */
  pairs: number;
  /** Pairs left out of the measurement because a first round found them related. */
  excludedRelated: number;
}

export type Verdict = 'related' | 'unrelated' | 'undecided' | 'not comparable';

/** The decision on one pair. */
export interface PairDecision {
  verdict: Verdict;
  /** Calibrated z = Z / sqrt(kappa); null when not comparable. */
  z: number | null;
  /** One-sided p-value of z (Student's t with the null's draws as degrees of freedom); null when not comparable. */
  p: number | null;
  /** log10 of p (finite where p underflows). */
  log10p: number | null;
  /** Pooled correlation r, and the confidence bounds of the excess correlation at the test's level. */
  r: number | null;
  excess: number | null;
  excessLow: number | null;
  excessHigh: number | null;
  /** Every compared tensor identical. */
  identical: boolean;
  /** Tensors in the statistic. */
  tensors: number;
}

export interface RelatednessOptions {
  /** Family-wise error rate of "related" (default RELATEDNESS_ALPHA = 0.01). */
  alpha?: number;
  /** Smallest excess correlation that "unrelated" excludes (default RELATED_R0 = 0.1). */
  r0?: number;
}

function fisherZ(r: number): number {
  return Math.atanh(Math.max(-1 + MIN_ONE_MINUS_R, Math.min(1 - MIN_ONE_MINUS_R, r)));
}

/** atanh(1 - omr), from 1 - r directly: 0.5 ln((2 - omr) / omr). */
function fisherZOfOneMinus(omr: number): number {
  const o = Math.max(MIN_ONE_MINUS_R, Math.min(2 - MIN_ONE_MINUS_R, omr));
  return 0.5 * Math.log((2 - o) / o);
}

/** One tensor's part: whether it enters the statistic (and why not), and its terms. */
export function tensorTerm(s: TensorSums): TensorTerm {
  const r = 1 - s.oneMinusR;
  const identical = s.count > 0 && s.sumSq === 0;
  const base = { name: s.name, count: s.count, r, rShift1: s.rShift1, rShift2: s.rShift2, identical };
  const out = (reason: string): TensorTerm => ({ ...base, used: false, reason, dz: NaN, variance: NaN, z: NaN, nullDraw: NaN });
  if (!(s.count > 0)) return out(s.skipped > 0 ? 'no finite values compared (all NaN/Inf)' : 'no positions compared');
  const constA = !(s.varA > 0);
  const constB = !(s.varB > 0);
  if (constA || constB) return out(`constant values in ${constA && constB ? 'both models' : constA ? 'the first model' : 'the second model'} (no correlation)`);
  if (!Number.isFinite(s.oneMinusR)) return out('correlation undefined');
  if (s.count < 4) return out(`too few positions (${s.count})`);
  if (!(s.nShift1 >= 4 && s.nShift2 >= 4) || !Number.isFinite(s.rShift1) || !Number.isFinite(s.rShift2)) {
    return out('no shifted null (too few rows to shift by 1 and 2, or constant rows)');
  }
  const z0 = fisherZOfOneMinus(s.oneMinusR);
  const z1 = fisherZ(s.rShift1);
  const z2 = fisherZ(s.rShift2);
  const dz = z0 - (z1 + z2) / 2;
  const variance = 1 / (s.count - 3) + (1 / (s.nShift1 - 3) + 1 / (s.nShift2 - 3)) / 4;
  const nullDraw = (z1 - z2) / Math.sqrt(1 / (s.nShift1 - 3) + 1 / (s.nShift2 - 3));
  return { ...base, used: true, dz, variance, z: dz / Math.sqrt(variance), nullDraw };
}

/** The statistic of one pair from its tensors' sums. */
export function pairStatistic(sums: readonly TensorSums[]): PairStatistic {
  const tensors = sums.map(tensorTerm);
  let W = 0, WZ = 0, WR = 0, nullSum = 0, nullLin = 0, used = 0, compared = 0, identical = true;
  for (const t of tensors) {
    if (t.count > 0) {
      compared++;
      if (!t.identical) identical = false;
    }
    if (!t.used) continue;
    const w = 1 / t.variance;
    used++;
    W += w;
    WZ += w * t.dz;
    WR += w * fisherZOfOneMinus(1 - t.r);
    nullSum += w * t.nullDraw * t.nullDraw;
    nullLin += Math.sqrt(w) * t.nullDraw;
  }
  const comparable = used > 0;
  return {
    tensors,
    used,
    comparable,
    identical: compared > 0 && identical,
    rawZ: comparable ? WZ / Math.sqrt(W) : NaN,
    r: comparable ? Math.tanh(WR / W) : NaN,
    excess: comparable ? Math.tanh(WZ / W) : NaN,
    weight: W,
    nullSum,
    nullDraws: used,
    nullZ: comparable ? nullLin / Math.sqrt(W) : NaN,
  };
}

/** The null measured from the shifted draws of `pairs` (those with `include` true). */
export function measureNull(pairs: readonly PairStatistic[], include: (k: number) => boolean = () => true): NullCalibration {
  let num = 0, den = 0, draws = 0, used = 0;
  pairs.forEach((p, k) => {
    if (!p.comparable || !include(k)) return;
    num += p.nullSum;
    den += p.weight;
    draws += p.nullDraws;
    used++;
  });
  const measured = den > 0 ? num / den : NaN;
  return { kappa: Number.isFinite(measured) ? Math.max(1, measured) : 1, measured, draws, pairs: used, excludedRelated: 0 };
}

function checkLevel(alpha: number, r0: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new MotherError('ERR_INVALID_ARGUMENT', `expected a number in (0, 1) for alpha, got ${alpha}`);
  if (!(r0 > 0 && r0 < 1)) throw new MotherError('ERR_INVALID_ARGUMENT', `expected a number in (0, 1) for r0, got ${r0}`);
}

/** The decision on one pair, given the null and the number m of pairs tested together. */
export function decide(p: PairStatistic, nul: NullCalibration, m: number, options: RelatednessOptions = {}): PairDecision {
  const alpha = options.alpha ?? RELATEDNESS_ALPHA;
  const r0 = options.r0 ?? RELATED_R0;
  checkLevel(alpha, r0);
  if (!p.comparable) {
    return { verdict: 'not comparable', z: null, p: null, log10p: null, r: null, excess: null, excessLow: null, excessHigh: null, identical: p.identical, tensors: 0 };
  }
  const dof = Math.max(1, nul.draws);
  const scale = Math.sqrt(nul.kappa);
  const z = p.rawZ / scale;
  const log10p = studentLog10Sf(z, dof);
  const level = alpha / Math.max(1, m);
  const q = studentUpperQuantile(level, dof);
  // the excess correlation's bounds: Fisher z of the pooled excess +- q standard errors
  const center = Math.atanh(Math.max(-1 + MIN_ONE_MINUS_R, Math.min(1 - MIN_ONE_MINUS_R, p.excess)));
  const se = scale / Math.sqrt(p.weight);
  const low = Math.tanh(center - q * se);
  const high = Math.tanh(center + q * se);
  let verdict: Verdict;
  if (p.identical || (log10p <= Math.log10(level) && p.excess >= r0)) verdict = 'related';
  else if (high < r0) verdict = 'unrelated';
  else verdict = 'undecided';
  return { verdict, z, p: 10 ** log10p, log10p, r: p.r, excess: p.excess, excessLow: low, excessHigh: high, identical: p.identical, tensors: p.used };
}

/** The test of a set of pairs tested together: the measured null and every pair's decision. */
export interface RelatednessTest {
  null: NullCalibration;
  /** Pairs tested (m, the Bonferroni count: the comparable ones). */
  tested: number;
  alpha: number;
  r0: number;
  decisions: PairDecision[];
}

/**
 * Tests the pairs together (one comparability group, or the pairs of one question): measures
 * the null on all of them, decides, measures it again without the pairs found related (when
 * any others remain), and decides again.
 */
export function testPairs(pairs: readonly PairStatistic[], options: RelatednessOptions = {}): RelatednessTest {
  const alpha = options.alpha ?? RELATEDNESS_ALPHA;
  const r0 = options.r0 ?? RELATED_R0;
  checkLevel(alpha, r0);
  const m = pairs.filter((p) => p.comparable).length;
  let nul = measureNull(pairs);
  let decisions = pairs.map((p) => decide(p, nul, m, { alpha, r0 }));
  const related = decisions.map((d) => d.verdict === 'related');
  const rest = measureNull(pairs, (k) => !related[k]);
  if (rest.draws > 0 && related.some((x) => x)) {
    nul = { ...rest, excludedRelated: related.filter((x, k) => x && pairs[k].comparable).length };
    decisions = pairs.map((p) => decide(p, nul, m, { alpha, r0 }));
  }
  return { null: nul, tested: m, alpha, r0, decisions };
}
