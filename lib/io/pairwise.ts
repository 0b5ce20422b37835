// Stage 3 of the pipeline: pairwise distances between models. Every model is read once; the
// native engine streams all N models' tensors in cache-sized chunks and accumulates, per
// tensor and per pair, sums of squared and absolute differences and the extreme differences.
import { alignTensors, AlignedTensor, LayerFilter, SkippedTensor } from './alignment';
import { BackendName, BackendUsed, resolveBackend } from '../core/backend';
import { ModelFiles, resolveModel } from './discovery';
import { fromNative, MotherError } from '../core/errors';
import { inspectResolved, ModelHeader } from './inspect';
import { native, packedRecords, summaryLayout } from '../core/binding';
import { isSquare, layerMatcher, pairIndex, squareFromPairs } from '../method/matrix';

export type PairMetric = 'rms' | 'l1' | 'maxdiff' | 'rank';

export interface RankOptions {
  /** Sketch size k (default 64): ranks up to about k - 8 are exact; ask for more for higher ranks. */
  k?: number;
  /** Seed of the Gaussian sketch matrices (default fixed): results are deterministic. */
  seed?: number;
  /** Exact singular values of Wi - Wj instead of the sketch (holds whole tensors in memory: verification). */
  exact?: boolean;
  /** Which square 2-D tensors get a rank (default: every square 2-D tensor that `layers` selects). */
  layers?: LayerFilter;
}

export interface PairwiseOptions {
  /** Which tensors to compare: a RegExp on the name, or a predicate on (name, shape). Default: all float tensors. */
  layers?: LayerFilter;
  /** Distances are always computed; include 'rank' for the rank of differences (LoRA families). */
  metrics?: PairMetric[];
  rank?: RankOptions;
  /** Tensors whose per-model moments (mean, std, skewness, kurtosis, ...) are computed in the
   *  same read (e.g. the kurtosis layers of the recovery). Default: none. */
  moments?: LayerFilter;
  threads?: number;
  simd?: string;
  /** Elements per model (default 1024) that stay in cache while all pairs run over them. */
  chunkElems?: number;
  /** Elements per model per job (default: 16M / N, at most 1M): what a thread maps and releases at once. */
  jobElems?: number;
  /** Where the pass runs: 'auto' (default, or $MOTHER_BACKEND), 'cpu' or 'cuda' (see ScanOptions).
   *  rank.exact always runs on the CPU. */
  backend?: BackendName;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
  signal?: AbortSignal;
}

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
}

/** The summary slots a TensorMoments reads. */
const MOMENT_FIELDS = ['count', 'mean', 'std', 'skewness', 'kurtosis', 'nan', 'inf'] as const;

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

export interface PairwiseStats {
  models: string[];
  n: number;
  layers: LayerDistances[];
  skipped: SkippedTensor[];
  /** Aggregates over layers, N x N, 0 on the diagonal. */
  aggregates: {
    /** mean over layers of the per-layer RMS (full fine-tuning distance of the paper) */
    meanRms: Float64Array;
    /** sum over layers of mean |diff| (the paper's clustering distance) */
    sumMeanAbs: Float64Array;
    /** max over layers of the min-max-normalised max |diff| (the paper's first release) */
    maxNormMaxDiff: Float64Array;
    /** sum over ranked layers of rank(Wi - Wj) (LoRA distance); absent unless 'rank' was asked */
    sumRank?: Float64Array;
  };
  bytesRead: number[];
  seconds: number;
  simd: string;
  threads: number;
  /** The device the pass ran on (and, for 'auto' on the CPU, why). */
  backend: BackendUsed;
}

type RawLayer = {
  sumSq: Float64Array; sumAbs: Float64Array; maxDiff: Float64Array; minDiff: Float64Array; count: Float64Array; skipped: Float64Array;
  rank?: Float64Array; rankTol?: Float64Array; moments?: Float64Array;
};

