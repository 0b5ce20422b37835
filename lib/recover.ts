// Stages 1 to 5 of the pipeline in one call: the headers (1), one read of every model that
// gives the pairwise evidence (3: distances, ranks of differences, the relatedness sums) and,
// from the same bytes, the per-model kurtosis (2); then families (4: the connected components
// of related pairs, or Ward with K given) and, per family, the metric, the kurtosis layers,
// the kurtosis direction and the minimum arborescence (5): the model graph. `evaluate` scores
// it against a ground truth.
import * as os from 'node:os';
import * as path from 'node:path';

import { BackendName, BackendUsed } from './core/backend';
import { clusterFamiliesOfPairs, relatedFamilies, weakestLink } from './method/clustering';
import { isSquare, LayerFilter, layerMatcher, pairCount, pairIndex, squareFromPairs, TensorPredicate, UnionFind } from './method/matrix';
import { defaultKurtosisLayers, DEFAULT_LAMBDA, FamilyDiagnostics, FamilyRecovery, KURTOSIS_MODES, KurtosisMode, recoverFamily, summedKurtosis } from './method/direction';
import { chooseClock, clockTrees, findMerges, minimumSpanningTree } from './method/clocks';
import { bootstrapSupport, hashString } from './method/support';
import { adapterLike, chooseKurtosisLayers, chooseMetric, KurtosisChoice, MetricChoice, PairRankEvidence, pairRankEvidence, rankCapacity } from './method/choices';
import { ModelFiles, resolveModel, writtenAt } from './io/discovery';
import { duplicateSource } from './method/duplicates';
import { DifferingRows, differingRows, rowDistance, RowHashTable, TOKEN_EMBEDDING } from './method/embedding_rows';
import { VocabularyOrder, vocabularyOrder } from './method/vocabulary';
import { rowHashes } from './io/row_hashes';
import { spectralEntropies } from './io/spectra';
import { differenceMoments } from './io/diff_moments';
import { chooseByAlignment, FamilyAlignment, inputAlignment } from './method/adapter_base';
import { FanMove, resolveFans } from './method/fans';
import { DIFF_MARGIN, DIFF_MARGIN_OTHER, DIFF_WINDOW, differenceKurtosis, differenceKurtosisError, reparentByShape, ShapeMove, siblingPenalty } from './method/difference_shape';
import { AdapterPlan, adapterDifferences, adapterFactors, adapterProducts, adapterProductsAndNorms, ModuleDifference, ModuleFactors, moduleInnerProduct, planAdapter } from './io/adapter';
import { MotherError } from './core/errors';
import { check, checkOptions, commonOptions, invalid, shown } from './core/validate';
import { Evaluation, familyAgreement, FamilyAgreement, scoreGraph } from './method/evaluation';
import { inspectResolved, ModelHeader } from './io/inspect';
import { FLOAT_DTYPES } from './io/alignment';
import { AGGREGATE_OF, aggregatePairs, PAIR_METRICS, PairLayer, PairMetric, pairwisePass, RANK_OPTIONS, RankOptions } from './io/pairwise';
import {
  NullCalibration, PairDecision, pairStatistic, PairStatistic, RELATED_R0, RELATEDNESS_ALPHA, RelatednessOptions, TensorSums, testPairs, Verdict,
} from './method/relatedness';

export type DistanceMetric = PairMetric;
/** The metric options of the recovery: a metric, or 'auto' (chosen per family). */
export const RECOVER_METRICS = ['auto', ...PAIR_METRICS] as const;
export type RecoverMetric = (typeof RECOVER_METRICS)[number];

export interface RecoverOptions {
  /** Distance within families: 'auto' (default: per family, rank for low-rank differences, else rms), 'rms', 'rank', 'l1' or 'maxdiff'. */
  metric?: RecoverMetric;
  /** Weight of the kurtosis penalty (default 0.3). */
  lambda?: number;
  /** Direction evidence: 'auto' (default: per family, the clock that agrees best with the distance tree), or the paper's kurtosis trend set by hand: 'finetune' (falls parent -> child) or 'pretrain' (rises). */
  direction?: KurtosisMode | 'auto';
  /** Families: 'auto' (default: connected components of the pairs the relatedness test calls related) or a number K (Ward, maxclust cut: the paper's protocol). */
  families?: number | 'auto';
  /** Which square 2-D tensors enter the distances (default: all of them; every tensor when the models share no square 2-D tensor). */
  layers?: LayerFilter;
  /** Which square 2-D tensors enter the kurtosis (default per family: the architecture's layers that vary in the family, else every varying square layer). */
  kurtosisLayers?: LayerFilter;
  /** The relatedness test's levels (defaults: alpha 0.01 over the pairs of a comparability group, r0 0.1). */
  relatedness?: RelatednessOptions;
  /** Include every pair's relatedness evidence in the graph (`pairs`). */
  pairs?: boolean;
  rank?: RankOptions;
  threads?: number;
  simd?: string;
  /** Where the read runs: 'auto' (default, or $MOTHER_BACKEND), 'cpu' or 'cuda'. */
  backend?: BackendName;
  /** Stages: 'read' (bytes), 'svd' (the exact rank's SVDs), 'spectra' (the spectral clock: models measured, spectraDone of spectraTotal; direction 'auto'). */
  onProgress?: (p: { stage: 'read' | 'svd' | 'spectra' | 'differences' | 'bases' | 'adapters'; bytesDone: number; bytesTotal: number; svdDone?: number; svdTotal?: number; spectraDone?: number; spectraTotal?: number; differencesDone?: number; differencesTotal?: number; adapter?: string; basesDone?: number; basesTotal?: number; adaptersDone?: number; adaptersTotal?: number }) => void;
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
  /** Summed excess kurtosis over its family's kurtosis layers (null when none was found). */
  kurtosis: number | null;
}

/** What an edge is: a training step ('finetune', or 'adapter' in a family whose differences are low-rank), a copy ('duplicate': identical values; 'converted': a dtype copy at that dtype's rounding level; 'quantized': a copy at the int8 rounding noise level), or one of a merge's parents. */
export const EDGE_RELATIONS = ['finetune', 'adapter', 'quantized', 'converted', 'duplicate', 'merge'] as const;
export type EdgeRelation = (typeof EDGE_RELATIONS)[number];

/** Mantissa bits of the float dtypes (storage precision; a converted copy has fewer than its source). */
export const MANTISSA_BITS: Record<string, number> = {
  F64: 52, F32: 23, F16: 10, BF16: 7, F8_E4M3: 3, F8_E4M3FNUZ: 3, F8_E5M2: 2, F8_E5M2FNUZ: 2,
};
/** A training edge with a confidence (bootstrap support) below this, or none, is marked uncertain: see benchmarks/RESULTS.md for how often such edges are right. */
export const UNCERTAIN_CONFIDENCE = 0.5;
/** A pair differing by at most this RMS relative to the weights' spread, in different dtypes, is a dtype conversion (BF16 rounding: about 2^-9 relative). */
export const CONVERTED_REL = 2 ** -8;
/** A pair differing by at most this relative RMS is a quantisation round-trip copy (Q8_0: about 0.005), when neither model shows a quantisation grid. */
export const QUANTIZED_REL = 0.01;
/** A model whose sampled blocks of 32 lie on a quantisation grid in at least this fraction
 *  (native/stats/quant_grid.h: a block of independent values does so with probability ~1e-30)
 *  is a dequantised copy; so is a model whose 2-D weights have a block-quantised dtype (GGUF). */
export const GRID_FRACTION = 0.5;
/** How far (relative RMS, as CONVERTED_REL) a quantised copy may lie from its source: 4 times
 *  the expected rounding noise of its type. A block's step is max|x| / L (L = 8 for 4-bit
 *  types, 127 for Q8_0), max|x| about 2.5 standard deviations of 32 weights, the noise
 *  step / sqrt(12): Q8_0 0.023, 4-bit 0.36; the 2- and 3-bit K-quants twice the 4-bit bound.
 *  MXFP4 (FP4 E2M1 under a power-of-two scale) is in the 4-bit class: its noise on Gaussian
 *  blocks of 32, simulated with the scale 2^(floor(log2 max|x|) - 2), is 0.115 std, 3x inside. */
export function quantizedCopyRel(kind: string): number {
  const levels = /^Q8/.test(kind) ? 127 : /^(Q[23]|IQ[123]|TQ)/.test(kind) ? 4 : 8;
  return (4 * 2.5) / levels / Math.sqrt(12);
}
const BLOCK_DTYPE = /^(Q\d|IQ\d|TQ\d|MXFP4$)/;
/** ONNX linear quantisation (per-tensor or per-channel scale and zero point): its rounding error
 *  is known from the scales (Dequantized.roundingRms), so a copy is accepted when the pair's RMS
 *  difference is at most this many times that expected error. */
export const AFFINE_COPY_FACTOR = 2;

export interface GraphEdge {
  parent: string;
  child: string;
  distance: number;
  relation: EdgeRelation;
  /** merge only: the fitted weight of this parent (the two weights of a merge sum to 1), and the fit's relative residual. */
  weight?: number;
  residual?: number;
  /** copies only: RMS of the difference relative to the weights' spread. */
  relativeDifference?: number;
  /** A training edge whose confidence is below UNCERTAIN_CONFIDENCE (its direction or parent may well be wrong); false for copies and merges. */
  uncertain: boolean;
  /**
   * Training edges: the edge's bootstrap support, the fraction of BOOTSTRAP_REPLICATES
   * resamplings of the layers (with replacement) on which the whole direction stage gives this
   * parent to this child (README "Confidence"; benchmarks/RESULTS.md how often edges of each
   * support are right). null for copies, merges, adapters of PEFT folders and with --metric maxdiff.
   */
  confidence: number | null;
  /**
   * Training edges: the margin of the chosen parent, scale-free: (cost of the child's best other
   * parent - cost of this edge) / mean distance of the family. Positive: the chosen parent is
   * the cheapest by that much; negative: a cheaper parent would have closed a cycle; null: no
   * alternative (a family of two). Absent on other edges.
   */
  margin?: number | null;
}

/** A PEFT LoRA adapter of the set: its base, how it was found, and its difference to it. */
export interface AdapterReport {
  id: string;
  /** base_model_name_or_path of adapter_config.json (null when not given). */
  declaredBase: string | null;
  /** The base's id, or null when the base is absent from the set (or ambiguous). */
  base: string | null;
  /** 'name': base_model_name_or_path names the model; 'fit': the only family whose models hold every target tensor in dW's shape (the family root, or the first such model when the root does not fit); 'weights': of several such families, the one whose weights dW is aligned with (lib/method/adapter_base.ts; its root, or first fitting model); null: absent or ambiguous. */
  resolvedBy: 'name' | 'fit' | 'weights' | null;
  why: string;
  /** Models holding every target tensor with dW's shape. */
  candidates: string[];
  /** Where the candidates lie in several families: per family, the model scored (its root where it
   *  fits) and its input alignment q = sum ||dW X^T||^2 / sum ||dW||^2 ||X||^2 / in over the modules
   *  read (about 1 for a model unrelated to dW, larger for its base: lib/method/adapter_base.ts; null
   *  when none was read). Absent otherwise. */
  alignment?: { model: string; q: number | null; modules: number }[];
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  /** ||dW||_F over every module (from r x r Gram products), and the summed numerical rank of the dW's. */
  frobenius: number;
  rank: number;
  /** The edge's distance and in which metric (the family's: rms or rank; rms where the family uses l1 or maxdiff, which need the dense difference). Null without a base. */
  distance: number | null;
  metric: DistanceMetric | null;
  modules: Pick<ModuleDifference, 'module' | 'target' | 'shape' | 'r' | 'scaling' | 'frobenius' | 'rms' | 'rank'>[];
  /** Tensors of the adapter file that are no LoRA factor (e.g. modules_to_save copies): not part of the difference. */
  notIncluded: string[];
  /** The target tensors outside the distance layers of its base's family (e.g. GPT-2's c_attn,
   *  not square): their dW is in no distance (as a full fine-tune's changes there are not);
   *  every target there: the edge's distance is 0. Absent without a base. */
  outsideDistance?: string[];
  /** The adapter (its base + dW) against every other member of its base's family and every
   *  other adapter whose base is in it, without merging (<X - Base, dW> from one pass over X's
   *  target tensors, <dW1, dW2> from the factors): the family's RMS distance (the mean over its
   *  distance layers of the RMS difference; null where nothing is comparable) and the relative
   *  difference (RMS over the square layers relative to the weights' spread; between two
   *  adapters of one base, ||dW1 - dW2|| relative to their norms; null for adapters of two
   *  bases). Absent without a base. */
  distances?: { model: string; rms: number | null; relativeDifference: number | null }[];
}

/** The relatedness evidence between two models. */
export interface PairLink {
  a: string;
  b: string;
  verdict: Verdict;
  /** Pooled Pearson r of the compared tensors. */
  r: number | null;
  /** Calibrated z (the measured null's scale) and its one-sided p-value (log10 where p underflows). */
  z: number | null;
  p: number | null;
  log10p: number | null;
  /** Tensors in the statistic. */
  tensors: number;
  /** Every compared tensor holds identical values. */
  identical: boolean;
}

/** One pair's evidence (graph.pairs, with `pairs: true`). */
export interface PairEvidence extends PairLink {
  /** Excess correlation over the shifted null, and its confidence bounds at the test's level. */
  excess: number | null;
  excessLow: number | null;
  excessHigh: number | null;
  /** The same statistic with the relation broken (the shifted correlations against each other), in the same calibrated units: a draw of z under the null. */
  nullZ: number | null;
  /** Tensors left out of the statistic and why (name: reason). */
  leftOut: { tensor: string; reason: string }[];
}

