// Stages 1 to 5 of the pipeline in one call: the headers (1), one read of every model that
// gives the pairwise distances (3) and, from the same bytes, the per-model kurtosis (2); then
// families (4: Ward, automatic cut or K) and, per family, the kurtosis direction and the
// minimum arborescence (5): the model graph. `evaluate` scores it against a ground truth.
import { BackendName, BackendUsed } from './core/backend';
import { clusterFamiliesOfPairs } from './method/clustering';
import { isSquare, LayerFilter, layerMatcher, pairIndex, squareFromPairs, TensorPredicate, UnionFind } from './method/matrix';
import { defaultKurtosisLayers, DEFAULT_LAMBDA, FamilyDiagnostics, KURTOSIS_MODES, KurtosisMode, recoverFamily, summedKurtosis } from './method/direction';
import { ModelFiles, resolveModel } from './io/discovery';
import { MotherError } from './core/errors';
import { check, checkOptions, commonOptions, invalid, shown } from './core/validate';
import { Evaluation, scoreGraph } from './method/evaluation';
import { inspectResolved, ModelHeader } from './io/inspect';
import { AGGREGATE_OF, aggregatePairs, PAIR_METRICS, PairMetric, pairwisePass, RANK_OPTIONS, RankOptions } from './io/pairwise';

export type DistanceMetric = PairMetric;

export interface RecoverOptions {
  /** Distance within families (default 'rms': full fine-tuning; 'rank' for LoRA families). */
  metric?: DistanceMetric;
  /** Weight of the kurtosis penalty (default 0.3). */
  lambda?: number;
  /** Kurtosis trend: 'finetune' (falls parent -> child, the default), 'pretrain' (rises), or 'auto' (per family, the cheaper tree). */
  direction?: KurtosisMode | 'auto';
  /** Number of families: a number (Ward, maxclust cut) or 'auto' (cut at the largest gap in merge heights; default). */
  families?: number | 'auto';
  /** Which square 2-D tensors enter the distances (default: all of them; every tensor when the models share no square 2-D tensor). */
  layers?: LayerFilter;
  /** Which square 2-D tensors enter the kurtosis (default per architecture: ViT attention output, Llama self_attn.o_proj, else all). */
  kurtosisLayers?: LayerFilter;
  rank?: RankOptions;
  threads?: number;
  simd?: string;
  /** Where the read runs: 'auto' (default, or $MOTHER_BACKEND), 'cpu' or 'cuda'. */
  backend?: BackendName;
  onProgress?: (p: { stage: 'read'; bytesDone: number; bytesTotal: number }) => void;
  signal?: AbortSignal;
}

export interface ModelInput {
  id: string;
  path: string;
}

export interface GraphModel {
  id: string;
  path: string;
  architecture: string;
  params: number;
  /** Summed excess kurtosis over the kurtosis layers (null when none was found). */
  kurtosis: number | null;
}

export interface GraphEdge {
  parent: string;
  child: string;
  distance: number;
  /**
   * Margin of the chosen parent, scale-free: (cost of the child's best other parent - cost of
   * this edge) / mean distance of the family. Positive: the chosen parent is the cheapest by
   * that much; negative: a cheaper parent would have closed a cycle; null: no alternative
   * (a family of two).
   */
  confidence: number | null;
}

export interface FamilyReport {
  members: string[];
  root: string;
  mode: KurtosisMode;
  cost: number;
  costs: Partial<Record<KurtosisMode, number>>;
  rootMargin: number | null;
  diagnostics: FamilyDiagnostics;
}

export interface ModelGraph {
  version: 1;
  models: GraphModel[];
  families: string[][];
  edges: GraphEdge[];
  roots: string[];
  familyReports: FamilyReport[];
  options: { metric: DistanceMetric; lambda: number; direction: KurtosisMode | 'auto'; families: number | 'auto' };
  /** Tensors left out of the comparison, and why. */
  skipped: { tensor: string; model: string | null; reason: string }[];
  bytesRead: number;
  seconds: number;
  /** The device the read ran on (and, for 'auto' on the CPU, why). */
  backend: BackendUsed;
}

// general.architecture of a GGUF file -> the transformers class of the models it is converted from
const GGUF_ARCHITECTURES: Record<string, string> = {
  llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM',
  gemma: 'GemmaForCausalLM', gemma2: 'Gemma2ForCausalLM', gemma3: 'Gemma3ForCausalLM', phi3: 'Phi3ForCausalLM',
};

