// Stage 5 of the pipeline (direction and tree): what the recovery chooses per family when the
// user does not say: the distance metric (`metric: 'auto'`) and the kurtosis layers.
//
// Metric. A family fine-tuned with merged low-rank adapters (LoRA) differs pairwise by
// low-rank matrices: a child differs from its parent by rank r, siblings by up to 2r, and the
// layers the adapters do not touch by rank 0. Full fine-tuning changes every matrix at full
// rank. The rank of each difference comes from the rank sketches of the same pass (a sketch of
// size k sees ranks up to k, so a layer's capacity is min(n, k) for an n x n matrix). Per pair,
// the rank fraction is sum over ranked layers of rank / sum of capacities; the family uses the
// rank distance when the median rank fraction over its pairs is at most 1/2 (the differences
// use at most half of what the layers could hold), RMS otherwise. The median keeps exact and
// dtype copies (rank 0) and quantised copies (full-rank noise) from deciding it.
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

export interface MetricChoice {
  metric: 'rank' | 'rms';
  /** Why, in words (for the JSON and -v). */
  why: string;
  /** Median rank fraction over the family's pairs (null when no pair was ranked). */
  rankFraction: number | null;
  /** Pairs with a rank fraction. */
  pairs: number;
}

/** The metric of one family from its pairs' rank fractions (NaN: the pair had no ranked layer). */
export function chooseMetric(rankFractions: readonly number[]): MetricChoice {
  const f = rankFractions.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (f.length === 0) {
    return { metric: 'rms', why: rankFractions.length === 0 ? 'a single model: no distances' : 'no square 2-D layer was ranked: RMS', rankFraction: null, pairs: 0 };
  }
  const mid = f.length >> 1;
  const median = f.length % 2 ? f[mid] : (f[mid - 1] + f[mid]) / 2;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  if (median <= 0.5) {
    return { metric: 'rank', why: `pairwise differences are low-rank: median rank ${pct(median)} of the layers' capacity over ${f.length} pairs (at most 50%: merged low-rank adapters)`, rankFraction: median, pairs: f.length };
  }
  return { metric: 'rms', why: `pairwise differences are full-rank: median rank ${pct(median)} of the layers' capacity over ${f.length} pairs (above 50%: full fine-tuning)`, rankFraction: median, pairs: f.length };
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