export interface FamilyReport {
  members: string[];
  root: string;
  /** The kurtosis mode of the direction (null when another clock was used). */
  mode: KurtosisMode | null;
  cost: number;
  costs: Partial<Record<KurtosisMode, number>>;
  rootMargin: number | null;
  diagnostics: FamilyDiagnostics;
  /** The distance used in this family, and why (with 'auto': chosen from the ranks of differences). */
  metric: { used: DistanceMetric; chosen: boolean; why: string; rankFraction: number | null };
  /** The direction clock used (e.g. 'norm+': the squared weight norm rises parent -> child), whether it was chosen ('auto') or given, its agreement with the distance tree, the family's direction confidence (rootMargin: its agreement minus that of the best candidate rooting the family at another model; null when none does or the mode is given), and every candidate's agreement and best root; with 'auto' also the cost and root of each candidate's own tree (lib/method/clocks.ts, clockTrees). */
  clock: { used: string; chosen: boolean; agreement: number | null; rootMargin: number | null; why: string; scores: { clock: string; agreement: number; root: string; treeCost?: number; treeRoot?: string }[] };
  /** Members left out of the tree as copies (duplicates, converted, quantized: leaves under their source) and as merges (two parents). */
  copies: { copies: number; merges: number };
  /** The kurtosis layers used, and why. */
  kurtosisLayers: { layers: string[]; rule: KurtosisChoice['rule']; why: string };
  /** What holds the family together (its weakest related link on the strongest spanning tree;
   *  null for one model or with K given when its members are not all linked) and its strongest
   *  link to any model outside (null when none is comparable). */
  evidence: { weakestLink: PairLink | null; nearestOutsider: PairLink | null };
  /** Identical token-embedding rows (lib/method/embedding_rows.ts): the tensor, and the fewest and
   *  most rows that differ between two tree members; the tree is built on them first, then on the
   *  distance. null when the family has no such evidence. */
  rows: { tensor: string; minDiffering: number; maxDiffering: number } | null;
  /** The vocabulary sizes (lib/method/vocabulary.ts, direction 'auto'): the token embedding and the
   *  fewest and most rows among the tree members; the root is one of the smallest and no edge goes
   *  from more rows to fewer. null when the sizes are all equal or a member has no token embedding. */
  vocabulary: { tensor: string; minRows: number; maxRows: number } | null;
  /** The shape of the differences (lib/method/difference_shape.ts; direction 'auto', three or more
   *  members): the tensors and rows sampled, the rule's window and margin, and the pairs read as
   *  two runs apart (a third member one run from both), whose edge costs `window` times its
   *  distance in the tree; `moved`: [child, from, to] for each child the directed tree's shape
   *  rule moved to the member one run from it (language models: reparentByShape); `fans`: [child,
   *  from, to] for each child moved from a sibling up to the parent they share (every family:
   *  lib/method/fans.ts). null when not measured; absent from reports of adapters without a base. */
  differences?: { tensors: number; sampledRows: number; window: number; margin: number; penalised: [string, string][]; moved?: [string, string, string][]; fans?: [string, string, string][] } | null;
}

/** The relatedness test of one comparability group. */
export interface RelatednessGroup {
  members: string[];
  /** Pairs tested together (the Bonferroni count). */
  pairs: number;
  null: NullCalibration;
  verdicts: Record<Verdict, number>;
}

export interface ModelGraph {
  version: 4;
  models: GraphModel[];
  families: string[][];
  edges: GraphEdge[];
  roots: string[];
  familyReports: FamilyReport[];
  /** Sets of exact copies: every compared tensor holds identical values (they stay in their family; edges between them have distance 0).
   *  sameDtypes: every member stores every tensor (by name) in the same dtype, so the tensor bytes are identical too (else, e.g., a BF16 model and its F32 upcast). */
  /** Sets of identical models; `source`: the member the others hang off in the graph, `sourceBy`: 'written' (its weight files are the oldest, by 2 s or more) or 'order' (first in input order). */
  duplicates: { members: string[]; sameDtypes: boolean; source: string; sourceBy: 'written' | 'order' }[];
  /** The relatedness test: its levels and rule, and each comparability group's measured null. */
  relatedness: { alpha: number; r0: number; rule: string; groups: RelatednessGroup[] };
  /** Every pair's evidence (only with `pairs: true`). */
  pairs?: PairEvidence[];
  options: { metric: RecoverMetric; lambda: number; direction: KurtosisMode | 'auto'; families: number | 'auto' };
  /** How each model's tensors were aligned to the first model's: by 'name', 'normalised' names or 'order' and shape, and how many of its float tensors matched. */
  alignment: { model: string; method: 'name' | 'normalised' | 'order'; matched: number; tensors: number }[];
  /** PEFT LoRA adapters of the set (each the child of its base, relation 'adapter'); absent when there are none. */
  adapters?: AdapterReport[];
  /** Tensors left out of the comparison, and why. */
  skipped: { tensor: string; model: string | null; reason: string }[];
  bytesRead: number;
  seconds: number;
  /** The device the read ran on (and, for 'auto' on the CPU, why). */
  backend: BackendUsed;
  /** The graph against a ground truth (set by the CLI's --truth, or by `graphEvaluation`): optional, additive. */
  evaluation?: GraphEvaluation;
}

/** A recovered graph scored against a ground truth, as the JSON and HTML carry it. Each truth edge
 *  is in exactly one of correct, reversed (recovered child -> parent) and missing; each recovered
 *  edge in exactly one of correct, reversed and wrong. */
export interface GraphEvaluation {
  /** The truth file, where there is one. */
  truth: string | null;
  directedAccuracy: number | null;
  undirectedAccuracy: number | null;
  clusteringAccuracy: number;
  truthEdges: number;
  /** Truth edges between models outside the graph, left out. */
  ignoredTruthEdges: number;
  /** Scored on tree_edges (a version-2 zoo truth with merges). */
  treeEdges: boolean;
  families: { exact: number; truthFamilies: number; predictedFamilies: number; adjustedRand: number; wrong: { truth: string[]; predicted: string[][] }[] };
  edges: {
    correct: { parent: string; child: string }[];
    /** Recovered parent -> child where the truth has child -> parent. */
    reversed: { parent: string; child: string }[];
    /** Recovered edges joining models the truth does not join (truthParent: the child's parent in the truth). */
    wrong: { parent: string; child: string; truthParent: string | null }[];
    /** Truth edges recovered in neither direction (predictedParent: the parent the graph gave the child). */
    missing: { parent: string; child: string; predictedParent: string | null }[];
  };
}

/** How the relatedness decision reads in the graph. */
export const RELATEDNESS_RULE =
  'per tensor: atanh(r) minus the mean atanh of the rows-shifted-by-1-and-2 correlations; pooled with weights 1/variance into Z; ' +
  'null variance measured from the shifted draws (at least 1, related pairs left out); related when the one-sided p of Z/sqrt(kappa) ' +
  '(Student t) is at most alpha/m over the m pairs of the comparability group and the pooled excess correlation is at least r0, or every ' +
  'compared tensor is identical; unrelated when an excess correlation of r0 or more is excluded at the same level; else undecided. ' +
  'Families: connected components of related pairs.';

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
  // 'auto' or a pair metric (the message names the pair metrics, as before 'auto' existed)
  metric: (v: unknown, what: string) => {
    if (v !== 'auto') check.oneOf(PAIR_METRICS)(v, what);
  },
  lambda: check.nonNegative,
  direction: check.oneOf([...KURTOSIS_MODES, 'auto']),
  families: (v: unknown, what: string) => {
    if (v !== 'auto' && !(Number.isInteger(v) && (v as number) >= 1)) throw invalid("a positive integer or 'auto'", what, v);
  },
  layers: check.filter,
  kurtosisLayers: check.filter,
  relatedness: check.object({
    alpha: (v: unknown, what: string) => { if (!(typeof v === 'number' && v > 0 && v < 1)) throw invalid('a number in (0, 1)', what, v); },
    r0: (v: unknown, what: string) => { if (!(typeof v === 'number' && v > 0 && v < 1)) throw invalid('a number in (0, 1)', what, v); },
  }),
  pairs: check.boolean,
  rank: RANK_OPTIONS,
};

/** A model given to recover: a path, or an id and a path. */
const modelInput = (v: unknown, what: string) => {
  if (typeof v === 'string') return;
  const m = v as ModelInput | null;
  if (typeof m !== 'object' || m === null || typeof m.id !== 'string' || typeof m.path !== 'string') throw invalid('a path or { id, path }', what, v);
};

/** The relatedness sums of the pass for one compared tensor (lib/io/pairwise.ts PairLayer). */
type EvidenceLayer = PairLayer & {
  meanA?: Float64Array; meanB?: Float64Array; varA?: Float64Array; varB?: Float64Array; oneMinusR?: Float64Array;
  rShift1?: Float64Array; rShift2?: Float64Array; nShift?: Float64Array;
};

const sameShape = (a: readonly number[] | null, b: readonly number[] | null) => !!a && !!b && a.length === b.length && a.every((x, k) => x === b[k]);

/**
 * Which tensors the relatedness of a pair compares, from the headers: the square 2-D tensors
 * both models have (same name and shape); when they share none, every tensor of two or more
 * dimensions they share. Returns, per pair, whether it is in square mode.
 */
function relatednessModes(headers: ModelHeader[]): { squareMode: Uint8Array; anyGeneral: boolean } {
  const n = headers.length;
  const squares = headers.map((h) => new Set(h.tensors.filter((t) => isSquare(t.shape)).map((t) => `${t.name}\u0000${t.shape.join(',')}`)));
  const squareMode = new Uint8Array(pairCount(n));
  let anyGeneral = false;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      let shared = false;
      for (const k of squares[i]) if (squares[j].has(k)) { shared = true; break; }
      squareMode[pairIndex(n, i, j)] = shared ? 1 : 0;
      if (!shared) anyGeneral = true;
    }
  return { squareMode, anyGeneral };
}

/** The relatedness sums of pair (i, j) over the tensors its mode compares. */
function pairSums(layers: readonly EvidenceLayer[], n: number, i: number, j: number, squareMode: boolean): TensorSums[] {
  const p = pairIndex(n, i, j);
  const out: TensorSums[] = [];
  for (const l of layers) {
    const a = l.shapes[i], b = l.shapes[j];
    if (l.rows[i] < 0 || l.rows[j] < 0 || !sameShape(a, b)) continue;
    if (squareMode ? !isSquare(a!) : a!.length < 2) continue;
    const ns = l.nShift ? l.nShift[p] : 0;
    out.push({
      name: l.name,
      count: l.count[p],
      skipped: l.skipped[p],
      sumSq: l.count[p] > 0 ? l.rms[p] * l.rms[p] * l.count[p] : 0,
      meanA: l.meanA![p], meanB: l.meanB![p], varA: l.varA![p], varB: l.varB![p],
      oneMinusR: l.oneMinusR![p],
      rShift1: l.rShift1 ? l.rShift1[p] : NaN,
      rShift2: l.rShift2 ? l.rShift2[p] : NaN,
      nShift1: ns,
      nShift2: ns,
    });
  }
  return out;
}

const emptyVerdicts = (): Record<Verdict, number> => ({ related: 0, unrelated: 0, undecided: 0, 'not comparable': 0 });

/** Recovers the model graph (a directed forest, parent -> child) of `models`. */
/** What a family's direction stage is recomputed from on a bootstrap replicate (see bootstrapSupport). */
interface FamilyResample {
  n: number;
  metric: DistanceMetric;
  /** the layers the family's distance aggregates */
  distance: PairLayer[];
  /** the square layers with moments (the squared distances of the shape score; the clock layers are among them) */
  square: PairLayer[];
  /** the family's kurtosis layers (moments of every member) */
  kurtosis: PairLayer[];
  seed: number;
}

/**
 * The support of every directed edge among the core members `g` (global model indices): the
 * direction stage (distances, the minimum spanning tree, the clock by self-consistency, the
 * arborescence) recomputed on BOOTSTRAP_REPLICATES resamplings of the layers with replacement.
 * Copies and merges are not resampled (they are decided by near-zero differences and fits).
 */
