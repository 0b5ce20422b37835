// Stage 3 of the pipeline (pairwise evidence): distances and ranks of differences between
// models. Every model is read once; the native engine streams all N models' tensors in
// cache-sized chunks and accumulates, per tensor and per pair, sums of squared and absolute
// differences and the extreme differences.
//
// Results stay in the addon's compact form, one value per unordered pair (pairIndex order,
// method/matrix.ts), through the pass and the aggregation; only the public pairwiseStats result
// is N x N (its per-layer matrices are filled in when first read).
import { AlignedTensor, alignTensors, LayerFilter, ModelAlignment, SkippedTensor } from './alignment';
import { BackendName, BackendUsed, resolveBackend } from '../core/backend';
import { ModelFiles, resolveModel } from './discovery';
import { fromNative, MotherError } from '../core/errors';
import { check, checkOptions, commonOptions } from '../core/validate';
import { inspectResolved, ModelHeader } from './inspect';
import { native, packedRecords, PairwiseProgress, RawPairwise, summaryLayout } from '../core/binding';
import { isSquare, layerMatcher, pairCount, pairIndex, pairsFromSquare, squareFromPairs } from '../method/matrix';

/** The distances between two models' tensors: their aggregates, and the rank of differences. */
export const PAIR_METRICS = ['rms', 'l1', 'maxdiff', 'rank'] as const;
export type PairMetric = (typeof PAIR_METRICS)[number];

/** The metrics whose aggregates pairwiseStats computes when none are named. */
export const DEFAULT_METRICS = ['rms', 'l1', 'maxdiff'] as const;
export type DefaultMetric = (typeof DEFAULT_METRICS)[number];

/** Whether the metrics need the differences themselves (sum |d|, max d, min d), not only the
 *  Gram products: l1 and maxdiff do; rms and rank do not. */
export function needsDifferences(metrics: readonly PairMetric[]): boolean {
  return metrics.includes('l1') || metrics.includes('maxdiff');
}

/** The aggregate each metric gives. */
export const AGGREGATE_OF = { rms: 'meanRms', l1: 'sumMeanAbs', maxdiff: 'maxNormMaxDiff', rank: 'sumRank' } as const;

export interface RankOptions {
  /** Sketch size k (default 64): ranks up to about k - 8 are exact; ask for more for higher ranks. */
  k?: number;
  /** Seed of the Gaussian sketch matrices, 64 bits (a BigInt, or a safe integer); default: the
   *  addon's one fixed seed (defaultSketchSeed). Results are deterministic. */
  seed?: number | bigint;
  /** Exact singular values of Wi - Wj instead of the sketch (holds whole tensors in memory: verification). */
  exact?: boolean;
  /** Which square 2-D tensors get a rank (default: every square 2-D tensor that `layers` selects). */
  layers?: LayerFilter;
}

export interface PairwiseOptions<M extends PairMetric = PairMetric> {
  /** Which tensors to compare: a RegExp on the name, or a predicate on (name, shape). Default: all float tensors. */
  layers?: LayerFilter;
  /** The aggregates to compute (default rms, l1 and maxdiff). The per-layer distances are always
   *  computed; 'rank' adds the rank of differences (LoRA families). */
  metrics?: readonly M[];
  rank?: RankOptions;
  /** Tensors whose per-model moments (mean, std, skewness, kurtosis, ...) are computed in the
   *  same read (e.g. the kurtosis layers of the recovery). Default: none. */
  moments?: LayerFilter;
  threads?: number;
  simd?: string;
  /** Elements per model that stay in cache while all pairs run over them (default: 16 Ki / 2^ceil(log2 N / 4), 1 Ki to 16 Ki: about 512 KiB of float64 for the N models). */
  chunkElems?: number;
  /** Elements per model per job (default: 16M / N, at most 1M): what a thread maps and releases at once. */
  jobElems?: number;
  /** Compute sum |d|, max d and min d of every pair (meanAbs, maxDiff, minDiff; the l1 and
   *  maxdiff metrics). Default: when `metrics` names l1 or maxdiff (as the default metrics do).
   *  false: those are NaN, and the CPU pass takes sums of squares from Gram products only
   *  (faster, see README "Memory and speed"). */
  differences?: boolean;
  /** Also the shifted null of the relatedness statistic per layer and pair (rShift1, rShift2,
   *  nShift), and the N x N relatedness matrices of LayerDistances. Default false. */
  relatedness?: boolean;
  /** Where the pass runs: 'auto' (default, or $MOTHER_BACKEND), 'cpu' or 'cuda' (see ScanOptions).
   *  rank.exact always runs on the CPU. */
  backend?: BackendName;
  /** The bytes read, then, with rank.exact, the SVDs finished (svdDone of svdTotal). */
  onProgress?: (p: PairwiseProgress) => void;
  signal?: AbortSignal;
}