function symmetric(upper: Float64Array, n: number, diagonal: number): Float64Array {
  return squareFromPairs(n, diagonal, (i, j) => upper[pairIndex(n, i, j)]);
}

function layerFromRaw(t: AlignedTensor, raw: RawLayer, n: number): LayerDistances {
  const mk = (fill: number) => new Float64Array(n * n).fill(fill);
  const rms = mk(NaN), meanAbs = mk(NaN), maxDiff = mk(NaN), count = mk(0), skipped = mk(0);
  for (let i = 0; i < n; i++) {
    rms[i * n + i] = 0;
    meanAbs[i * n + i] = 0;
    maxDiff[i * n + i] = 0;
    for (let j = i + 1; j < n; j++) {
      const p = pairIndex(n, i, j);
      const c = raw.count[p];
      count[i * n + j] = count[j * n + i] = c;
      skipped[i * n + j] = skipped[j * n + i] = raw.skipped[p];
      if (c > 0) {
        rms[i * n + j] = rms[j * n + i] = Math.sqrt(raw.sumSq[p] / c);
        meanAbs[i * n + j] = meanAbs[j * n + i] = raw.sumAbs[p] / c;
        maxDiff[i * n + j] = raw.maxDiff[p];
        maxDiff[j * n + i] = -raw.minDiff[p];
      }
    }
  }
  const layer: LayerDistances = { name: t.name, rows: t.rows, rowElems: t.rowElems, resized: t.resized, rms, meanAbs, maxDiff, count, skipped };
  if (raw.rank) {
    layer.rank = symmetric(raw.rank, n, 0);
    layer.rankTol = symmetric(raw.rankTol!, n, 0);
  }
  if (raw.moments) {
    const slot = packedRecords(raw.moments, n, summaryLayout(), MOMENT_FIELDS, `pairwise moments of ${t.name}`);
    layer.moments = t.rows.map((r, m) =>
      r < 0 ? null : { count: slot(m, 'count'), mean: slot(m, 'mean'), std: slot(m, 'std'), skewness: slot(m, 'skewness'), kurtosis: slot(m, 'kurtosis'), nan: slot(m, 'nan'), inf: slot(m, 'inf') },
    );
  }
  return layer;
}

/** The aggregate distances the recovery uses, from per-layer distances. */
export function aggregate(layers: LayerDistances[], n: number): PairwiseStats['aggregates'] {
  const meanRms = new Float64Array(n * n);
  const sumMeanAbs = new Float64Array(n * n);
  const maxNormMaxDiff = new Float64Array(n * n);
  const layersUsed = new Float64Array(n * n);
  for (const l of layers) {
    // per-layer max |diff|, min-max normalised over the compared off-diagonal pairs
    let lo = Infinity, hi = -Infinity;
    const maxAbs = new Float64Array(n * n).fill(NaN);
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) {
        if (!(l.count[i * n + j] > 0)) continue;
        const v = Math.max(l.maxDiff[i * n + j], l.maxDiff[j * n + i]);
        maxAbs[i * n + j] = maxAbs[j * n + i] = v;
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        if (i === j || !(l.count[i * n + j] > 0)) continue;
        const k = i * n + j;
        meanRms[k] += l.rms[k];
        layersUsed[k] += 1;
        sumMeanAbs[k] += l.meanAbs[k];
        const norm = hi > lo ? (maxAbs[k] - lo) / (hi - lo) : 0;
        maxNormMaxDiff[k] = Math.max(maxNormMaxDiff[k], norm);
      }
  }
  for (let k = 0; k < n * n; k++) {
    const i = Math.floor(k / n);
    if (i === k % n) continue;
    if (layersUsed[k] > 0) meanRms[k] /= layersUsed[k];
    else meanRms[k] = sumMeanAbs[k] = maxNormMaxDiff[k] = NaN; // nothing comparable
  }
  const ranked = layers.filter((l) => l.rank);
  if (ranked.length === 0) return { meanRms, sumMeanAbs, maxNormMaxDiff };
  const sumRank = new Float64Array(n * n);
  const rankedPairs = new Float64Array(n * n);
  for (const l of ranked)
    for (let k = 0; k < n * n; k++) {
      if (Number.isNaN(l.rank![k])) continue;
      sumRank[k] += l.rank![k];
      rankedPairs[k] += 1;
    }
  for (let k = 0; k < n * n; k++) if (Math.floor(k / n) !== k % n && rankedPairs[k] === 0) sumRank[k] = NaN;
  return { meanRms, sumMeanAbs, maxNormMaxDiff, sumRank };
}