function familySupport(rs: FamilyResample, g: number[], clockLayers: PairLayer[], direction: RecoverOptions['direction'], lambda: number, rows: DifferingRows | null, vocab: VocabularyOrder | null, spectra: Map<PairLayer, Float64Array>, penalty: Float64Array | null, shape: { rms: Float64Array; K: Float64Array; error?: Float64Array; reparent: boolean } | null): Float64Array {
  const vocabOpts = vocab ? { forbidden: vocab.forbidden, candidateRoots: g.map((_, x) => x).filter((x) => vocab.admissible[x]) } : {};
  const c = g.length;
  const universe = [...new Set([...rs.distance, ...rs.square, ...rs.kurtosis])];
  const index = new Map(universe.map((l, k) => [l, k]));
  const pairs: number[] = [];
  for (let x = 0; x < c; x++) for (let y = x + 1; y < c; y++) pairs.push(pairIndex(rs.n, Math.min(g[x], g[y]), Math.max(g[x], g[y])));
  const full = new Float64Array(pairs.length);
  const value = (l: PairLayer, p: number): number => {
    if (!(l.count[p] > 0)) return NaN;
    return rs.metric === 'rms' ? l.rms[p] : rs.metric === 'rank' ? (l.rank ? l.rank[p] : NaN) : l.meanAbs[p];
  };
  const aggregate = (w: (k: number) => number, out: Float64Array) => {
    pairs.forEach((p, q) => {
      let t = 0, ws = 0;
      for (const l of rs.distance) {
        const v = value(l, p);
        if (!Number.isFinite(v)) continue;
        const wl = w(index.get(l)!);
        t += wl * v;
        ws += wl;
      }
      // rms: the mean over layers; rank and l1: sums (a replicate's weights sum to the layer count)
      out[q] = ws > 0 ? (rs.metric === 'rms' ? t / ws : t) : NaN;
    });
  };
  aggregate(() => 1, full);
  const hasKurtosis = rs.kurtosis.length > 0;
  return bootstrapSupport({
    n: c,
    layers: universe.length,
    seed: rs.seed,
    tree: (w) => {
      const agg = new Float64Array(pairs.length);
      aggregate((k) => w[k], agg);
      const Dr = new Float64Array(c * c), Sr = new Float64Array(c * c);
      let q = 0;
      for (let x = 0; x < c; x++)
        for (let y = x + 1; y < c; y++, q++) {
          const d = Number.isFinite(agg[q]) ? agg[q] : full[q];
          Dr[x * c + y] = d * (penalty ? penalty[x * c + y] : 1);
          Dr[y * c + x] = d * (penalty ? penalty[y * c + x] : 1);
          const p = pairs[q];
          let sq = 0;
          for (const l of rs.square) if (l.count[p] > 0) sq += w[index.get(l)!] * l.sumSq[p];
          Sr[x * c + y] = Sr[y * c + x] = sq;
        }
      if (rows) {
        // the rows are not resampled (one tensor); the distance breaks their ties
        let dMax = 0;
        for (let q = 0; q < c * c; q++) if (Number.isFinite(Dr[q])) dMax = Math.max(dMax, Dr[q]);
        for (let x = 0; x < c; x++) for (let y = 0; y < c; y++) if (x !== y) Dr[x * c + y] = rowDistance(rows.differing[x * c + y], Dr[x * c + y], dMax, rows.tolerance);
      }
      const sumOver = (layers: PairLayer[], f: (l: PairLayer, x: number) => number) => g.map((_, x) => layers.reduce((t, l) => t + w[index.get(l)!] * f(l, x), 0));
      const norm = clockLayers.length ? sumOver(clockLayers, (l, x) => { const mo = l.moments![g[x]]!; return mo.count * (mo.std * mo.std + mo.mean * mo.mean); }) : null;
      const logstd = clockLayers.length ? sumOver(clockLayers, (l, x) => Math.log(l.moments![g[x]]!.std)) : null;
      const spectral = clockLayers.length && clockLayers.every((l) => spectra.has(l)) ? sumOver(clockLayers, (l, x) => spectra.get(l)![g[x]]) : null;
      const ku = hasKurtosis ? sumOver(rs.kurtosis, (l, x) => l.moments![g[x]]!.kurtosis) : g.map(() => 0);
      let fr: FamilyRecovery;
      if (direction === 'auto' || direction === undefined) {
        const o = clockTrees(Dr, c, { norm, kurtosis: hasKurtosis ? ku : null, logstd, spectral }, Sr, { lambda, forbidden: vocab?.forbidden, admissible: vocab?.admissible });
        fr = o.recovery ?? recoverFamily({ n: c, data: Dr }, ku, { mode: 'finetune', lambda, ...vocabOpts });
        // the shape of the differences is not resampled (like the rows): the moves on this replicate's tree
        if (shape && o.recovery) {
          const moved = shape.reparent ? reparentByShape(fr.parent, shape.rms, shape.K, c, { forbidden: vocab?.forbidden, error: shape.error, rows: rows ?? undefined }).parent : fr.parent;
          return resolveFans(moved, Sr, shape.K, c, { error: shape.error, forbidden: vocab?.forbidden, rows: rows ?? undefined }).parent;
        }
      } else {
        fr = recoverFamily({ n: c, data: Dr }, ku, { mode: direction, lambda });
      }
      const parent = new Array<number>(c).fill(-1);
      for (const e of fr.edges) parent[e.child] = e.parent;
      return parent;
    },
  });
}