function architectureOf(r: ModelFiles, h: ModelHeader): string {
  const c = r.config ?? {};
  const archs = c['architectures'];
  if (Array.isArray(archs) && typeof archs[0] === 'string') return archs[0];
  if (typeof c['model_type'] === 'string') return c['model_type'] as string;
  const gguf = h.files[0]?.format === 'gguf' ? h.files[0].metadata['general.architecture'] : undefined;
  if (gguf) return GGUF_ARCHITECTURES[gguf] ?? `gguf:${gguf}`;
  return 'unknown';
}

/** The checks of RecoverOptions. */
const RECOVER_OPTIONS = {
  ...commonOptions,
  metric: check.oneOf(PAIR_METRICS),
  lambda: check.nonNegative,
  direction: check.oneOf([...KURTOSIS_MODES, 'auto']),
  families: (v: unknown, what: string) => {
    if (v !== 'auto' && !(Number.isInteger(v) && (v as number) >= 1)) throw invalid("a positive integer or 'auto'", what, v);
  },
  layers: check.filter,
  kurtosisLayers: check.filter,
  rank: RANK_OPTIONS,
};

/** A model given to recover: a path, or an id and a path. */
const modelInput = (v: unknown, what: string) => {
  if (typeof v === 'string') return;
  const m = v as ModelInput | null;
  if (typeof m !== 'object' || m === null || typeof m.id !== 'string' || typeof m.path !== 'string') throw invalid('a path or { id, path }', what, v);
};