/** The checks of RankOptions (recover takes them too). */
export const RANK_OPTIONS = check.object({
  k: check.integer(1, 1024),
  seed: check.seed,
  exact: check.boolean,
  layers: check.filter,
});

/** The checks of PairwiseOptions. */
const PAIRWISE_OPTIONS = {
  ...commonOptions,
  layers: check.filter,
  metrics: check.list(`an array of metrics (${PAIR_METRICS.join(', ')})`, check.oneOf(PAIR_METRICS)),
  rank: RANK_OPTIONS,
  moments: check.filter,
  chunkElems: check.integer(64, 2 ** 24, '2^24'),
  jobElems: check.integer(0, 2 ** 32 - 1, '2^32 - 1'),
  differences: check.boolean,
  relatedness: check.boolean,
};

/** N x N matrices are row-major Float64Arrays; entry [i * n + j]. */
export interface LayerDistances {
  name: string;
  rows: number[];
  rowElems: number;
  /** Compared on the shared leading rows only (resized vocabulary). */
  resized: boolean;
  /** sqrt(mean (Wi - Wj)^2) over the compared elements; NaN where the pair was not compared. */
  rms: Float64Array;
  /** mean |Wi - Wj| */
  meanAbs: Float64Array;
  /** max (Wi - Wj) (so maxDiff[j][i] = -minDiff[i][j]); max |Wi - Wj| = max(maxDiff[i][j], maxDiff[j][i]) */
  maxDiff: Float64Array;
  /** elements compared (finite in both) */
  count: Float64Array;
  /** elements skipped because either value was NaN or +-Inf */
  skipped: Float64Array;
  /** rank of Wi - Wj (square 2-D tensors, when 'rank' was asked); symmetric, 0 on the diagonal.
   *  In sketch mode a rank equal to k means "k or more". */
  rank?: Float64Array;
  /** the singular-value tolerance used for each pair (sketch scale in sketch mode) */
  rankTol?: Float64Array;
  /** per model (null where the model was left out): moments of its whole tensor, when asked */
  moments?: (TensorMoments | null)[];
  /** per model (null where the model was left out): the sampled blocks tested for a
   *  quantisation grid and found on it (QuantGrid) */
  grid?: (QuantGrid | null)[];
  /** With `relatedness` only: [i * n + j] = the mean of model i's tensor over the positions it
   *  was compared on with model j (NaN on the diagonal and where not compared) */
  mean?: Float64Array;
  /** With `relatedness` only: the population variance of model i's tensor over those positions */
  variance?: Float64Array;
  /** With `relatedness` only: 1 - Pearson r of the two tensors (symmetric; 0 on the diagonal) */
  oneMinusR?: Float64Array;
  /** With `relatedness` only: the shifted null of the pair min(i, j), max(i, j) (symmetric):
   *  r(a[p], b[p + R]), r(a[p], b[p + 2R]) over nShift sampled positions */
  rShift1?: Float64Array;
  rShift2?: Float64Array;
  nShift?: Float64Array;
}

export interface TensorMoments {
  count: number;
  mean: number;
  std: number;
  skewness: number;
  /** excess kurtosis (Fisher, biased: scipy.stats.kurtosis defaults); NaN for constant data */
  kurtosis: number;
  nan: number;
  inf: number;
}