export async function recover(models: (string | ModelInput)[], options: RecoverOptions = {}): Promise<ModelGraph> {
  const t0 = Date.now();
  check.list('an array of models (paths or { id, path })', modelInput)(models, 'models');
  checkOptions(options, RECOVER_OPTIONS);
  const given: ModelInput[] = models.map((m) => (typeof m === 'string' ? { id: m, path: m } : m));
  const ids = new Set<string>();
  for (const m of given) {
    if (ids.has(m.id)) throw new MotherError('ERR_INVALID_ARGUMENT', `expected distinct model ids for models, got ${shown(m.id)} twice`);
    ids.add(m.id);
  }
  const metric: RecoverMetric = options.metric ?? 'auto';
  const lambda = options.lambda ?? DEFAULT_LAMBDA;
  const direction = options.direction ?? 'auto';
  const familiesOpt = options.families ?? 'auto';
  const alpha = options.relatedness?.alpha ?? RELATEDNESS_ALPHA;
  const r0 = options.relatedness?.r0 ?? RELATED_R0;
  const k = options.rank?.k ?? 64;

  const resolvedAll = await Promise.all(given.map((m) => resolveModel(m.path)));
  const headersAll: ModelHeader[] = await Promise.all(resolvedAll.map((r) => inspectResolved(r)));
  // PEFT adapters stay out of the pairwise pass: each is attached to its base afterwards, its
  // difference computed from its own factors (validated here, before any model is read)
  const adapters = given.flatMap((inp, i) => (resolvedAll[i].adapter ? [{ input: inp, resolved: resolvedAll[i], plan: planAdapter(resolvedAll[i].adapter!, headersAll[i]) }] : []));
  const plain = given.map((_, i) => i).filter((i) => !resolvedAll[i].adapter);
  const inputs = plain.map((i) => given[i]);
  const resolved = plain.map((i) => resolvedAll[i]);
  const headers = plain.map((i) => headersAll[i]);
  const archs = resolved.map((r, i) => architectureOf(r, headers[i]));
  const n = inputs.length;
  const userKurtosis = layerMatcher(options.kurtosisLayers);
  const defaultKu = archs.map((a) => defaultKurtosisLayers(a));
  // kurtosis candidates: the user's layers, or every square 2-D tensor (chosen per family)
  const kurtosisCandidate: TensorPredicate = userKurtosis ? (name, shape) => isSquare(shape) && userKurtosis(name, shape) : (_name, shape) => isSquare(shape);
  // default distance layers: the square 2-D tensors, or every tensor when no two models share one
  const squareCount = new Map<string, number>();
  for (const h of headers) for (const t of h.tensors) if (isSquare(t.shape)) squareCount.set(t.name, (squareCount.get(t.name) ?? 0) + 1);
  const sharedSquare = [...squareCount.values()].some((c) => c >= 2);
  const userLayers = layerMatcher(options.layers) ?? (() => true);
  const distanceFilter: TensorPredicate = (name, shape) => (!sharedSquare || isSquare(shape)) && userLayers(name, shape);
  const modes = relatednessModes(headers);
  const relatednessTensor: TensorPredicate = (_name, shape) => isSquare(shape) || (modes.anyGeneral && shape.length >= 2);

  // the distance within families and, with K given, the clustering distance (the paper's: l1, or the rank)
  const clusterMetric: PairMetric | null = familiesOpt === 'auto' ? null : metric === 'rank' ? 'rank' : 'l1';
  const wantRank = metric === 'auto' || metric === 'rank' || clusterMetric === 'rank' || !userKurtosis;
  const passMetrics = [...new Set<PairMetric>([...(metric === 'auto' ? (['rms', 'rank'] as const) : [metric]), ...(clusterMetric ? [clusterMetric] : []), ...(wantRank ? (['rank'] as const) : [])])];
  let readBytes = 0;
  const stats = await pairwisePass(resolved, headers, {
    layers: (name, shape) => distanceFilter(name, shape) || kurtosisCandidate(name, shape) || relatednessTensor(name, shape),
    moments: kurtosisCandidate,
    metrics: passMetrics,
    rank: { ...options.rank, layers: (name, shape) => isSquare(shape) && (distanceFilter(name, shape) || kurtosisCandidate(name, shape)) },
    threads: options.threads,
    simd: options.simd,
    backend: options.backend,
    signal: options.signal,
    onProgress: options.onProgress ? (p) => { readBytes = p.bytesTotal; options.onProgress!({ stage: p.svdTotal ? 'svd' : 'read', ...p }); } : undefined,
    relatedness: true,
  } as Parameters<typeof pairwisePass>[2]);
  const layerShape = (l: PairLayer) => l.shapes[l.rows.findIndex((r) => r >= 0)]!;

  // stage 4: the relatedness of every pair, tested per comparability group
  const evLayers = (stats.layers as EvidenceLayer[]).filter((l) => relatednessTensor(l.name, layerShape(l)));
  const P = pairCount(n);
  const haveSums = evLayers.length === 0 || evLayers.every((l) => l.oneMinusR && l.meanA && l.varA);
  if (!haveSums) throw new MotherError('ERR_INTERNAL', 'the addon gives no relatedness sums (oneMinusR, rShift): rebuild it (npm rebuild mother)');
  const pairStats: PairStatistic[] = new Array(P);
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const p = pairIndex(n, i, j);
      pairStats[p] = pairStatistic(pairSums(evLayers, n, i, j, modes.squareMode[p] === 1));
    }
  // identical over every tensor the pass compared for the pair (not only the relatedness ones)
  const identical = new Uint8Array(P);
  for (let p = 0; p < P; p++) {
    if (!pairStats[p].identical) continue;
    identical[p] = stats.layers.every((l) => !(l.count[p] > 0) || l.rms[p] === 0) ? 1 : 0;
  }
  const comparableUf = new UnionFind(n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (pairStats[pairIndex(n, i, j)].comparable) comparableUf.union(i, j);
  const groupSets = comparableUf.sets(n);
  const decisions: PairDecision[] = new Array(P);
  const groupsOut: RelatednessGroup[] = [];
  const groupOf = new Int32Array(n);
  const groupNull: NullCalibration[] = [];
  for (const members of groupSets) {
    const ps: number[] = [];
    for (let a = 0; a < members.length; a++) for (let b = a + 1; b < members.length; b++) ps.push(pairIndex(n, members[a], members[b]));
    const test = testPairs(ps.map((p) => pairStats[p]), { alpha, r0 });
    for (const i of members) groupOf[i] = groupNull.length;
    groupNull.push(test.null);
    const verdicts = emptyVerdicts();
    ps.forEach((p, q) => {
      decisions[p] = test.decisions[q];
      verdicts[test.decisions[q].verdict]++;
    });
    if (members.length > 1) groupsOut.push({ members: members.map((i) => inputs[i].id), pairs: test.tested, null: test.null, verdicts });
  }
  // pairs across groups: nothing comparable
  const notComparable = testPairs([pairStatistic([])]).decisions[0];
  for (let p = 0; p < P; p++) if (!decisions[p]) decisions[p] = notComparable;
  const related = (p: number) => decisions[p].verdict === 'related';
  const fams = relatedFamilies(n, (p) => pairStats[p].comparable, related, (p) => identical[p] === 1);
  // the source of each set of identical models: the one written first (lib/method/duplicates.ts)
  const written = fams.duplicates.length ? await Promise.all(resolved.map((r) => writtenAt(r))) : [];
  const duplicateSets = fams.duplicates.map((set) => ({ set, ...duplicateSource(set, written) }));
  const duplicateSourceOf = new Int32Array(n).fill(-1);
  for (const d of duplicateSets) for (const i of d.set) duplicateSourceOf[i] = d.source;

  let families: number[][];
  if (n === 0) families = [];
  else if (familiesOpt === 'auto') families = fams.families;
  else {
    // the paper's protocol: Ward on the clustering distance, K families, one architecture group
    const aggC = aggregatePairs(stats.layers.filter((l) => distanceFilter(l.name, layerShape(l))), n, [clusterMetric!]);
    const C = aggC[AGGREGATE_OF[clusterMetric!]];
    if (!C) throw new MotherError('ERR_INVALID_ARGUMENT', 'metric rank: no square 2-D tensor is shared by these models');
    const comparable = new UnionFind(n);
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) if (archs[j] === archs[i] && Number.isFinite(C[pairIndex(n, i, j)])) comparable.union(i, j);
    const groups = comparable.labels().reduce((a, b) => Math.max(a, b + 1), 0);
    if (groups !== 1) throw new MotherError('ERR_INVALID_ARGUMENT', `families = ${familiesOpt} needs comparable models; these form ${groups} architecture groups (use 'auto')`);
    families = clusterFamiliesOfPairs(C, n, { k: familiesOpt }).families;
  }

  // distances over the distance layers, one per pair, for every metric that may be used
  const distLayers = stats.layers.filter((l) => distanceFilter(l.name, layerShape(l)));
  const usable: PairMetric[] = metric === 'auto' ? ['rms', 'rank'] : [metric];
  const agg = aggregatePairs(distLayers, n, usable);
  if (metric !== 'auto' && !agg[AGGREGATE_OF[metric]]) throw new MotherError('ERR_INVALID_ARGUMENT', 'metric rank: no square 2-D tensor is shared by these models');
  const familyFinite = (D: Float64Array | undefined, fam: number[]) => {
    if (!D) return false;
    for (let a = 0; a < fam.length; a++) for (let b = a + 1; b < fam.length; b++) if (!Number.isFinite(D[pairIndex(n, fam[a], fam[b])])) return false;
    return true;
  };
  const fallback = new Map<PairMetric, Float64Array>();
  const fallbackAgg = (m: PairMetric): Float64Array => {
    if (!fallback.has(m)) fallback.set(m, aggregatePairs(stats.layers.filter((l) => userLayers(l.name, layerShape(l))), n, [m])[AGGREGATE_OF[m]]!);
    return fallback.get(m)!;
  };
  // per pair, the rank evidence of the ranked distance layers (metric auto, adapter edges)
  const rankedDist = distLayers.filter((l) => l.rank);
  const rankEvidence = (i: number, j: number): PairRankEvidence => {
    const p = pairIndex(n, i, j);
    const ranks: number[] = [], caps: number[] = [];
    for (const l of rankedDist) {
      if (!(l.count[p] > 0) || !Number.isFinite(l.rank![p])) continue;
      ranks.push(l.rank![p]);
      caps.push(rankCapacity(layerShape(l)[0], k));
    }
    return pairRankEvidence(ranks, caps);
  };
  // whether a square layer's difference in pair p is nonzero above the storage noise
  const changed = (l: PairLayer, p: number) => (l.rank ? l.rank[p] > 0 : l.rms[p] > 0);
  const momentLayers = stats.layers.filter((l) => l.moments);

  const link = (i: number, j: number): PairLink => {
    const d = decisions[pairIndex(n, i, j)];
    return { a: inputs[i].id, b: inputs[j].id, verdict: d.verdict, r: d.r, z: d.z, p: d.p, log10p: d.log10p, tensors: d.tensors, identical: d.identical };
  };
  const zOf = (i: number, j: number) => decisions[pairIndex(n, i, j)].z ?? -Infinity;

  // stage 5 per family: copies (duplicates, dtype conversions, quantisation round trips) and
  // merges leave the tree as leaves; the rest is oriented by the clock the family's own data
  // agree with best (direction 'auto') or by the kurtosis mode given.
  const squareMoment = momentLayers.filter((l) => isSquare(layerShape(l)));
  const mantissa = (dtype: string): number => MANTISSA_BITS[dtype] ?? 0;
  // per model: the fewest mantissa bits of its square tensors (its storage precision)
  const precisionOf = headers.map((h) => {
    let bits = Infinity;
    for (const t of h.tensors) if (isSquare(t.shape)) bits = Math.min(bits, mantissa(t.dtype));
    // a model without square tensors (a convolutional network): its weights of two or more dimensions
    if (!Number.isFinite(bits)) for (const t of h.tensors) if (t.shape.length >= 2) bits = Math.min(bits, mantissa(t.dtype));
    return Number.isFinite(bits) ? bits : 0;
  });
  // per model: a quantised copy? (its 2-D weights in a block-quantised dtype, or on a grid)
  const quantOf: (string | null)[] = headers.map((h, m) => {
    const matrices = h.tensors.filter((t) => t.shape.length === 2);
    // a network without matrices (convolutional): its weights of two or more dimensions
    const weights = matrices.length ? matrices : h.tensors.filter((t) => t.shape.length > 2);
    const quantised = weights.filter((t) => BLOCK_DTYPE.test(t.dtype) || t.dequantized);
    if (weights.length && quantised.length * 2 >= weights.length) {
      // the most common quantised type (GGUF's block types, ONNX's QUINT8 / QINT8)
      const count = new Map<string, number>();
      for (const t of quantised) count.set(t.dtype, (count.get(t.dtype) ?? 0) + 1);
      return [...count].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0];
    }
    let t4 = 0, o4 = 0, t8 = 0, o8 = 0;
    for (const l of stats.layers) {
      const g = l.grid?.[m];
      if (!g) continue;
      t4 += g.q4Tested, o4 += g.q4On, t8 += g.q8Tested, o8 += g.q8On;
    }
    if (t4 >= 4 && o4 >= GRID_FRACTION * t4) return 'Q4_0';
    if (t8 >= 4 && o8 >= GRID_FRACTION * t8) return 'Q8_0';
    return null;
  });
  // per model: the expected RMS rounding error of each of its ONNX-quantised tensors, by its name
  const roundingOf = headers.map((h) => new Map(h.tensors.filter((t) => t.dequantized).map((t) => [t.name, t.dequantized!.roundingRms])));
  // squared Euclidean distance over the square tensors both have, the difference relative to
  // the models' spread, and per model the relative difference its ONNX quantisation grids alone
  // would give over the same positions (0 for a model without such grids)
  const pairSq = (i: number, j: number): { sq: number; rel: number; rounding: [number, number] } => {
    const p = pairIndex(n, i, j);
    let sq = 0, scale = 0, ri = 0, rj = 0;
    const addRounding = (l: PairLayer) => {
      const ei = roundingOf[i].get(l.names?.[i] ?? l.name), ej = roundingOf[j].get(l.names?.[j] ?? l.name);
      if (ei) ri += l.count[p] * ei * ei;
      if (ej) rj += l.count[p] * ej * ej;
    };
    for (const l of squareMoment) {
      const a = l.moments![i], b = l.moments![j];
      if (!a || !b || !(l.count[p] > 0)) continue;
      sq += l.sumSq[p];
      scale += l.count[p] * (a.std * a.std + b.std * b.std) / 2;
      addRounding(l);
    }
    if (scale === 0) {
      // no square tensor in common (convolutional networks): every compared weight of two or
      // more dimensions and 64 or more elements, scaled by the variances over the compared positions
      for (const l of stats.layers) {
        const sa = l.shapes[i], sb = l.shapes[j];
        if (!sa || !sb || sa.length < 2 || sb.length < 2 || !(l.count[p] >= 64)) continue;
        if (!Number.isFinite(l.sumSq[p]) || !Number.isFinite(l.varA[p]) || !Number.isFinite(l.varB[p])) continue;
        sq += l.sumSq[p];
        scale += l.count[p] * (l.varA[p] + l.varB[p]) / 2;
        addRounding(l);
      }
    }
    if (!(scale > 0)) return { sq, rel: NaN, rounding: [0, 0] };
    return { sq, rel: Math.sqrt(sq / scale), rounding: [Math.sqrt(ri / scale), Math.sqrt(rj / scale)] };
  };
  // the RMS distance of every pair (the windows of the difference-shape rule), once
  let rmsCache: Float64Array | null = null;
  const rmsPairs = (): Float64Array => (rmsCache ??= agg.meanRms ?? aggregatePairs(distLayers, n, ['rms']).meanRms!);
  const orientFamily = (fam: number[], ku: number[], D: Float64Array, resample: FamilyResample | null, rowTables: (RowHashTable | null)[] | null, kd: Float64Array | null, kdErr: Float64Array | null, kdMargin: number) => {
    const m = fam.length;
    const inFamily = new Set(fam);
    const S = new Float64Array(m * m);
    const rel = new Float64Array(m * m);
    // rounding[a * m + b]: the relative difference a's ONNX quantisation grids alone give against b
    const rounding = new Float64Array(m * m);
    for (let a = 0; a < m; a++)
      for (let b = a + 1; b < m; b++) {
        const q = pairSq(fam[a], fam[b]);
        S[a * m + b] = S[b * m + a] = q.sq;
        rel[a * m + b] = rel[b * m + a] = q.rel;
        rounding[a * m + b] = q.rounding[0];
        rounding[b * m + a] = q.rounding[1];
      }
    // copies: duplicate < converted < quantized, smallest difference first; a copy is a leaf under its source
    const copyOf = new Int32Array(m).fill(-1);
    const copyRelation: (EdgeRelation | null)[] = new Array(m).fill(null);
    const cands: { s: number; c: number; rel: number; relation: EdgeRelation }[] = [];
    const sumSq = (x: number, skip: number) => { let t = 0; for (let y = 0; y < m; y++) if (y !== x && y !== skip) t += S[x * m + y]; return t; };
    for (let a = 0; a < m; a++)
      for (let b = a + 1; b < m; b++) {
        const i = fam[a], j = fam[b];
        if (identical[pairIndex(n, i, j)]) {
          // every member of a set of identical models hangs off the set's source
          const src = duplicateSourceOf[i];
          if (src === j) cands.push({ s: b, c: a, rel: 0, relation: 'duplicate' });
          else if (src === i || !inFamily.has(src)) cands.push({ s: a, c: b, rel: 0, relation: 'duplicate' });
          continue;
        }
        const r = rel[a * m + b];
        // one of the two a quantised copy, the other not: the copy is the quantised one
        const qa = quantOf[i], qb = quantOf[j];
        if (!qa !== !qb) {
          const [s, c] = qa ? [b, a] : [a, b];
          // ONNX grids: the copy's own rounding error, known from its scales; block types: the type's
          const expected = rounding[c * m + s];
          const bound = expected > 0 ? AFFINE_COPY_FACTOR * expected : quantizedCopyRel((qa ?? qb)!);
          if (r <= bound) cands.push({ s, c, rel: r, relation: 'quantized' });
          continue;
        }
        if (!(r <= QUANTIZED_REL)) continue;
        if (precisionOf[i] !== precisionOf[j] && r <= CONVERTED_REL) {
          const [s, c] = precisionOf[i] > precisionOf[j] ? [a, b] : [b, a];
          cands.push({ s, c, rel: r, relation: 'converted' });
        } else {
          // the source is nearer to the rest of the family (the copy adds its rounding noise to every distance)
          const [s, c] = sumSq(b, a) < sumSq(a, b) ? [b, a] : [a, b];
          cands.push({ s, c, rel: r, relation: 'quantized' });
        }
      }
    cands.sort((x, y) => x.rel - y.rel || x.s - y.s || x.c - y.c);
    const top = (x: number) => { while (copyOf[x] >= 0) x = copyOf[x]; return x; };
    for (const k of cands) {
      if (copyOf[k.c] >= 0 || top(k.s) === k.c) continue;
      copyOf[k.c] = top(k.s);
      copyRelation[k.c] = k.relation;
      for (let x = 0; x < m; x++) if (copyOf[x] === k.c) copyOf[x] = copyOf[k.c];
    }
    // merges among the models that are no copies
    const nonCopies: number[] = [];
    for (let a = 0; a < m; a++) if (copyOf[a] < 0) nonCopies.push(a);
    const merges = findMerges(S, m, nonCopies);
    const core = nonCopies.filter((a) => !merges.has(a));
    const c = core.length;
    const dist0 = squareFromPairs(c, 0, (x, y) => D[pairIndex(n, fam[core[x]], fam[core[y]])]);
    // siblings' edges inside a parent's window cost more (lib/method/difference_shape.ts): the
    // windows in RMS distance, whatever the family's metric; low-rank (adapter-like) pairs left out
    const rmsOf = rmsPairs();
    const rmsCore = squareFromPairs(c, 0, (x, y) => rmsOf[pairIndex(n, fam[core[x]], fam[core[y]])]);
    const kCore = kd ? squareFromPairs(c, NaN, (x, y) => (adapterLike(rankEvidence(fam[core[x]], fam[core[y]])) ? NaN : kd[core[x] * m + core[y]])) : null;
    const penalty = kCore ? siblingPenalty(rmsCore, kCore, c, DIFF_WINDOW, kdMargin) : null;
    // parents by the shape of the difference on the directed tree: language models only (ViTs' K
    // scatter too much between one-run pairs; lib/method/difference_shape.ts)
    const reparentK = kCore && kdMargin === DIFF_MARGIN && c >= 3 ? kCore : null;
    const errCore = kdErr ? squareFromPairs(c, NaN, (x, y) => kdErr[core[x] * m + core[y]]) : undefined;
    const penalised: [string, string][] = [];
    if (penalty) for (let x = 0; x < c; x++) for (let y = x + 1; y < c; y++) if (penalty[x * c + y] !== 1) penalised.push([inputs[fam[core[x]]].id, inputs[fam[core[y]]].id]);
    const distP = penalty ? dist0.map((d, q) => d * penalty[q]) : dist0;
    // identical embedding rows: the tree on the rows that differ first, then the distance
    const rowsEv = rowTables ? differingRows(core.map((x) => rowTables[x]), core.map((x) => rowDtype[fam[x]])) : null;
    let dMax = 0;
    for (let q = 0; q < c * c; q++) if (Number.isFinite(distP[q])) dMax = Math.max(dMax, distP[q]);
    const sub = rowsEv ? distP.map((d, q) => (Math.floor(q / c) === q % c ? 0 : rowDistance(rowsEv.differing[q], d, dMax, rowsEv.tolerance))) : distP;
    // clocks of the core models: the norm and log-std over the family's varying square layers
    const varying = squareMoment.filter((l) => {
      let ch = 0, cmp = 0;
      for (let x = 0; x < c; x++)
        for (let y = x + 1; y < c; y++) {
          const p = pairIndex(n, fam[core[x]], fam[core[y]]);
          if (!(l.count[p] > 0)) continue;
          cmp++;
          if (changed(l, p)) ch++;
        }
      return cmp > 0 && ch > cmp / 2 && core.every((x) => l.moments![fam[x]]);
    });
    const clockLayers = varying.length ? varying : squareMoment.filter((l) => core.every((x) => l.moments![fam[x]]));
    const normClock = core.map((x) => clockLayers.reduce((t, l) => { const mo = l.moments![fam[x]]!; return t + mo.count * (mo.std * mo.std + mo.mean * mo.mean); }, 0));
    const logstdClock = core.map((x) => clockLayers.reduce((t, l) => t + Math.log(l.moments![fam[x]]!.std), 0));
    const kuClock = core.map((x) => ku[x]);
    const mst = minimumSpanningTree(sub, c);
    const coreS = new Float64Array(c * c);
    for (let x = 0; x < c; x++) for (let y = 0; y < c; y++) coreS[x * c + y] = S[core[x] * m + core[y]];
    // the vocabulary only grows parent -> child (lib/method/vocabulary.ts); with direction 'auto' only
    const vocab = direction === 'auto' ? vocabularyOrder(core.map((x) => vocabRows[fam[x]])) : null;
    const vocabOpts = vocab ? { forbidden: vocab.forbidden, candidateRoots: core.map((_, x) => x).filter((x) => vocab.admissible[x]) } : {};
    const specClock = clockLayers.length && clockLayers.every((l) => spectra.has(l)) ? core.map((x) => clockLayers.reduce((t, l) => t + spectra.get(l)![fam[x]], 0)) : null;
    const clockValues = { norm: clockLayers.length ? normClock : null, kurtosis: kurtosisOf[fam[core[0]]] === null ? null : kuClock, logstd: clockLayers.length ? logstdClock : null, spectral: specClock };
    const orientation = direction === 'auto' ? clockTrees(sub, c, clockValues, coreS, { lambda, forbidden: vocab?.forbidden, admissible: vocab?.admissible, names: core.map((x) => inputs[fam[x]].id) }) : null;
    const choice = orientation ? orientation.choice : chooseClock(mst, clockValues, coreS, vocab?.admissible);
    let fr: FamilyRecovery;
    let modeUsed: KurtosisMode | null;
    let clockReport: FamilyReport['clock'];
    const scores = choice.scores.map((s, k) => ({
      clock: s.label, agreement: s.agreement, root: inputs[fam[core[s.root]]].id,
      ...(orientation?.trees[k] ? { treeCost: orientation.trees[k].cost, treeRoot: inputs[fam[core[orientation.trees[k].root]]].id } : {}),
    }));
    let shapeMoves: ShapeMove[] = [];
    let fanMoves: FanMove[] = [];
    if (direction === 'auto' && choice.chosen && orientation?.recovery) {
      // the chosen clock's own tree: the edge costs of the paper with the clock as its trend
      fr = orientation.recovery;
      let tree = fr.parent;
      if (reparentK) {
        const moved = reparentByShape(tree, rmsCore, reparentK, c, { forbidden: vocab?.forbidden, error: errCore, rows: rowsEv ?? undefined });
        tree = moved.parent;
        shapeMoves = moved.moved;
      }
      if (kCore && c >= 3) {
        const fans = resolveFans(tree, coreS, kCore, c, { error: errCore, forbidden: vocab?.forbidden, rows: rowsEv ?? undefined });
        tree = fans.parent;
        fanMoves = fans.moved;
      }
      if (shapeMoves.length || fanMoves.length) {
        const v = clockValues[choice.chosen.clock]!;
        fr = recoverFamily({ n: c, data: sub }, Array.from(v, (x) => -choice.chosen!.sign * x), { mode: 'finetune', lambda, ...vocabOpts, tree });
      }
      const kmode: KurtosisMode | null = choice.chosen.clock === 'kurtosis' ? (choice.chosen.sign < 0 ? 'finetune' : 'pretrain') : null;
      modeUsed = kmode;
      clockReport = { used: choice.chosen.label, chosen: true, agreement: choice.chosen.agreement, rootMargin: choice.rootMargin, why: choice.why, scores };
    } else {
      const mode: KurtosisMode = direction === 'auto' ? 'finetune' : direction;
      fr = recoverFamily({ n: c, data: sub }, kuClock, { mode, lambda, ...vocabOpts });
      modeUsed = mode;
      const label = mode === 'finetune' ? 'kurtosis-' : 'kurtosis+';
      const sc = scores.find((s) => s.clock === label);
      clockReport = { used: label, chosen: false, agreement: sc ? sc.agreement : null, rootMargin: null, why: direction === 'auto' ? 'no clock has values: kurtosis, fine-tuning mode' : `given: --direction ${mode}`, scores };
    }
    // the confidence of each training edge: its support over resamplings of the layers (the
    // bootstrap of phylogenetics): the whole direction stage again on each replicate
    const support = resample && c >= 2 ? familySupport(resample, core.map((x) => fam[x]), clockLayers, direction, lambda, rowsEv, vocab, spectra, penalty, kCore && c >= 3 ? { rms: rmsCore, K: kCore, error: errCore, reparent: reparentK !== null } : null) : null;
    const id = (a: number) => inputs[fam[a]].id;
    const out: GraphEdge[] = [];
    for (const e of fr.edges) {
      const [pa, ch] = [core[e.parent], core[e.child]];
      const conf = support ? support[e.parent * c + e.child] : null;
      out.push({
        parent: id(pa), child: id(ch), distance: dist0[e.parent * c + e.child], confidence: conf, margin: e.relativeMargin,
        uncertain: conf === null || conf < UNCERTAIN_CONFIDENCE,
        relation: adapterLike(rankEvidence(fam[pa], fam[ch])) ? 'adapter' : 'finetune',
      });
    }
    const dist = (x: number, y: number) => D[pairIndex(n, fam[x], fam[y])];
    for (const [ch, f] of merges) {
      out.push({ parent: id(f.a), child: id(ch), distance: dist(f.a, ch), confidence: null, uncertain: false, relation: 'merge', weight: 1 - f.w, residual: f.residual });
      out.push({ parent: id(f.b), child: id(ch), distance: dist(f.b, ch), confidence: null, uncertain: false, relation: 'merge', weight: f.w, residual: f.residual });
    }
    for (let a = 0; a < m; a++) {
      if (copyOf[a] < 0) continue;
      out.push({ parent: id(copyOf[a]), child: id(a), distance: dist(copyOf[a], a), confidence: null, uncertain: false, relation: copyRelation[a]!, relativeDifference: rel[copyOf[a] * m + a] });
    }
    const copies = { copies: m - nonCopies.length, merges: merges.size };
    const shapeMoved: [string, string, string][] = shapeMoves.map((mv) => [id(core[mv.child]), id(core[mv.from]), id(core[mv.to])]);
    const fansMoved: [string, string, string][] = fanMoves.map((mv) => [id(core[mv.child]), id(core[mv.from]), id(core[mv.to])]);
    return { root: fam[core[fr.root]], edges: out, fr, mode: modeUsed, clock: clockReport, copies, rows: rowsEv, vocab, penalised, shapeMoved, fansMoved };
  };

  // the token embedding's row hashes of the members of families of three or more that all have
  // one under the same name (lib/method/embedding_rows.ts): one tensor read again per model.
  // With direction 'auto' only: a kurtosis mode set by hand is the paper's method, distances alone.
  const rowTensor: (string | null)[] = headers.map((h) => h.tensors.find((t) => t.shape.length === 2 && TOKEN_EMBEDDING.test(t.name))?.name ?? null);
  const rowDtype: string[] = headers.map((h, i) => h.tensors.find((t) => t.name === rowTensor[i])?.dtype ?? '');
  const vocabRows: (number | null)[] = headers.map((h, i) => h.tensors.find((t) => t.name === rowTensor[i])?.shape[0] ?? null);
  const rowTables = new Map<number, RowHashTable | null>();
  for (const fam of direction === 'auto' ? families : []) {
    if (fam.length < 3 || !fam.every((i) => rowTensor[i] !== null && rowTensor[i] === rowTensor[fam[0]])) continue;
    for (const i of fam) rowTables.set(i, await rowHashes(resolved[i], rowTensor[i]!, { simd: options.simd, signal: options.signal }));
  }
  // the spectral clock (lib/io/spectra.ts): the spectral entropy of every square layer of the
  // members of families of two or more, with direction 'auto'; one SVD of at most 512 x 512 per tensor
  const spectra = new Map<PairLayer, Float64Array>();
  const spectraModels = direction === 'auto' ? families.filter((f) => f.length >= 2).flat() : [];
  if (spectraModels.length && squareMoment.length) {
    for (const l of squareMoment) spectra.set(l, new Float64Array(n).fill(NaN));
    const own = (l: PairLayer, i: number) => l.names?.[i] ?? l.name;
    const total = spectraModels.length;
    let done = 0, next = 0;
    const report = () => options.onProgress?.({ stage: 'spectra', bytesDone: readBytes, bytesTotal: readBytes, spectraDone: done, spectraTotal: total });
    report();
    const worker = async () => {
      while (next < total) {
        const i = spectraModels[next++];
        const layers = squareMoment.filter((l) => l.moments![i]);
        const res = await spectralEntropies(resolved[i], layers.map((l) => own(l, i)), { simd: options.simd, signal: options.signal });
        res.forEach((r, k) => { if (r) spectra.get(layers[k])![i] = r.entropy; });
        done++;
        report();
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.threads ?? os.cpus().length, 4, total)) }, worker));
  }
  const familyRows = (fam: number[]): (RowHashTable | null)[] | null => (fam.every((i) => rowTables.has(i)) ? fam.map((i) => rowTables.get(i) ?? null) : null);

  const edges: GraphEdge[] = [];
  const roots: string[] = [];
  const familyReports: FamilyReport[] = [];
  const kurtosisOf: (number | null)[] = new Array(n).fill(null);
  const familyMetric: { used: DistanceMetric; allTensors: boolean }[] = [];
  // progress of the difference-shape reads: one step per family of three or more
  const diffTotal = direction === 'auto' ? families.filter((f) => f.length >= 3).length : 0;
  let diffDone = 0;
  for (const fam of families) {
    const m = fam.length;
    const inFam = new Set(fam);
    // the metric
    let metricUsed: DistanceMetric;
    let metricReport: FamilyReport['metric'];
    if (metric === 'auto') {
      const fr: PairRankEvidence[] = [];
      for (let a = 0; a < m; a++) for (let b = a + 1; b < m; b++) fr.push(rankEvidence(fam[a], fam[b]));
      const choice: MetricChoice = chooseMetric(fr);
      metricUsed = choice.metric === 'rank' && agg.sumRank ? 'rank' : 'rms';
      if (metricUsed === 'rank') {
        // every pair of the family needs a rank distance
        for (let a = 0; a < m && metricUsed === 'rank'; a++)
          for (let b = a + 1; b < m; b++) if (!Number.isFinite(agg.sumRank![pairIndex(n, fam[a], fam[b])])) { metricUsed = 'rms'; break; }
      }
      metricReport = { used: metricUsed, chosen: true, why: metricUsed === choice.metric ? choice.why : `${choice.why}; but some pair has no ranked layer: RMS`, rankFraction: choice.rankFraction };
    } else {
      metricUsed = metric;
      metricReport = { used: metric, chosen: false, why: 'given', rankFraction: null };
    }
    let D = agg[AGGREGATE_OF[metricUsed]]!;
    let distanceNote: string;
    const allTensors = !familyFinite(D, fam);
    if (allTensors) {
      // the family shares none of the distance layers (e.g. conv nets among transformers): every compared tensor
      if (metricUsed === 'rank') metricUsed = 'rms';
      D = fallbackAgg(metricUsed);
      distanceNote = '; the family shares no square 2-D tensor: over every tensor it shares';
      metricReport = { ...metricReport, used: metricUsed, why: metricReport.why + distanceNote };
    }
    // the kurtosis layers
    let kChoice: KurtosisChoice;
    if (userKurtosis) {
      kChoice = { layers: [], rule: 'given', why: 'given' };
    } else {
      const arch = defaultKu[fam[0]];
      const candidates = momentLayers
        .filter((l) => fam.every((i) => l.moments![i]))
        .map((l) => {
          let ch = 0, cmp = 0;
          for (let a = 0; a < m; a++)
            for (let b = a + 1; b < m; b++) {
              const p = pairIndex(n, fam[a], fam[b]);
              if (!(l.count[p] > 0)) continue;
              cmp++;
              if (changed(l, p)) ch++;
            }
          return { name: l.name, isDefault: arch(l.name, l.shapes[fam[0]]!), changed: ch, compared: cmp };
        });
      kChoice = chooseKurtosisLayers(candidates, arch.description, m);
    }
    const chosenKu = new Set(kChoice.layers);
    const kuPredicate: TensorPredicate = userKurtosis ? kurtosisCandidate : (name) => chosenKu.has(name);
    const ku = fam.map((i) => {
      const s = summedKurtosis(
        momentLayers.filter((l) => l.moments![i]).map((l) => ({ name: l.name, shape: l.shapes[i]!, kurtosis: l.moments![i]!.kurtosis })),
        kuPredicate,
      );
      if (userKurtosis && kChoice.layers.length === 0) for (const name of s.layers) if (!kChoice.layers.includes(name)) kChoice.layers.push(name);
      kurtosisOf[i] = s.layers.length ? s.value : null;
      return s.layers.length ? s.value : 0;
    });
    familyMetric.push({ used: metricUsed, allTensors });
    const resample: FamilyResample | null = metricUsed === 'maxdiff' ? null : {
      n,
      metric: metricUsed,
      distance: allTensors ? stats.layers.filter((l) => userLayers(l.name, layerShape(l))) : distLayers,
      square: squareMoment,
      kurtosis: momentLayers.filter((l) => fam.every((i) => l.moments![i]) && kuPredicate(l.name, l.shapes[fam[0]]!)),
      seed: fam.reduce((h, i) => Math.imul(h ^ hashString(inputs[i].id), 0x9e3779b1) >>> 0, fam.length),
    };
    // the shape of the differences (direction 'auto', families of three or more; the margin wider
    // where a member has no token embedding: lib/method/difference_shape.ts says why)
    let kd: Float64Array | null = null;
    let kdErr: Float64Array | null = null;
    let kdTensors = 0, kdRows = 0;
    const kdMargin = fam.every((i) => rowTensor[i] !== null) ? DIFF_MARGIN : DIFF_MARGIN_OTHER;
    if (direction === 'auto' && metricUsed !== 'maxdiff' && m >= 3) {
      const layers = (allTensors ? stats.layers.filter((l) => userLayers(l.name, layerShape(l))) : distLayers).filter((l) => fam.every((i) => l.shapes[i] && l.shapes[i]!.length === 2));
      if (layers.length) {
        if (diffDone === 0) options.onProgress?.({ stage: 'differences', bytesDone: readBytes, bytesTotal: readBytes, differencesDone: 0, differencesTotal: diffTotal });
        const raw = await differenceMoments(fam.map((i) => resolved[i]), layers.map((l) => ({ name: l.name, names: l.names ? fam.map((i) => l.names![i]) : undefined })), { simd: options.simd, threads: options.threads, signal: options.signal });
        const K = differenceKurtosis(raw, m);
        kdTensors = raw.filter((t) => t).length;
        kdRows = raw.reduce((t, x) => t + (x ? x.sampled : 0), 0);
        options.onProgress?.({ stage: 'differences', bytesDone: readBytes, bytesTotal: readBytes, differencesDone: ++diffDone, differencesTotal: diffTotal });
        kd = squareFromPairs(m, NaN, (a, b) => K[pairIndex(m, a, b)]);
        const Ke = differenceKurtosisError(raw, m);
        kdErr = squareFromPairs(m, NaN, (a, b) => Ke[pairIndex(m, a, b)]);
      }
    }
    const dir = orientFamily(fam, ku, D, resample, familyRows(fam), kd, kdErr, kdMargin);
    roots.push(inputs[dir.root].id);
    edges.push(...dir.edges);
    // evidence: the weakest link on the strongest spanning tree of related pairs, and the nearest outsider
    const weak = weakestLink(fam, zOf, (i, j) => related(pairIndex(n, i, j)));
    let best: [number, number] | null = null;
    for (const i of fam)
      for (let j = 0; j < n; j++) {
        if (inFam.has(j) || decisions[pairIndex(n, i, j)].z === null) continue;
        if (best === null || zOf(i, j) > zOf(best[0], best[1])) best = [i, j];
      }
    familyReports.push({
      members: fam.map((i) => inputs[i].id),
      root: inputs[dir.root].id,
      mode: dir.mode,
      cost: dir.fr.cost,
      costs: dir.fr.costs,
      rootMargin: dir.fr.rootMargin,
      diagnostics: dir.fr.diagnostics,
      clock: dir.clock,
      copies: dir.copies,
      metric: metricReport,
      kurtosisLayers: { layers: kChoice.layers, rule: kChoice.rule, why: kChoice.why },
      evidence: { weakestLink: weak ? link(weak.i, weak.j) : null, nearestOutsider: best ? link(best[0], best[1]) : null },
      rows: dir.rows ? { tensor: rowTensor[fam[0]]!, minDiffering: dir.rows.min, maxDiffering: dir.rows.max } : null,
      vocabulary: dir.vocab ? { tensor: rowTensor[fam[0]]!, minRows: dir.vocab.min, maxRows: dir.vocab.max } : null,
      differences: kd ? { tensors: kdTensors, sampledRows: kdRows, window: DIFF_WINDOW, margin: kdMargin, penalised: dir.penalised, moved: dir.shapeMoved, fans: dir.fansMoved } : null,
    });
  }
  const params = headers.map((h) => h.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0));
  const graph: ModelGraph = {
    version: 4,
    models: inputs.map((inp, i) => ({ id: inp.id, path: resolved[i].path, architecture: archs[i], params: params[i], kurtosis: kurtosisOf[i] })),
    families: families.map((f) => f.map((i) => inputs[i].id)),
    edges,
    roots,
    familyReports,
    duplicates: duplicateSets.map(({ set: s, source, by }) => {
      const dtypes = (i: number) => JSON.stringify(headers[i].tensors.map((t) => [t.name, t.dtype]).sort());
      return { members: s.map((i) => inputs[i].id), sameDtypes: s.every((i) => dtypes(i) === dtypes(s[0])), source: inputs[source].id, sourceBy: by };
    }),
    relatedness: { alpha, r0, rule: RELATEDNESS_RULE, groups: groupsOut },
    options: { metric, lambda, direction, families: familiesOpt },
    alignment: stats.alignment.map((a) => ({ model: inputs[a.model].id, method: a.method, matched: a.matched, tensors: a.tensors })),
    skipped: stats.skipped.map((s) => ({ tensor: s.name, model: s.model >= 0 ? inputs[s.model].id : null, reason: s.reason })),
    bytesRead: stats.bytesRead.reduce((a, b) => a + b, 0),
    seconds: 0,
    backend: stats.backend,
  };
  // PEFT adapters against the other members of their base's family, without merging: per
  // module the inner products <X - Base, dW> (one native pass over each member's targets) and,
  // between two adapters, <dW1, dW2> from their factors; then the adapter's RMS distance and
  // relative difference to each member, and the copies of an adapter (a member that is Base +
  // dW stored in a file, merged: 'converted', or quantised; an adapter whose factors are those
  // of another: 'duplicate' or 'converted') hung under it as leaves.
  const relateAdapters = async (placed: PlacedAdapter[]) => {
    const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
    // the pass's layer of each tensor, by the name model b gives it
    const layerByName = (b: number) => {
      const m = new Map<string, PairLayer>();
      for (const l of stats.layers) {
        const own = l.names ? l.names[b] : l.name;
        if (own && l.shapes[b]) m.set(own, l);
      }
      return m;
    };
    interface Terms {
      /** per layer of the pass touched by the adapter: the module index */
      moduleOf: Map<PairLayer, number>;
      /** per family member (model index): <X, dW_q> per module (null: not read) */
      products: Map<number, (number | null)[]>;
      frob2: number[];
    }
    const terms = new Map<PlacedAdapter, Terms>();
    // progress: one step per (adapter, family member) product pass
    const total = placed.reduce((t, a) => t + families[a.family].length, 0);
    let done = 0;
    const report = () => options.onProgress?.({ stage: 'adapters', bytesDone: readBytes, bytesTotal: readBytes, adaptersDone: done, adaptersTotal: total });
    if (total) report();
    for (const a of placed) {
      const byName = layerByName(a.base);
      const moduleOf = new Map<PairLayer, number>();
      a.factors.forEach((f, q) => {
        const l = byName.get(f.module.target);
        // compared over the whole tensor only (not a resized vocabulary's leading rows)
        if (l && !l.resized && sameShape(l.shapes[a.base]!, f.module.shape)) moduleOf.set(l, q);
      });
      const products = new Map<number, (number | null)[]>();
      for (const x of families[a.family]) {
        const want = new Map<string, string>();
        for (const [l, q] of moduleOf) {
          const own = l.names ? l.names[x] : l.name;
          if (own && l.shapes[x] && sameShape(l.shapes[x]!, a.factors[q].module.shape)) want.set(a.factors[q].module.target, own);
        }
        products.set(x, await adapterProducts(resolved[x], a.factors, (t) => want.get(t) ?? null, { simd: options.simd, threads: options.threads, signal: options.signal }));
        done++;
        report();
      }
      terms.set(a, { moduleOf, products, frob2: a.diffs.map((d) => d.frobenius ** 2) });
    }
    // the squared difference between adapter a (Base + dW) and member x over layer l, and its count
    // (null: not comparable); x === a.base: ||dW||^2 on the layer
    const layerSq = (a: PlacedAdapter, x: number, l: PairLayer): { sq: number; count: number } | null => {
      const t = terms.get(a)!;
      const q = t.moduleOf.get(l);
      const full = numel(l.shapes[a.base]!);
      if (x === a.base) return { sq: q === undefined ? 0 : t.frob2[q], count: full };
      const p = pairIndex(n, x, a.base);
      if (!(l.count[p] > 0)) return null;
      if (q === undefined) return { sq: l.sumSq[p], count: l.count[p] };
      const px = t.products.get(x)![q], pb = t.products.get(a.base)![q];
      if (px === null || pb === null || !Number.isFinite(px) || !Number.isFinite(pb) || l.count[p] !== full) return null;
      return { sq: Math.max(0, l.sumSq[p] - 2 * (px - pb) + t.frob2[q]), count: full };
    };
    // the family's RMS distance (the mean of per-layer RMS over its distance layers) and the
    // relative difference (pairSq's: over the square layers with moments, relative to the spread)
    const relation = (a: PlacedAdapter, x: number): { rms: number; rel: number } => {
      const layers = familyMetric[a.family].allTensors ? stats.layers.filter((l) => userLayers(l.name, layerShape(l))) : distLayers;
      let sum = 0, used = 0;
      for (const l of layers) {
        const d = layerSq(a, x, l);
        if (!d || !(d.count > 0)) continue;
        sum += Math.sqrt(d.sq / d.count);
        used++;
      }
      let sq = 0, scale = 0;
      for (const l of squareMoment) {
        const mx = l.moments![x], mb = l.moments![a.base];
        if (!mx || !mb) continue;
        const d = layerSq(a, x, l);
        if (!d) continue;
        sq += d.sq;
        scale += d.count * (mx.std * mx.std + mb.std * mb.std) / 2;
      }
      return { rms: used ? sum / used : NaN, rel: scale > 0 ? Math.sqrt(sq / scale) : NaN };
    };
    const parentOf = (child: string) => graph.edges.find((e) => e.child === child && e.relation !== 'merge');
    const isMerge = (child: string) => graph.edges.some((e) => e.child === child && e.relation === 'merge');
    const ancestors = (id: string) => {
      const out = new Set<string>();
      for (let e = parentOf(id); e && !out.has(e.parent); e = parentOf(e.parent)) out.add(e.parent);
      return out;
    };
    const rehang = (child: string, parent: string, relationName: EdgeRelation, distance: number, rel: number, family: number) => {
      const e = parentOf(child);
      if (!e) return;
      e.parent = parent;
      e.relation = relationName;
      e.distance = distance;
      e.relativeDifference = rel;
      e.confidence = null;
      e.uncertain = false;
      delete e.margin;
      graph.familyReports[family].copies.copies++;
    };
    // copies of an adapter among the plain members: Base + dW stored in a file
    const claims = new Map<number, { a: PlacedAdapter; rel: number; rms: number; relation: EdgeRelation }>();
    for (const a of placed) {
      const report = graph.adapters![a.report];
      report.distances = [];
      const up = ancestors(a.id);
      for (const x of families[a.family]) {
        const { rms, rel } = relation(a, x);
        report.distances.push({ model: inputs[x].id, rms: Number.isFinite(rms) ? rms : null, relativeDifference: Number.isFinite(rel) ? rel : null });
        if (x === a.base || up.has(inputs[x].id) || isMerge(inputs[x].id) || !Number.isFinite(rel)) continue;
        const q = quantOf[x];
        const expected = q ? (() => { let e2 = 0, c = 0; for (const l of squareMoment) { const r = roundingOf[x].get(l.names?.[x] ?? l.name); const mx = l.moments![x]; if (r && mx) { e2 += numel(l.shapes[x]!) * r * r; c += numel(l.shapes[x]!) * mx.std * mx.std; } } return c > 0 ? Math.sqrt(e2 / c) : 0; })() : 0;
        const bound = q ? (expected > 0 ? AFFINE_COPY_FACTOR * expected : quantizedCopyRel(q)) : CONVERTED_REL;
        if (!(rel <= bound)) continue;
        // nearer the adapter than the base and than its own parent, by a factor 2
        const parent = parentOf(inputs[x].id);
        const pi = parent ? inputs.findIndex((m) => m.id === parent.parent) : -1;
        const relTo = (y: number) => pairSq(x, y).rel;
        const nearest = Math.min(relTo(a.base), pi >= 0 && pi !== x ? relTo(pi) : Infinity);
        if (!(rel < nearest / 2)) continue;
        const c = claims.get(x);
        if (!c || rel < c.rel) claims.set(x, { a, rel, rms, relation: q ? 'quantized' : 'converted' });
      }
    }
    for (const [x, c] of claims) rehang(inputs[x].id, c.a.id, c.relation, c.rms, c.rel, c.a.family);
    // adapters against each other: the distance (bases in one family), and copies (one base)
    const factorBits = (a: PlacedAdapter) => Math.min(...a.factors.flatMap((f) => [mantissa(f.module.a.dtype), mantissa(f.module.b.dtype)]));
    const sameFactors = (a: PlacedAdapter, b: PlacedAdapter) => a.factors.length === b.factors.length && a.factors.every((f, q) => {
      const g = b.factors.find((y) => y.module.target === f.module.target);
      return !!g && q >= 0 && g.module.scaling === f.module.scaling && g.module.transposed === f.module.transposed && equalArrays(f.A, g.A) && equalArrays(f.B, g.B);
    });
    const copyOfAdapter = new Map<PlacedAdapter, { s: PlacedAdapter; rel: number; relation: EdgeRelation }>();
    for (let i = 0; i < placed.length; i++)
      for (let j = i + 1; j < placed.length; j++) {
        const a = placed[i], b = placed[j];
        if (a.family !== b.family) continue;
        const ta = terms.get(a)!, tb = terms.get(b)!;
        const inner = new Map<string, number>();
        for (const f of a.factors) {
          const g = b.factors.find((y) => y.module.target === f.module.target);
          if (g && sameShape(f.module.shape, g.module.shape)) inner.set(f.module.target, moduleInnerProduct(f, g));
        }
        // ||dW_a - dW_b||^2 on a target (either may be absent)
        const dd = (target: string) => {
          const qa = a.factors.findIndex((f) => f.module.target === target), qb = b.factors.findIndex((f) => f.module.target === target);
          return (qa >= 0 ? ta.frob2[qa] : 0) + (qb >= 0 ? tb.frob2[qb] : 0) - 2 * (inner.get(target) ?? 0);
        };
        // per layer: ||Ba - Bb||^2 + ||dWa - dWb||^2 + 2 <Ba - Bb, dWa> - 2 <Ba - Bb, dWb>
        const layers = familyMetric[a.family].allTensors ? stats.layers.filter((l) => userLayers(l.name, layerShape(l))) : distLayers;
        let sum = 0, used = 0;
        for (const l of layers) {
          const qa = ta.moduleOf.get(l), qb = tb.moduleOf.get(l);
          const target = qa !== undefined ? a.factors[qa].module.target : qb !== undefined ? b.factors[qb].module.target : null;
          let sq: number, count: number;
          if (a.base === b.base) {
            sq = target === null ? 0 : dd(target);
            count = numel(l.shapes[a.base]!);
          } else {
            const p = pairIndex(n, a.base, b.base);
            if (!(l.count[p] > 0)) continue;
            sq = l.sumSq[p];
            count = l.count[p];
            if (target !== null) {
              if (count !== numel(l.shapes[a.base]!)) continue;
              const cross = (t: Terms, q: number | undefined) => (q === undefined ? 0 : t.products.get(a.base)![q]! - t.products.get(b.base)![q]!);
              sq += dd(target) + 2 * cross(ta, qa) - 2 * cross(tb, qb);
            }
          }
          if (!Number.isFinite(sq) || !(count > 0)) continue;
          sum += Math.sqrt(Math.max(0, sq) / count);
          used++;
        }
        // identical factors on one base: the same model, whatever the Gram route's rounding says
        const twins = a.base === b.base && sameFactors(a, b);
        const rms = twins ? 0 : used ? sum / used : null;
        let rel: number | null = twins ? 0 : null;
        if (a.base === b.base && !twins) {
          const targets = new Set([...a.factors, ...b.factors].map((f) => f.module.target));
          let diff = 0;
          for (const t of targets) diff += dd(t);
          const scale = (ta.frob2.reduce((x, y) => x + y, 0) + tb.frob2.reduce((x, y) => x + y, 0)) / 2;
          rel = scale > 0 ? Math.sqrt(Math.max(0, diff) / scale) : 0;
        }
        graph.adapters![a.report].distances!.push({ model: b.id, rms, relativeDifference: rel });
        graph.adapters![b.report].distances!.push({ model: a.id, rms, relativeDifference: rel });
        if (rel === null) continue;
        // the copy: the later one, or the one of fewer mantissa bits in its factors
        const [src, copy] = !twins && factorBits(b) > factorBits(a) ? [b, a] : [a, b];
        const kind: EdgeRelation | null = twins ? 'duplicate' : rel <= CONVERTED_REL && factorBits(a) !== factorBits(b) ? 'converted' : null;
        if (!kind) continue;
        const c = copyOfAdapter.get(copy);
        if (!c || rel < c.rel) copyOfAdapter.set(copy, { s: src, rel, relation: kind });
      }
    const top = (a: PlacedAdapter): PlacedAdapter => { const seen = new Set<PlacedAdapter>(); while (copyOfAdapter.has(a) && !seen.has(a)) { seen.add(a); a = copyOfAdapter.get(a)!.s; } return a; };
    for (const [copy, c] of [...copyOfAdapter].sort((x, y) => x[1].rel - y[1].rel)) {
      const s = top(c.s);
      if (s === copy) continue;
      const d = graph.adapters![copy.report].distances!.find((x) => x.model === s.id);
      rehang(copy.id, s.id, c.relation, d?.rms ?? 0, c.rel, copy.family);
    }
  };
  if (adapters.length) {
    graph.adapters = [];
    const placed: PlacedAdapter[] = [];
    for (const ad of adapters) {
      const factors = await adapterFactors(ad.plan);
      const diffs = await adapterDifferences(ad.plan, factors);
      const base = adapterBase(ad.plan, ad.resolved.path, inputs, resolved, headers, families, roots);
      let alignment: AdapterReport['alignment'];
      if (base.ambiguous) {
        // models of several families fit: the alignment of dW with each family's weights decides
        const frob2 = new Map(diffs.map((d) => [d.target, d.frobenius ** 2]));
        const scores: FamilyAlignment[] = [];
        const basesTotal = base.ambiguous.families.length;
        for (let k = 0; k < basesTotal; k++) {
          options.onProgress?.({ stage: 'bases', bytesDone: readBytes, bytesTotal: readBytes, adapter: ad.input.id, basesDone: k, basesTotal });
          const x = base.ambiguous.scored[k];
          const r = await adapterProductsAndNorms(resolved[x], factors, (t) => t, { simd: options.simd, threads: options.threads, signal: options.signal });
          const a = inputAlignment(factors.map((f, q) => ({ inputAlignment: r.inputAlignment[q], sumSq: r.sumSq[q], frob2: frob2.get(f.module.target) ?? 0, inputs: f.module.a.shape[1] })));
          scores.push({ model: inputs[x].id, family: base.ambiguous.families[k], q: a.q, modules: a.modules });
        }
        options.onProgress?.({ stage: 'bases', bytesDone: readBytes, bytesTotal: readBytes, adapter: ad.input.id, basesDone: basesTotal, basesTotal });
        const pick = chooseByAlignment(scores);
        alignment = scores.map((x) => ({ model: x.model, q: Number.isFinite(x.q) ? x.q : null, modules: x.modules }));
        if (pick.pick >= 0) {
          base.index = base.ambiguous.scored[pick.pick];
          base.by = 'weights';
          const fi = scores[pick.pick].family;
          base.why += `; ${pick.why}: ${inputs[base.index].id === roots[fi] ? 'the family root' : 'the first of them in that family (the root does not fit)'}`;
        } else base.why += `; base ambiguous: ${pick.why}`;
      }
      const id = ad.input.id;
      const frob = Math.sqrt(diffs.reduce((a, d) => a + d.frobenius ** 2, 0));
      const rankSum = diffs.reduce((a, d) => a + d.rank, 0);
      const loraParams = ad.plan.modules.reduce((a, m) => a + m.a.shape[0] * m.a.shape[1] + m.b.shape[0] * m.b.shape[1], 0);
      let distance: number | null = null;
      let metricOut: DistanceMetric | null = null;
      let outsideDistance: string[] | undefined;
      if (base.index >= 0) {
        const fi = families.findIndex((f) => f.includes(base.index));
        const fm = familyMetric[fi];
        // the family's metric between the base and base + dW: over the base's distance layers, zero where untouched
        const byTarget = new Map(diffs.map((d) => [d.target, d]));
        const layers = headers[base.index].tensors.filter((t) => FLOAT_DTYPES.has(t.dtype) && !t.unreadable && (fm.allTensors ? userLayers(t.name, t.shape) : distanceFilter(t.name, t.shape)));
        metricOut = fm.used === 'rank' ? 'rank' : 'rms';
        distance = metricOut === 'rank'
          ? layers.filter((t) => isSquare(t.shape)).reduce((a, t) => a + (byTarget.get(t.name)?.rank ?? 0), 0)
          : layers.length ? layers.reduce((a, t) => a + (byTarget.get(t.name)?.rms ?? 0), 0) / layers.length : frob;
        const counted = new Set((metricOut === 'rank' ? layers.filter((t) => isSquare(t.shape)) : layers).map((t) => t.name));
        outsideDistance = diffs.map((d) => d.target).filter((t) => !counted.has(t));
        const baseId = inputs[base.index].id;
        graph.families[fi].push(id);
        graph.familyReports[fi].members.push(id);
        graph.edges.push({ parent: baseId, child: id, distance, confidence: null, uncertain: false, relation: 'adapter' });
        placed.push({ id, report: graph.adapters.length, base: base.index, family: fi, factors, diffs });
      } else {
        graph.families.push([id]);
        graph.roots.push(id);
        graph.familyReports.push({
          members: [id], root: id, mode: direction === 'auto' ? 'finetune' : direction, cost: 0, costs: {}, rootMargin: null,
          diagnostics: { size: 1, meanDistance: null, minDistance: null, maxDistance: null, spread: null, againstEdges: 0, kurtosisAgreement: 1, kurtosisConsistent: true },
          metric: { used: metric === 'auto' ? 'rms' : metric, chosen: false, why: `a PEFT adapter whose base is absent: ${base.why}`, rankFraction: null },
          kurtosisLayers: { layers: [], rule: 'default', why: 'a PEFT adapter whose base is absent: no kurtosis' },
          rows: null, vocabulary: null,
          clock: { used: 'none', chosen: false, agreement: null, rootMargin: null, why: 'a PEFT adapter whose base is absent: a family of one', scores: [] },
          copies: { copies: 0, merges: 0 },
          evidence: { weakestLink: null, nearestOutsider: null },
        });
      }
      graph.models.push({ id, path: ad.resolved.path, architecture: base.index >= 0 ? archs[base.index] : 'peft-lora', params: loraParams, kurtosis: null });
      const c = ad.plan.config;
      graph.adapters.push({
        id, declaredBase: c.baseModel, base: base.index >= 0 ? inputs[base.index].id : null, resolvedBy: base.by, why: base.why,
        candidates: base.candidates.map((i) => inputs[i].id), ...(alignment ? { alignment } : {}), r: c.r, loraAlpha: c.loraAlpha, useRslora: c.useRslora,
        frobenius: frob, rank: rankSum, distance, metric: metricOut,
        modules: diffs.map((d) => ({ module: d.module, target: d.target, shape: d.shape, r: d.r, scaling: d.scaling, frobenius: d.frobenius, rms: d.rms, rank: d.rank })),
        notIncluded: ad.plan.others,
        ...(outsideDistance ? { outsideDistance } : {}),
      });
    }
    await relateAdapters(placed);
  }
  if (options.pairs) {
    graph.pairs = [];
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) {
        const p = pairIndex(n, i, j);
        const d = decisions[p];
        const g0 = groupOf[i] === groupOf[j] ? groupNull[groupOf[i]] : null;
        graph.pairs.push({
          ...link(i, j), excess: d.excess, excessLow: d.excessLow, excessHigh: d.excessHigh,
          nullZ: g0 && pairStats[p].comparable ? pairStats[p].nullZ / Math.sqrt(g0.kappa) : null,
          leftOut: pairStats[p].tensors.filter((t) => !t.used).map((t) => ({ tensor: t.name, reason: t.reason! })),
        });
      }
  }
  graph.seconds = (Date.now() - t0) / 1000;
  return graph;
}

