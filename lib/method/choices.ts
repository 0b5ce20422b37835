// Stage 5 of the pipeline (direction and tree): what the recovery chooses per family when the
// user does not say: the distance metric (`metric: 'auto'`) and the kurtosis layers.
//
// Metric. A family fine-tuned with merged low-rank adapters (LoRA) differs pairwise by
// low-rank matrices: a child differs from its parent by rank r in every layer the adapter
// targets, siblings by r1 + r2, and the layers the adapters do not touch by rank 0. Full
// fine-tuning changes every matrix, by amounts that differ from layer to layer, so the rank
// above the storage noise differs from layer to layer too. The rank of each difference comes
// from the rank sketches of the same pass (a sketch of size k sees ranks up to k, so a layer's
// capacity is min(n, k) for an n x n matrix). Per pair:
//   - rank fraction = sum over ranked layers of rank / sum of capacities;
//   - uniformity = of the layers whose difference is nonzero (rank > 0), the fraction at the
//     most common rank; nearTop = the fraction at 0.6 or more of the largest rank; untouched =
//     the fraction of ranked layers at rank 0 while others differ.
// A pair is adapter-like when it is not saturated (fewer than half its changed layers at
// capacity), its rank fraction is at most 1/2, and either its uniformity is at least 0.8, or
// at least a quarter of its layers are untouched and nearTop is at least 0.8 (a BF16 parent's
// rounding hides an adapter's smallest singular values: rank 8 and 16 adapters measure 6-8 and
// 10-16). Measured on the medium zoo: merged LoRA pairs pass (ranks 4 4 4 ... with the
// untargeted layers at 0); full fine-tunes of ViTs (AdamW and SGD) and of Llamas do not: every
// layer changes, at ranks 2 to 38 within one pair, uniformity 0.06-0.4, and a rank fraction
// down to 0.2 (a short or SGD fine-tune is low-rank, not uniformly so; the rank fraction alone
// took it for an adapter). An edge is typed 'adapter' when its own pair is adapter-like.
//
// The family uses the rank distance when at least half of its pairs that differ are
// adapter-like, or when its differences are low-rank and unsaturated: median rank fraction at
// most 1/2 and 90th percentile at most 0.9. Otherwise RMS: ranks near the capacity no longer
// add up along the tree (rank(a - c) <= rank(a - b) + rank(b - c) holds with room only below
// it). Measured: the Llama fine-tune families 0.67-0.82 at the 90th percentile (rank, which
// does better than RMS on them: sample 4 / 4 against 2 / 4); the ViT fine-tunes 0.93-0.99 (the
// SGD ones with a median of 0.23: RMS, 11 / 12 right against 3 / 12 with rank).
//
// Kurtosis layers. The architecture's default layers (ViT attention.output.dense, Llama
// self_attn.o_proj, else every square matrix) are kept where they vary within the family; a
// layer varies when the difference of more than half of the family's pairs is nonzero above
// the storage noise (rank > 0 in the sketch, which discounts dtype rounding). When none of the
// default layers vary (a LoRA family whose adapters leave them untouched: a constant
// kurtosis gives no direction), every square layer that varies is used; when nothing varies
// (only copies), the defaults.

/** The capacity of a ranked n x n layer: the largest rank its sketch can show. */
export function rankCapacity(n: number, k: number): number {
  return Math.min(n, k);
}

/** A pair's difference, as the rank sketches see it. */
export interface PairRankEvidence {
  /** sum of ranks / sum of capacities over the ranked layers (NaN: none ranked) */
  rankFraction: number;
  /** of the layers that differ (rank > 0), the fraction at the most common rank (NaN: none differs) */
  uniformity: number;
  /** the most common nonzero rank (0 when none differs; ties: the lower) */
  modalRank: number;
  /** of the layers that differ, the fraction whose rank is at least ADAPTER_RANK_SPREAD times the largest (NaN: none differs) */
  nearTop: number;
  /** of the ranked layers, the fraction left bit-identical (rank 0) while others differ (0 when none differs) */
  untouched: number;
  /** whether at least half the layers that differ reached their capacity (full rank, or k or more) */
  saturated: boolean;
}

/** A pair is adapter-like at this uniformity or more (see the header). */
export const ADAPTER_UNIFORMITY = 0.8;
/** With untouched layers, a layer's rank counts as the adapter's from this fraction of the
 *  pair's largest (the dtype-aware tolerance of a BF16 parent hides the smallest singular values
 *  of a LoRA product: rank 8 and 16 adapters measure 6-8 and 10-16 on the medium zoo). */
export const ADAPTER_RANK_SPREAD = 0.6;
/** The fraction of ranked layers left untouched for that looser test. */
export const ADAPTER_UNTOUCHED = 0.25;
/** ... and at this rank fraction or less. */
export const ADAPTER_MAX_RANK_FRACTION = 0.5;

/** The evidence of one pair from its ranked layers: rank (finite) and capacity per layer. */
export function pairRankEvidence(ranks: readonly number[], capacities: readonly number[]): PairRankEvidence {
  let rank = 0, cap = 0, ranked = 0, top = 0;
  const changed: number[] = [];
  const count = new Map<number, { n: number; saturated: number }>();
  let full = 0;
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i];
    if (!Number.isFinite(r)) continue;
    ranked++;
    rank += r;
    cap += capacities[i];
    if (r > 0) {
      changed.push(r);
      top = Math.max(top, r);
      if (r >= capacities[i]) full++;
      const c = count.get(r) ?? { n: 0, saturated: 0 };
      c.n++;
      count.set(r, c);
    }
  }
  let modalRank = 0, modal = 0;
  for (const [r, c] of count) if (c.n > modal || (c.n === modal && r < modalRank)) [modalRank, modal] = [r, c.n];
  const k = changed.length;
  return {
    rankFraction: cap > 0 ? rank / cap : NaN,
    uniformity: k > 0 ? modal / k : NaN,
    modalRank,
    nearTop: k > 0 ? changed.filter((r) => r >= ADAPTER_RANK_SPREAD * top).length / k : NaN,
    untouched: k > 0 ? (ranked - k) / ranked : 0,
    saturated: k > 0 && full * 2 >= k,
  };
}