/** Aggregates over layers, N x N, 0 on the diagonal (each present when its metric was asked). */
export interface Aggregates {
  /** mean over layers of the per-layer RMS (full fine-tuning distance of the paper) */
  meanRms: Float64Array;
  /** sum over layers of mean |diff| (the paper's clustering distance) */
  sumMeanAbs: Float64Array;
  /** max over layers of the min-max-normalised max |diff| (the paper's first release) */
  maxNormMaxDiff: Float64Array;
  /** sum over ranked layers of rank(Wi - Wj) (LoRA distance); absent unless 'rank' was asked
   *  and some compared tensor is square 2-D */
  sumRank?: Float64Array;
}

/** The result of pairwiseStats for the metrics M (the bare name: any metrics). */
export interface PairwiseStats<M extends PairMetric = PairMetric> {
  models: string[];
  n: number;
  layers: LayerDistances[];
  skipped: SkippedTensor[];
  /** Per model other than the first: how its tensors were aligned to the first model's ('name', 'normalised' or 'order') and how many matched. */
  alignment: ModelAlignment[];
  /** Aggregates over layers, N x N, 0 on the diagonal: those of the metrics asked. */
  aggregates: Pick<Aggregates, (typeof AGGREGATE_OF)[M]>;
  bytesRead: number[];
  seconds: number;
  simd: string;
  threads: number;
  /** The device the pass ran on (and, for 'auto' on the CPU, why). */
  backend: BackendUsed;
  /** What the caller should know about the result, e.g. ranks that reached the sketch size. */
  warnings: string[];
}

/** One compared tensor, one value per unordered pair i < j (pairIndex order). */
export interface PairLayer {
  name: string;
  /** Per model, its own name for the tensor, where some model names it differently (alignment); absent when every model uses `name`. */
  names?: (string | null)[];
  rows: number[];
  rowElems: number;
  resized: boolean;
  /** Per model: the tensor's shape, or null when the model lacks it. */
  shapes: (number[] | null)[];
  count: Float64Array;
  skipped: Float64Array;
  /** NaN where the pair was not compared (count 0), as are meanAbs, maxDiff and minDiff. */
  rms: Float64Array;
  meanAbs: Float64Array;
  /** max (Wi - Wj) */
  maxDiff: Float64Array;
  /** min (Wi - Wj) */
  minDiff: Float64Array;
  /** sum (Wi - Wj)^2 over the compared positions (exactly 0 for equal values) */
  sumSq: Float64Array;
  /** Relatedness, over the compared positions (a = model i's tensor, b = model j's, i < j):
   *  means and population variances of a and b, 1 - Pearson r(a, b) (NaN when a variance is 0) */
  meanA: Float64Array;
  meanB: Float64Array;
  varA: Float64Array;
  varB: Float64Array;
  oneMinusR: Float64Array;
  /** With `relatedness`: Pearson r of a[p] with b[p + R] and with b[p + 2R] (R elements per
   *  row) over the nShift positions sampled for it (README "Distances between models") */
  rShift1?: Float64Array;
  rShift2?: Float64Array;
  nShift?: Float64Array;
  rank?: Float64Array;
  rankTol?: Float64Array;
  moments?: (TensorMoments | null)[];
  /** Per model (null where the model lacks the tensor): sampled blocks of 32 values tested for
   *  a blockwise quantisation grid and found on it (a dequantised copy; README "Relation types") */
  grid?: (QuantGrid | null)[];
}

/** One tensor's sample of blocks of 32 values (one per 1024 elements): how many were tested
 *  for the Q4_0 grid (every value an integer multiple of max|x| / 8) and how many lie on it;
 *  likewise for Q8_0 (max|x| / 127; not tested in BF16, whose rounding is coarser than it). */
export interface QuantGrid {
  q4Tested: number;
  q4On: number;
  q8Tested: number;
  q8On: number;
}