/** The graph's edges as a forest: each merged model under its heavier parent only (ties: the first listed), as a zoo truth's `tree_edges`. */
export function treeEdges(edges: readonly GraphEdge[]): GraphEdge[] {
  const heaviest = new Map<string, GraphEdge>();
  for (const e of edges) {
    if (e.relation !== 'merge') continue;
    const h = heaviest.get(e.child);
    if (!h || (e.weight ?? 0) > (h.weight ?? 0)) heaviest.set(e.child, e);
  }
  return edges.filter((e) => e.relation !== 'merge' || heaviest.get(e.child) === e);
}

/**
 * The graph's edges as the forest scored against a truth forest: each merge under its heavier
 * parent, or under the parent the truth names when that parent's weight is within 0.05 of the
 * heaviest (with equal weights, which parent a forest lists is a convention).
 */
export function scoredEdges(edges: readonly GraphEdge[], truthForest: readonly [string, string][]): GraphEdge[] {
  const truthParent = new Map(truthForest.map(([p, c]) => [c, p]));
  const heaviest = new Map<string, number>();
  for (const e of edges) if (e.relation === 'merge') heaviest.set(e.child, Math.max(heaviest.get(e.child) ?? -Infinity, e.weight ?? 0));
  const named = new Set(edges.filter((e) => e.relation === 'merge' && truthParent.get(e.child) === e.parent && (e.weight ?? 0) >= heaviest.get(e.child)! - 0.05).map((e) => e.child));
  return [
    ...treeEdges(edges).filter((e) => !(e.relation === 'merge' && named.has(e.child))),
    ...edges.filter((e) => e.relation === 'merge' && named.has(e.child) && truthParent.get(e.child) === e.parent),
  ];
}