/** Whether a pair's difference looks like merged low-rank adapters (see the header). */
export function adapterLike(e: PairRankEvidence): boolean {
  if (e.saturated || !(e.rankFraction <= ADAPTER_MAX_RANK_FRACTION)) return false;
  return e.uniformity >= ADAPTER_UNIFORMITY || (e.untouched >= ADAPTER_UNTOUCHED && e.nearTop >= ADAPTER_UNIFORMITY);
}

export interface MetricChoice {
  metric: 'rank' | 'rms';
  /** Why, in words (for the JSON and -v). */
  why: string;
  /** Median rank fraction over the family's pairs (null when no pair was ranked). */
  rankFraction: number | null;
  /** Pairs with a rank fraction. */
  pairs: number;
  /** Pairs that differ in some ranked layer, and how many of them are adapter-like. */
  differing: number;
  adapterLike: number;
}

/** The rank distance is used below this median rank fraction... */
export const RANK_MEDIAN_FRACTION = 0.5;
/** ... when the family's far pairs stay below saturation: 90th percentile of the rank fractions at most this. */
export const RANK_SATURATION_FRACTION = 0.9;

/** The metric of one family from its pairs' rank evidence (see the header). */
export function chooseMetric(pairs: readonly PairRankEvidence[]): MetricChoice {
  const f = pairs.map((p) => p.rankFraction).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (f.length === 0) {
    return { metric: 'rms', why: pairs.length === 0 ? 'a single model: no distances' : 'no square 2-D layer was ranked: RMS', rankFraction: null, pairs: 0, differing: 0, adapterLike: 0 };
  }
  const mid = f.length >> 1;
  const median = f.length % 2 ? f[mid] : (f[mid - 1] + f[mid]) / 2;
  const q90 = f[Math.min(f.length - 1, Math.ceil(0.9 * f.length) - 1)];
  const differing = pairs.filter((p) => Number.isFinite(p.uniformity)).length;
  const like = pairs.filter(adapterLike).length;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const base = { rankFraction: median, pairs: f.length, differing, adapterLike: like };
  const ranks = `median rank ${pct(median)} of the layers' capacity, 90th percentile ${pct(q90)}, over ${f.length} pairs`;
  if (differing > 0 && like * 2 >= differing) {
    return { metric: 'rank', why: `pairwise differences are low-rank adapters: ${like} of ${differing} differing pairs have one rank in every changed layer (${ranks})`, ...base };
  }
  if (median <= RANK_MEDIAN_FRACTION && q90 <= RANK_SATURATION_FRACTION) {
    return { metric: 'rank', why: `pairwise differences are low-rank and unsaturated: ${ranks} (at most 50% and 90%); ${like} of ${differing} differing pairs adapter-like`, ...base };
  }
  const why = median > RANK_MEDIAN_FRACTION
    ? `pairwise differences are full-rank: ${ranks} (median above 50%: full fine-tuning)`
    : `the rank saturates on the family's far pairs: ${ranks} (90th percentile above 90%: ranks near the capacity no longer add up along the tree)`;
  return { metric: 'rms', why: `${why}; ${like} of ${differing} differing pairs adapter-like`, ...base };
}

/** One candidate kurtosis layer of a family. */
export interface KurtosisCandidate {
  name: string;
  /** In the architecture's default kurtosis layers. */
  isDefault: boolean;
  /** Pairs of the family whose difference in this layer is nonzero above the storage noise, and pairs where it was compared. */
  changed: number;
  compared: number;
}

export interface KurtosisChoice {
  /** The layers used. */
  layers: string[];
  /** 'default', 'varying' (square layers that vary, the defaults do not) or 'default-constant' (nothing varies). */
  rule: 'default' | 'varying' | 'default-constant' | 'given';
  why: string;
}

const varies = (c: KurtosisCandidate) => c.compared > 0 && c.changed > c.compared / 2;

/** The kurtosis layers of one family (the candidates: every square layer of its models). */
export function chooseKurtosisLayers(candidates: readonly KurtosisCandidate[], defaultDescription: string, familySize: number): KurtosisChoice {
  const defaults = candidates.filter((c) => c.isDefault);
  if (familySize < 2) return { layers: defaults.map((c) => c.name), rule: 'default', why: `a single model: the defaults (${defaultDescription})` };
  const defaultVarying = defaults.filter(varies);
  if (defaultVarying.length > 0) {
    const left = defaults.length - defaultVarying.length;
    return {
      layers: defaultVarying.map((c) => c.name),
      rule: 'default',
      why: `the defaults (${defaultDescription}) that vary in the family: ${defaultVarying.length}${left ? ` (${left} unchanged left out)` : ''}`,
    };
  }
  const varying = candidates.filter(varies);
  if (varying.length > 0) {
    return {
      layers: varying.map((c) => c.name),
      rule: 'varying',
      why: `the defaults (${defaultDescription}) are unchanged in the family (${defaults.length} layers): the ${varying.length} square layers that vary instead`,
    };
  }
  return { layers: defaults.map((c) => c.name), rule: 'default-constant', why: `no layer varies in the family (copies only): the defaults (${defaultDescription})` };
}