/** The pass over N models, compact. */
export interface PairPass {
  models: string[];
  n: number;
  layers: PairLayer[];
  skipped: SkippedTensor[];
  /** Per model other than the first: how its tensors were aligned to the first model's. */
  alignment: ModelAlignment[];
  bytesRead: number[];
  seconds: number;
  simd: string;
  threads: number;
  backend: BackendUsed;
  /** e.g. ranks that reached the sketch size k (they are k or more) */
  warnings: string[];
}

/** Aggregates in pair form (one value per unordered pair), those asked. */
export type PairAggregates = Partial<Record<(typeof AGGREGATE_OF)[PairMetric], Float64Array>>;

function pairLayer(t: AlignedTensor, raw: RawPairwise['tensors'][number], n: number): PairLayer {
  const P = pairCount(n);
  const rms = new Float64Array(P), meanAbs = new Float64Array(P), maxDiff = new Float64Array(P), minDiff = new Float64Array(P);
  for (let p = 0; p < P; p++) {
    const c = raw.count[p];
    const compared = c > 0;
    rms[p] = compared ? Math.sqrt(raw.sumSq[p] / c) : NaN;
    meanAbs[p] = compared && raw.sumAbs ? raw.sumAbs[p] / c : NaN;
    maxDiff[p] = compared && raw.maxDiff ? raw.maxDiff[p] : NaN;
    minDiff[p] = compared && raw.minDiff ? raw.minDiff[p] : NaN;
  }
  const layer: PairLayer = {
    name: t.name, ...(t.names ? { names: t.names } : {}), rows: t.rows, rowElems: t.rowElems, resized: t.resized, shapes: t.shapes,
    count: raw.count, skipped: raw.skipped, rms, meanAbs, maxDiff, minDiff,
    sumSq: raw.sumSq, meanA: raw.meanA, meanB: raw.meanB, varA: raw.varA, varB: raw.varB, oneMinusR: raw.oneMinusR,
  };
  if (raw.rShift1) {
    layer.rShift1 = raw.rShift1;
    layer.rShift2 = raw.rShift2!;
    layer.nShift = raw.nShift!;
  }
  if (raw.rank) {
    layer.rank = raw.rank;
    layer.rankTol = raw.rankTol!;
  }
  if (raw.grid && raw.grid.length === 4 * n) {
    const g = raw.grid;
    layer.grid = t.rows.map((r, m) => (r < 0 ? null : { q4Tested: g[4 * m], q4On: g[4 * m + 1], q8Tested: g[4 * m + 2], q8On: g[4 * m + 3] }));
  }
  if (raw.moments) {
    const slot = packedRecords(raw.moments, n, summaryLayout(), `pairwise moments of ${t.name}`);
    layer.moments = t.rows.map((r, m) =>
      r < 0 ? null : { count: slot(m, 'count'), mean: slot(m, 'mean'), std: slot(m, 'std'), skewness: slot(m, 'skewness'), kurtosis: slot(m, 'kurtosis'), nan: slot(m, 'nan'), inf: slot(m, 'inf') },
    );
  }
  return layer;
}

/**
 * The aggregates of `metrics` over `layers`, one value per unordered pair; NaN for pairs no
 * layer compared (no layer ranked, for 'rank'). sumRank is left out when no layer is ranked.
 */