/** A PEFT adapter attached to its base (recover): its report's index, its factors and differences. */
interface PlacedAdapter {
  id: string;
  report: number;
  base: number;
  family: number;
  factors: ModuleFactors[];
  diffs: ModuleDifference[];
}

const equalArrays = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The last part of a hub id or path. */
const lastPart = (s: string) => s.replace(/[\\/]+$/, '').split(/[\\/]/).pop() ?? s;

/**
 * The base of an adapter among the (non-adapter) models: the model base_model_name_or_path names
 * (its id or path, else the last part of its id or folder name), when it holds every target
 * tensor in dW's shape; else the one family whose models hold them all (its root, or its first
 * such model when the root does not); else none, with the reason.
 */
function adapterBase(
  plan: AdapterPlan, adapterDir: string, inputs: ModelInput[], resolved: ModelFiles[], headers: ModelHeader[], families: number[][], roots: string[],
): { index: number; by: 'name' | 'fit' | 'weights' | null; why: string; candidates: number[]; ambiguous?: { families: number[]; scored: number[] } } {
  const misfit = (i: number): string | null => {
    const byName = new Map(headers[i].tensors.map((t) => [t.name, t]));
    for (const m of plan.modules) {
      const t = byName.get(m.target);
      if (!t) return `no tensor ${m.target}`;
      if (t.shape.join() !== m.shape.join()) return `${m.target} is [${t.shape}], dW is [${m.shape}]`;
    }
    return null;
  };
  const candidates = inputs.map((_, i) => i).filter((i) => misfit(i) === null);
  const declared = plan.config.baseModel;
  let note = '';
  if (declared !== null) {
    const exact = inputs.map((_, i) => i).filter((i) => inputs[i].id === declared || resolved[i].path === path.resolve(declared) || resolved[i].path === path.resolve(adapterDir, declared));
    const loose = inputs.map((_, i) => i).filter((i) => lastPart(inputs[i].id) === lastPart(declared) || path.basename(resolved[i].path) === lastPart(declared));
    const named = exact.length ? exact : loose;
    if (named.length === 1) {
      const bad = misfit(named[0]);
      if (bad === null) return { index: named[0], by: 'name', why: `base_model_name_or_path ${JSON.stringify(declared)} names ${inputs[named[0]].id}${exact.length ? '' : ' (by its last part)'}`, candidates };
      note = `base_model_name_or_path ${JSON.stringify(declared)} names ${inputs[named[0]].id}, whose tensors do not fit (${bad}); `;
    } else if (named.length > 1) {
      note = `base_model_name_or_path ${JSON.stringify(declared)} matches ${named.length} models (${named.map((i) => inputs[i].id).join(', ')}); `;
    } else note = `base_model_name_or_path ${JSON.stringify(declared)} is not in the set; `;
  } else note = 'no base_model_name_or_path; ';
  if (candidates.length === 0) {
    const first = inputs.length ? misfit(0) : null;
    return { index: -1, by: null, why: `${note}base absent: no model holds every target tensor in dW's shape${first ? ` (e.g. ${inputs[0].id}: ${first})` : ''}`, candidates };
  }
  const fams = [...new Set(candidates.map((i) => families.findIndex((f) => f.includes(i))))];
  if (fams.length > 1) {
    // one model per family to score: its root where it fits, else its first candidate
    const scored = fams.map((fi) => candidates.find((i) => families[fi].includes(i) && inputs[i].id === roots[fi]) ?? candidates.find((i) => families[fi].includes(i))!);
    return { index: -1, by: null, why: `${note}models of ${fams.length} families hold every target tensor in dW's shape (${candidates.map((i) => inputs[i].id).join(', ')})`, candidates, ambiguous: { families: fams, scored } };
  }
  const rootId = roots[fams[0]];
  const root = candidates.find((i) => inputs[i].id === rootId);
  const pick = root ?? candidates[0];
  const why = candidates.length === 1
    ? `${note}the only model that holds every target tensor in dW's shape`
    : `${note}${candidates.length} models of one family hold every target tensor in dW's shape (${candidates.map((i) => inputs[i].id).join(', ')}); the LoRA factors do not tell a base from its fine-tunes: ${root !== undefined ? 'the family root' : 'the first of them (the root does not fit)'}`;
  return { index: pick, by: 'fit', why, candidates };
}