/** Recovers the model graph (a directed forest, parent -> child) of `models`. */
export async function recover(models: (string | ModelInput)[], options: RecoverOptions = {}): Promise<ModelGraph> {
  const t0 = Date.now();
  check.list('an array of models (paths or { id, path })', modelInput)(models, 'models');
  checkOptions(options, RECOVER_OPTIONS);
  const inputs: ModelInput[] = models.map((m) => (typeof m === 'string' ? { id: m, path: m } : m));
  const ids = new Set<string>();
  for (const m of inputs) {
    if (ids.has(m.id)) throw new MotherError('ERR_INVALID_ARGUMENT', `expected distinct model ids for models, got ${shown(m.id)} twice`);
    ids.add(m.id);
  }
  const metric = options.metric ?? 'rms';
  const lambda = options.lambda ?? DEFAULT_LAMBDA;
  const direction = options.direction ?? 'finetune';
  const familiesOpt = options.families ?? 'auto';

  const resolved = await Promise.all(inputs.map((m) => resolveModel(m.path)));
  const headers: ModelHeader[] = await Promise.all(resolved.map((r) => inspectResolved(r)));
  const archs = resolved.map((r, i) => architectureOf(r, headers[i]));
  const userKurtosis = layerMatcher(options.kurtosisLayers);
  const kuPredicates: TensorPredicate[] = archs.map((a) =>
    userKurtosis ? (name, shape) => isSquare(shape) && userKurtosis(name, shape) : defaultKurtosisLayers(a),
  );
  // default distance layers: the square 2-D tensors, or every tensor when no two models share one
  const squareCount = new Map<string, number>();
  for (const h of headers) for (const t of h.tensors) if (isSquare(t.shape)) squareCount.set(t.name, (squareCount.get(t.name) ?? 0) + 1);
  const sharedSquare = [...squareCount.values()].some((c) => c >= 2);
  const userLayers = layerMatcher(options.layers) ?? (() => true);
  const distanceFilter: TensorPredicate = (name, shape) => (!sharedSquare || isSquare(shape)) && userLayers(name, shape);
  const kurtosisAny: TensorPredicate = (name, shape) => kuPredicates.some((p) => p(name, shape));

  const n = inputs.length;
  // the distance within families and the clustering distance (the paper's: l1, or the rank)
  const clusterMetric: PairMetric = metric === 'rank' ? 'rank' : 'l1';
  const stats = await pairwisePass(resolved, headers, {
    layers: (name, shape) => distanceFilter(name, shape) || kurtosisAny(name, shape),
    moments: kurtosisAny,
    metrics: [metric, clusterMetric],
    rank: { ...options.rank, layers: (name, shape) => distanceFilter(name, shape) && isSquare(shape) },
    threads: options.threads,
    simd: options.simd,
    backend: options.backend,
    signal: options.signal,
    onProgress: options.onProgress ? (p) => options.onProgress!({ stage: 'read', ...p }) : undefined,
  });

  // per-model kurtosis from the same read
  const kurtosis = inputs.map((_, m) =>
    summedKurtosis(
      stats.layers.filter((l) => l.moments?.[m]).map((l) => ({ name: l.name, shape: l.shapes[m]!, kurtosis: l.moments![m]!.kurtosis })),
      kuPredicates[m],
    ),
  );
  const ku = kurtosis.map((k) => (k.layers.length ? k.value : 0));

  // distances over the distance layers only, one per pair
  const distLayers = stats.layers.filter((l) => distanceFilter(l.name, l.shapes[l.rows.findIndex((r) => r >= 0)]!));
  const agg = aggregatePairs(distLayers, n, [metric, clusterMetric]);
  const D = agg[AGGREGATE_OF[metric]];
  if (!D) throw new MotherError('ERR_INVALID_ARGUMENT', 'metric rank: no square 2-D tensor is shared by these models');
  const C = agg[AGGREGATE_OF[clusterMetric]]!;

  // comparability groups: same architecture and a finite distance (components)
  const comparable = new UnionFind(n);
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const p = pairIndex(n, i, j);
      if (archs[j] === archs[i] && Number.isFinite(C[p]) && Number.isFinite(D[p])) comparable.union(i, j);
    }
  const group = comparable.labels();
  const groups = group.reduce((a, b) => Math.max(a, b + 1), 0);
  let families: number[][];
  if (n === 0) families = [];
  else if (familiesOpt !== 'auto' && groups === 1) {
    families = clusterFamiliesOfPairs(C, n, { k: familiesOpt }).families;
  } else {
    if (familiesOpt !== 'auto' && groups !== 1) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `families = ${familiesOpt} needs comparable models; these form ${groups} architecture groups (use 'auto')`);
    }
    families = clusterFamiliesOfPairs(C, n, { groups: group }).families;
  }

  const edges: GraphEdge[] = [];
  const roots: string[] = [];
  const familyReports: FamilyReport[] = [];
  for (const fam of families) {
    const m = fam.length;
    const sub = squareFromPairs(m, 0, (a, b) => D[pairIndex(n, fam[a], fam[b])]);
    const fr = recoverFamily({ n: m, data: sub }, fam.map((i) => ku[i]), { mode: direction, lambda });
    roots.push(inputs[fam[fr.root]].id);
    for (const e of fr.edges) {
      edges.push({ parent: inputs[fam[e.parent]].id, child: inputs[fam[e.child]].id, distance: e.distance, confidence: e.relativeMargin });
    }
    familyReports.push({
      members: fam.map((i) => inputs[i].id),
      root: inputs[fam[fr.root]].id,
      mode: fr.mode,
      cost: fr.cost,
      costs: fr.costs,
      rootMargin: fr.rootMargin,
      diagnostics: fr.diagnostics,
    });
  }
  const params = headers.map((h) => h.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0));
  return {
    version: 1,
    models: inputs.map((inp, i) => ({
      id: inp.id,
      path: resolved[i].path,
      architecture: archs[i],
      params: params[i],
      kurtosis: kurtosis[i].layers.length ? kurtosis[i].value : null,
    })),
    families: families.map((f) => f.map((i) => inputs[i].id)),
    edges,
    roots,
    familyReports,
    options: { metric, lambda, direction, families: familiesOpt },
    skipped: stats.skipped.map((s) => ({ tensor: s.name, model: s.model >= 0 ? inputs[s.model].id : null, reason: s.reason })),
    bytesRead: stats.bytesRead.reduce((a, b) => a + b, 0),
    seconds: (Date.now() - t0) / 1000,
    backend: stats.backend,
  };
}

/**
 * The paper's metrics of a recovered graph against the ground truth ({edges: [[parent,
 * child], ...]}). Truth edges between models outside the graph are left out (a truth file
 * may describe a larger zoo); `ignoredTruthEdges` counts them.
 */
export function evaluate(graph: ModelGraph, truth: { edges: [string, string][] }): Evaluation & { ignoredTruthEdges: number } {
  const ids = new Set(graph.models.map((m) => m.id));
  const edges = truth.edges.filter(([p, c]) => ids.has(p) && ids.has(c));
  if (truth.edges.length > 0 && edges.length === 0) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `no ground-truth edge joins two of these models (model ids: ${[...ids].slice(0, 3).join(', ')}${ids.size > 3 ? ', ...' : ''}; truth ids: ${truth.edges[0].join(', ')}, ...)`);
  }
  const ev = scoreGraph({ edges: graph.edges.map((e) => [e.parent, e.child] as [string, string]), families: graph.families }, { edges }, graph.models.map((m) => m.id));
  return { ...ev, ignoredTruthEdges: truth.edges.length - edges.length };
}