export function aggregatePairs(
  layers: readonly Pick<PairLayer, 'count' | 'rms' | 'meanAbs' | 'maxDiff' | 'minDiff' | 'rank'>[],
  n: number,
  metrics: readonly PairMetric[],
): PairAggregates {
  const P = pairCount(n);
  const out: PairAggregates = {};
  const want = (m: PairMetric) => metrics.includes(m);
  if (want('rms') || want('l1') || want('maxdiff')) {
    const layersUsed = new Float64Array(P);
    for (const l of layers) for (let p = 0; p < P; p++) if (l.count[p] > 0) layersUsed[p] += 1;
    const unused = (a: Float64Array) => {
      for (let p = 0; p < P; p++) if (layersUsed[p] === 0) a[p] = NaN; // nothing comparable
      return a;
    };
    if (want('rms')) {
      const meanRms = new Float64Array(P);
      for (const l of layers) for (let p = 0; p < P; p++) if (l.count[p] > 0) meanRms[p] += l.rms[p];
      for (let p = 0; p < P; p++) if (layersUsed[p] > 0) meanRms[p] /= layersUsed[p];
      out.meanRms = unused(meanRms);
    }
    if (want('l1')) {
      const sumMeanAbs = new Float64Array(P);
      for (const l of layers) for (let p = 0; p < P; p++) if (l.count[p] > 0) sumMeanAbs[p] += l.meanAbs[p];
      out.sumMeanAbs = unused(sumMeanAbs);
    }
    if (want('maxdiff')) {
      // per layer max |diff|, min-max normalised over the compared pairs, then the max over layers
      const maxNormMaxDiff = new Float64Array(P);
      const maxAbs = new Float64Array(P);
      for (const l of layers) {
        let lo = Infinity, hi = -Infinity;
        for (let p = 0; p < P; p++) {
          if (!(l.count[p] > 0)) continue;
          const v = Math.max(l.maxDiff[p], -l.minDiff[p]);
          maxAbs[p] = v;
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        for (let p = 0; p < P; p++) {
          if (!(l.count[p] > 0)) continue;
          const norm = hi > lo ? (maxAbs[p] - lo) / (hi - lo) : 0;
          maxNormMaxDiff[p] = Math.max(maxNormMaxDiff[p], norm);
        }
      }
      out.maxNormMaxDiff = unused(maxNormMaxDiff);
    }
  }
  if (want('rank')) {
    const ranked = layers.filter((l) => l.rank);
    if (ranked.length > 0) {
      const sumRank = new Float64Array(P);
      const rankedPairs = new Float64Array(P);
      for (const l of ranked)
        for (let p = 0; p < P; p++) {
          if (Number.isNaN(l.rank![p])) continue;
          sumRank[p] += l.rank![p];
          rankedPairs[p] += 1;
        }
      for (let p = 0; p < P; p++) if (rankedPairs[p] === 0) sumRank[p] = NaN;
      out.sumRank = sumRank;
    }
  }
  return out;
}

/** An N x N matrix (0 on the diagonal) of one value per pair. */
function square(values: Float64Array, n: number): Float64Array {
  return squareFromPairs(n, 0, (i, j) => values[pairIndex(n, i, j)]);
}

/** The N x N aggregates of the public result. */
function squareAggregates(agg: PairAggregates, n: number): Partial<Aggregates> {
  const out: Partial<Aggregates> = {};
  for (const name of Object.values(AGGREGATE_OF)) {
    const v = agg[name];
    if (v) out[name] = square(v, n);
  }
  return out;
}

/**
 * The N x N form of a compact layer. Its matrices are made when first read (then kept): a
 * caller that reads the aggregates only never pays for them. They are own enumerable
 * properties, so the object compares, spreads and serialises like a plain one.
 */
function squareLayer(l: PairLayer, n: number, relatedness = false): LayerDistances {
  const at = (v: Float64Array) => (i: number, j: number) => v[pairIndex(n, i, j)];
  const layer = { name: l.name, rows: l.rows, rowElems: l.rowElems, resized: l.resized } as LayerDistances;
  const lazy: Partial<Record<keyof LayerDistances, () => unknown>> = {
    rms: () => square(l.rms, n),
    meanAbs: () => square(l.meanAbs, n),
    maxDiff: () => squareFromPairs(n, 0, at(l.maxDiff), (i, j) => -l.minDiff[pairIndex(n, i, j)]),
    count: () => square(l.count, n),
    skipped: () => square(l.skipped, n),
  };
  if (l.rank) {
    lazy.rank = () => square(l.rank!, n);
    lazy.rankTol = () => square(l.rankTol!, n);
  }
  if (relatedness) {
    // model i's side of the pair: meanA / varA where i < j, meanB / varB where i > j
    const side = (lo: Float64Array, hi: Float64Array) => () =>
      squareFromPairs(n, NaN, (i, j) => lo[pairIndex(n, i, j)], (i, j) => hi[pairIndex(n, i, j)]);
    lazy.mean = side(l.meanA, l.meanB);
    lazy.variance = side(l.varA, l.varB);
    lazy.oneMinusR = () => square(l.oneMinusR, n);
    if (l.rShift1) {
      lazy.rShift1 = () => squareFromPairs(n, NaN, at(l.rShift1!));
      lazy.rShift2 = () => squareFromPairs(n, NaN, at(l.rShift2!));
      lazy.nShift = () => square(l.nShift!, n);
    }
  }
  for (const [key, make] of Object.entries(lazy)) {
    const settle = (value: unknown) => Object.defineProperty(layer, key, { value, enumerable: true, writable: true, configurable: true });
    Object.defineProperty(layer, key, {
      enumerable: true,
      configurable: true,
      get: () => {
        const value = make!();
        settle(value);
        return value;
      },
      set: settle,
    });
  }
  if (l.moments) layer.moments = l.moments;
  if (l.grid) layer.grid = l.grid;
  return layer;
}

/** A sketch of size k sees ranks up to k: a rank of k means "k or more". One warning per layer
 *  where some pair reached it. */
export function saturatedRanks(layers: PairLayer[], k: number): string[] {
  const out: string[] = [];
  for (const l of layers) {
    if (!l.rank) continue;
    let count = 0;
    for (const r of l.rank) if (r >= k) count += 1;
    if (count > 0) out.push(`${l.name}: the rank of ${count} pair${count === 1 ? '' : 's'} reached the sketch size k = ${k}: k or more: ask for a larger --rank-k`);
  }
  return out;
}

/**
 * The aggregates of every metric from N x N per-layer distances as pairwiseStats returns them
 * (symmetric; the upper triangle is read, maxDiff[j][i] as minus the minimum difference).
 */
export function aggregate(layers: LayerDistances[], n: number): Aggregates {
  const upper = (m: Float64Array) => pairsFromSquare(m, n);
  const pairs = layers.map((l) => ({
    count: upper(l.count), rms: upper(l.rms), meanAbs: upper(l.meanAbs),
    maxDiff: upper(l.maxDiff), minDiff: pairsFromSquare(l.maxDiff, n, true).map((v) => -v),
    ...(l.rank ? { rank: upper(l.rank) } : {}),
  }));
  return squareAggregates(aggregatePairs(pairs, n, ['rms', 'l1', 'maxdiff', 'rank']), n) as Aggregates;
}

/**
 * Distances between every pair of `models` (paths, as accepted by scanModel), reading each
 * model's bytes once.
 */
export async function pairwiseStats<M extends PairMetric = DefaultMetric>(models: string[], options: PairwiseOptions<M> = {}): Promise<PairwiseStats<M>> {
  check.list('an array of model paths', check.path)(models, 'models');
  checkOptions(options, PAIRWISE_OPTIONS);
  const resolved = await Promise.all(models.map((m) => resolveModel(m)));
  const headers: ModelHeader[] = await Promise.all(resolved.map((r) => inspectResolved(r)));
  const pass = await pairwisePass(resolved, headers, options);
  const { n } = pass;
  const metrics: readonly PairMetric[] = options.metrics ?? DEFAULT_METRICS;
  return {
    models: pass.models,
    n,
    layers: pass.layers.map((l) => squareLayer(l, n, options.relatedness === true)),
    skipped: pass.skipped,
    alignment: pass.alignment,
    aggregates: squareAggregates(aggregatePairs(pass.layers, n, metrics), n) as PairwiseStats<M>['aggregates'],
    bytesRead: pass.bytesRead,
    seconds: pass.seconds,
    simd: pass.simd,
    threads: pass.threads,
    backend: pass.backend,
    warnings: pass.warnings,
  };
}

/**
 * The pass for models already resolved and inspected (the recovery reuses them): compact
 * results, no aggregates. The options are those pairwiseStats or recover checked.
 */
export async function pairwisePass(resolved: ModelFiles[], headers: ModelHeader[], options: PairwiseOptions = {}): Promise<PairPass> {
  const n = resolved.length;
  const { tensors, skipped, methods } = alignTensors(headers, options.layers);
  const metrics = options.metrics ?? DEFAULT_METRICS;
  const rankOpts = options.rank ?? {};
  const k = rankOpts.k ?? 64;
  const wantRank = metrics.includes('rank');
  const rankLayers = layerMatcher(rankOpts.layers) ?? (() => true);
  const sketch = tensors.map((t) => {
    if (!wantRank) return false;
    const shapes = t.shapes.filter((s, m) => s && t.rows[m] >= 0) as number[][];
    return shapes.every(isSquare) && rankLayers(t.name, shapes[0]);
  });
  const momentsLayers = layerMatcher(options.moments);
  const momentsOf = tensors.map((t) => momentsLayers !== undefined && momentsLayers(t.name, t.shapes.find((s) => s) ?? []));
  const device = rankOpts.exact === true && wantRank
    ? { native: { backend: 'cpu' as const }, used: { requested: options.backend ?? 'auto', used: 'cpu' as const, reason: 'exact rank runs on the CPU' } }
    : await resolveBackend(options.backend);
  if (options.signal?.aborted) throw new MotherError('ERR_CANCELLED', 'pairwise pass cancelled');
  const cancel = new Int32Array(1);
  const onAbort = () => Atomics.store(cancel, 0, 1);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let settled = false;
  let last: PairwiseProgress | undefined;
  // A callback that throws fails the call with what it threw; the native pass is cancelled.
  let thrown: { error: unknown } | undefined;
  try {
    const raw = await native().pairwise(
      resolved.map((r) => ({ files: r.files, index: r.index })),
      tensors.map((t, i) => ({ name: t.name, ...(t.names ? { names: t.names.map((x) => x ?? '') } : {}), rows: t.rows, rowElems: t.rowElems, sketch: sketch[i], moments: momentsOf[i] })),
      {
        threads: options.threads, simd: options.simd, chunkElems: options.chunkElems, jobElems: options.jobElems, sketchK: k, sketchSeed: rankOpts.seed,
        exactRank: rankOpts.exact === true, differences: options.differences ?? needsDifferences(metrics), relatedness: options.relatedness === true, ...device.native,
      },
      options.onProgress
        ? (p) => {
            if (settled || thrown) return;
            last = p;
            try {
              options.onProgress!(p);
            } catch (e) {
              thrown = { error: e };
              Atomics.store(cancel, 0, 1);
            }
          }
        : undefined,
      cancel,
    );
    settled = true;
    if (thrown) throw thrown.error;
    // The native final report can arrive after the promise settles (another async handle):
    // report completion here, the SVD stage included, unless it was seen.
    const svdTotal = raw.svdTotal ?? last?.svdTotal ?? 0;
    if (options.onProgress && (!last || last.bytesDone !== last.bytesTotal || (last.svdTotal ?? 0) !== svdTotal || (last.svdDone ?? 0) !== svdTotal)) {
      const total = raw.bytesRead.reduce((a, b) => a + b, 0);
      options.onProgress({ bytesDone: total, bytesTotal: total, ...(svdTotal > 0 ? { svdDone: svdTotal, svdTotal } : {}) });
    }
    const layers = tensors.map((t, i) => pairLayer(t, raw.tensors[i], n));
    return {
      models: resolved.map((r) => r.path),
      n,
      layers,
      skipped,
      alignment: methods,
      bytesRead: raw.bytesRead,
      seconds: raw.seconds,
      simd: raw.simd,
      threads: raw.threads,
      backend: device.used,
      warnings: rankOpts.exact === true ? [] : saturatedRanks(layers, k),
    };
  } catch (e) {
    settled = true;
    if (thrown) throw thrown.error;
    throw fromNative(e);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