/**
 * Distances between every pair of `models` (paths, as accepted by scanModel), reading each
 * model's bytes once.
 */
export async function pairwiseStats(models: string[], options: PairwiseOptions = {}): Promise<PairwiseStats> {
  if (!Array.isArray(models)) throw new MotherError('ERR_INVALID_ARGUMENT', 'models must be an array of paths');
  const resolved = await Promise.all(models.map((m) => resolveModel(m)));
  const headers: ModelHeader[] = await Promise.all(resolved.map((r) => inspectResolved(r)));
  return pairwiseResolved(resolved, headers, options);
}

/** pairwiseStats for models already resolved and inspected (the recovery reuses them). */
export async function pairwiseResolved(resolved: ModelFiles[], headers: ModelHeader[], options: PairwiseOptions = {}): Promise<PairwiseStats> {
  if (options.chunkElems !== undefined && (!Number.isInteger(options.chunkElems) || options.chunkElems < 64 || options.chunkElems > 1 << 24)) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `chunkElems must be an integer between 64 and 2^24, got ${options.chunkElems}`);
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 0 || options.threads > 4096)) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `threads must be an integer between 0 and 4096, got ${options.threads}`);
  }
  const n = resolved.length;
  const { tensors, skipped } = alignTensors(headers, options.layers);
  const metrics = options.metrics ?? ['rms', 'l1', 'maxdiff'];
  for (const m of metrics) {
    if (!['rms', 'l1', 'maxdiff', 'rank'].includes(m)) throw new MotherError('ERR_INVALID_ARGUMENT', `unknown metric ${m} (expected rms, l1, maxdiff or rank)`);
  }
  const rankOpts = options.rank ?? {};
  const k = rankOpts.k ?? 64;
  if (!Number.isInteger(k) || k < 1 || k > 1024) throw new MotherError('ERR_INVALID_ARGUMENT', `rank.k must be an integer from 1 to 1024, got ${k}`);
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
  let last: { bytesDone: number; bytesTotal: number } | undefined;
  try {
    const raw = await native().pairwise(
      resolved.map((r) => ({ files: r.files, index: r.index })),
      tensors.map((t, i) => ({ name: t.name, rows: t.rows, rowElems: t.rowElems, sketch: sketch[i], moments: momentsOf[i] })),
      { threads: options.threads, simd: options.simd, chunkElems: options.chunkElems, jobElems: options.jobElems, sketchK: k, sketchSeed: rankOpts.seed, exactRank: rankOpts.exact === true, ...device.native },
      options.onProgress ? (p) => { if (!settled) { last = p; options.onProgress!(p); } } : undefined,
      cancel,
    );
    settled = true;
    if (options.onProgress && (!last || last.bytesDone !== last.bytesTotal)) {
      // the native final report can arrive after the promise settles: report completion here
      const total = raw.bytesRead.reduce((a, b) => a + b, 0);
      options.onProgress({ bytesDone: total, bytesTotal: total });
    }
    const layers = tensors.map((t, i) => layerFromRaw(t, raw.tensors[i], n));
    return {
      models: resolved.map((r) => r.path),
      n,
      layers,
      skipped,
      aggregates: aggregate(layers, n),
      bytesRead: raw.bytesRead,
      seconds: raw.seconds,
      simd: raw.simd,
      threads: raw.threads,
      backend: device.used,
    };
  } catch (e) {
    settled = true;
    throw fromNative(e);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