/** A ground truth: edges [parent, child] (a forest), or a version-2 zoo truth with merges (`tree_edges` is its forest). */
export interface TruthInput {
  edges: [string, string][];
  tree_edges?: [string, string][];
}

/**
 * The paper's metrics of a recovered graph against the ground truth ({edges: [[parent,
 * child], ...]}; a truth with `tree_edges`, a version-2 zoo's, is scored on those, every merge
 * under its heavier parent; a recovered merge counts under the parent the truth names when that
 * parent's fitted weight is within 0.05 of the heavier one's). Truth edges between models outside the graph are left out (a
 * truth file may describe a larger zoo); `ignoredTruthEdges` counts them. `familyAgreement`:
 * exact families and the adjusted Rand index against the connected components of every truth
 * edge.
 */
export function evaluate(graph: ModelGraph, truth: TruthInput): Evaluation & { ignoredTruthEdges: number; familyAgreement: FamilyAgreement } {
  checkGraph(graph, 'graph');
  checkTruth(truth, 'truth');
  const ids = new Set(graph.models.map((m) => m.id));
  const forest = truth.tree_edges ?? truth.edges;
  const edges = forest.filter(([p, c]) => ids.has(p) && ids.has(c));
  if (forest.length > 0 && edges.length === 0) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `no ground-truth edge joins two of these models (model ids: ${[...ids].slice(0, 3).join(', ')}${ids.size > 3 ? ', ...' : ''}; truth ids: ${forest[0].join(', ')}, ...)`);
  }
  const list = graph.models.map((m) => m.id);
  const ev = scoreGraph({ edges: scoredEdges(graph.edges, edges).map((e) => [e.parent, e.child] as [string, string]), families: graph.families }, { edges }, list);
  const index = new Map(list.map((id, i) => [id, i]));
  const uf = new UnionFind(list.length);
  for (const [p, c] of truth.edges) if (index.has(p) && index.has(c)) uf.union(index.get(p)!, index.get(c)!);
  const truthFamilies = uf.sets(list.length).map((s) => s.map((i) => list[i]));
  return { ...ev, ignoredTruthEdges: forest.length - edges.length, familyAgreement: familyAgreement(graph.families, truthFamilies) };
}

const edgePair = check.list('a [parent, child] pair of model ids', check.string);
const edgeList = (v: unknown, what: string) => {
  check.list('an array of [parent, child] pairs', (e, w) => {
    edgePair(e, w);
    if ((e as unknown[]).length !== 2) throw invalid('a [parent, child] pair of model ids', w, e);
  })(v, what);
};

/** A ground truth: {edges: [[parent, child], ...], tree_edges?: [...]}. */
export function checkTruth(truth: unknown, what: string): void {
  if (truth === null || typeof truth !== 'object' || Array.isArray(truth)) throw invalid('a ground truth {edges: [[parent, child], ...]}', what, truth);
  edgeList((truth as TruthInput).edges, `${what}.edges`);
  if ((truth as TruthInput).tree_edges !== undefined) edgeList((truth as TruthInput).tree_edges, `${what}.tree_edges`);
}

/** A model graph as recover returns it (the fields the outputs read). */
export function checkGraph(graph: unknown, what: string): void {
  if (graph === null || typeof graph !== 'object' || Array.isArray(graph)) throw invalid('a model graph (the result of recover)', what, graph);
  const g = graph as Partial<ModelGraph>;
  for (const key of ['models', 'edges', 'families', 'roots', 'familyReports'] as const) {
    if (!Array.isArray(g[key])) throw invalid('an array', `${what}.${key}`, g[key]);
  }
  g.models!.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || typeof m.id !== 'string') throw invalid('a model {id, ...}', `${what}.models[${i}]`, m);
  });
  g.edges!.forEach((e, i) => {
    if (e === null || typeof e !== 'object' || typeof e.parent !== 'string' || typeof e.child !== 'string') throw invalid('an edge {parent, child, distance, confidence}', `${what}.edges[${i}]`, e);
  });
  g.families!.forEach((f, i) => check.list('a list of model ids', check.string)(f, `${what}.families[${i}]`));
}

/** `evaluate` in the shape the JSON carries (`evaluation`): the scores, and every edge as correct,
 *  reversed, wrong or missing (a reversed edge is one reversed edge, not one wrong plus one missing). */
export function graphEvaluation(graph: ModelGraph, truth: TruthInput, truthFile: string | null = null): GraphEvaluation {
  const ev = evaluate(graph, truth);
  const str = (x: unknown) => String(x);
  const reversed = ev.wrongEdges.filter((w) => w.kind === 'reversed').map((w) => ({ parent: str(w.parent), child: str(w.child) }));
  const rev = new Set(reversed.map((e) => `${e.child}\u0000${e.parent}`));
  const wrongKeys = new Set(ev.wrongEdges.map((w) => `${w.parent}\u0000${w.child}`));
  const fa = ev.familyAgreement;
  return {
    truth: truthFile,
    directedAccuracy: ev.directedAccuracy,
    undirectedAccuracy: ev.undirectedAccuracy,
    clusteringAccuracy: ev.clusteringAccuracy,
    truthEdges: ev.truthEdges,
    ignoredTruthEdges: ev.ignoredTruthEdges,
    treeEdges: truth.tree_edges !== undefined,
    families: { exact: fa.exact, truthFamilies: fa.truthFamilies, predictedFamilies: fa.predictedFamilies, adjustedRand: fa.adjustedRand, wrong: fa.wrong.map((w) => ({ truth: w.truth.map(str), predicted: w.predicted.map((f) => f.map(str)) })) },
    edges: {
      correct: graph.edges.filter((e) => !wrongKeys.has(`${e.parent}\u0000${e.child}`)).map((e) => ({ parent: e.parent, child: e.child })),
      reversed,
      wrong: ev.wrongEdges.filter((w) => w.kind !== 'reversed').map((w) => ({ parent: str(w.parent), child: str(w.child), truthParent: w.truthParent === null ? null : str(w.truthParent) })),
      missing: ev.missingEdges.filter((m) => !rev.has(`${m.parent}\u0000${m.child}`)).map((m) => ({ parent: str(m.parent), child: str(m.child), predictedParent: m.predictedParent === null ? null : str(m.predictedParent) })),
    },
  };
}

// ---- the authorship question: is B derived from A? -------------------------------------------

export interface RelatedOptions {
  /** The test's levels (defaults: alpha 0.01 over the pairs asked, r0 0.1). */
  relatedness?: RelatednessOptions;
  threads?: number;
  simd?: string;
  backend?: BackendName;
  onProgress?: (p: { stage: 'read' | 'svd'; bytesDone: number; bytesTotal: number; svdDone?: number; svdTotal?: number }) => void;
  signal?: AbortSignal;
}

/** One compared tensor of the answer. */
export interface RelatedLayer {
  name: string;
  /** In the statistic; otherwise `reason` says why not. */
  used: boolean;
  reason?: string;
  /** Positions compared. */
  count: number;
  /** Pearson r, and the shifted null's correlations (rows shifted by 1 and 2). */
  r: number | null;
  rShift1: number | null;
  rShift2: number | null;
  /** The tensor's own calibrated z (its excess over the shifted null in units of the measured null); null when left out. */
  z: number | null;
  identical: boolean;
}

/** The answer for one pair (a, b). */
export interface RelatedResult extends PairEvidence {
  /** The measured null of the pairs asked together, how many were tested (m), the levels. */
  null: NullCalibration;
  tested: number;
  alpha: number;
  r0: number;
  layers: RelatedLayer[];
  bytesRead: number;
  seconds: number;
  backend: BackendUsed;
}

const RELATED_OPTIONS = {
  ...commonOptions,
  relatedness: RECOVER_OPTIONS.relatedness,
};

const finiteOrNull = (x: number) => (Number.isFinite(x) ? x : null);

/**
 * Whether `b` (or each of the models `b` lists) is related to `a` (derived from it, or both
 * from a common ancestor), as the relatedness test decides it: r, z, p, the verdict and the
 * per-layer evidence. Every model is read once; with several models the pairs (a, x) are tested
 * together (their null measured on all of them, Bonferroni over their number).
 */
export async function related(a: string, b: string, options?: RelatedOptions): Promise<RelatedResult>;
export async function related(a: string, b: string[], options?: RelatedOptions): Promise<RelatedResult[]>;
export async function related(a: string, b: string | string[], options: RelatedOptions = {}): Promise<RelatedResult | RelatedResult[]> {
  const t0 = Date.now();
  check.path(a, 'a');
  if (Array.isArray(b)) {
    check.list('an array of model paths', check.path)(b, 'b');
    if (b.length === 0) throw invalid('at least one model', 'b', b);
  } else check.path(b, 'b');
  checkOptions(options, RELATED_OPTIONS);
  const alpha = options.relatedness?.alpha ?? RELATEDNESS_ALPHA;
  const r0 = options.relatedness?.r0 ?? RELATED_R0;
  const paths = [a, ...(Array.isArray(b) ? b : [b])];
  const resolved = await Promise.all(paths.map((m) => resolveModel(m)));
  const adapterAt = resolved.findIndex((r) => r.adapter);
  if (adapterAt >= 0) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `${paths[adapterAt]}: a PEFT adapter; its relation is to its base, by construction (mother recover attaches it to its base)`, { file: resolved[adapterAt].path });
  }
  const headers = await Promise.all(resolved.map((r) => inspectResolved(r)));
  const n = paths.length;
  const modes = relatednessModes(headers);
  const relatednessTensor: TensorPredicate = (_name, shape) => isSquare(shape) || (modes.anyGeneral && shape.length >= 2);
  const stats = await pairwisePass(resolved, headers, {
    layers: relatednessTensor,
    metrics: ['rms'],
    threads: options.threads,
    simd: options.simd,
    backend: options.backend,
    signal: options.signal,
    onProgress: options.onProgress ? (p) => options.onProgress!({ stage: p.svdTotal ? 'svd' : 'read', ...p }) : undefined,
    relatedness: true,
    differences: false,
  } as Parameters<typeof pairwisePass>[2]);
  const layers = stats.layers as EvidenceLayer[];
  if (!(layers.length === 0 || layers.every((l) => l.oneMinusR && l.meanA && l.varA))) {
    throw new MotherError('ERR_INTERNAL', 'the addon gives no relatedness sums (oneMinusR, rShift): rebuild it (npm rebuild mother)');
  }
  const ps = paths.slice(1).map((_, k) => pairIndex(n, 0, k + 1));
  const pairStats = ps.map((p, k) => pairStatistic(pairSums(layers, n, 0, k + 1, modes.squareMode[p] === 1)));
  const test = testPairs(pairStats, { alpha, r0 });
  const scale = Math.sqrt(test.null.kappa);
  const bytesRead = stats.bytesRead.reduce((x, y) => x + y, 0);
  const out = pairStats.map((st, k): RelatedResult => {
    const d = test.decisions[k];
    return {
      a: paths[0], b: paths[k + 1], verdict: d.verdict, r: d.r, z: d.z, p: d.p, log10p: d.log10p, tensors: d.tensors, identical: d.identical,
      excess: d.excess, excessLow: d.excessLow, excessHigh: d.excessHigh,
      nullZ: st.comparable ? st.nullZ / scale : null,
      leftOut: st.tensors.filter((t) => !t.used).map((t) => ({ tensor: t.name, reason: t.reason! })),
      null: test.null, tested: test.tested, alpha, r0,
      layers: st.tensors.map((t) => ({
        name: t.name, used: t.used, ...(t.used ? {} : { reason: t.reason }), count: t.count,
        r: finiteOrNull(t.r), rShift1: finiteOrNull(t.rShift1), rShift2: finiteOrNull(t.rShift2),
        z: t.used ? t.z / scale : null, identical: t.identical,
      })),
      bytesRead, seconds: (Date.now() - t0) / 1000, backend: stats.backend,
    };
  });
  return Array.isArray(b) ? out : out[0];
}
