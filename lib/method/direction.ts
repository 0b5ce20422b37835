// Stage 5 of the pipeline (direction and tree): edge directions from weight kurtosis, and the
// tree of one family.
//
// The method (MoTHer, Horwitz et al. 2024): fine-tuning ("specialisation") lowers the summed
// excess kurtosis of the weights from parent to child, continued pre-training
// ("generalisation") raises it. The cost of a candidate edge i -> j is
//     M[i][j] = D[i][j] + lambda * mean(off-diagonal D) * [i -> j goes against the trend]
// with lambda = 0.3 by default and M[i][i] = +Infinity; the family's tree is the minimum
// spanning arborescence of M, and its root is the recovered base model.
import { MotherError } from '../core/errors';
import { minimumArborescenceMatrix } from './arborescence';
import { FlatSquare, isSquare, SquareMatrix, toFlatSquare } from './matrix';

/** Direction of the kurtosis trend: 'finetune' (decreases parent -> child) or 'pretrain' (increases). */
export const KURTOSIS_MODES = ['finetune', 'pretrain'] as const;
export type KurtosisMode = (typeof KURTOSIS_MODES)[number];

/** The paper's weight of the kurtosis penalty. */
export const DEFAULT_LAMBDA = 0.3;

/**
 * True when the edge parent -> child goes against the trend of the mode: for 'finetune' when
 * the child's kurtosis is higher than the parent's, for 'pretrain' when it is lower. Equal
 * kurtosis is never against the trend.
 */
export function againstTrend(kuParent: number, kuChild: number, mode: KurtosisMode): boolean {
  return mode === 'finetune' ? kuChild > kuParent : kuChild < kuParent;
}

function checkMode(mode: unknown, allowAuto: boolean): void {
  if (mode !== 'finetune' && mode !== 'pretrain' && !(allowAuto && mode === 'auto')) {
    throw new MotherError('ERR_INVALID_ARGUMENT',
      `mode must be 'finetune'${allowAuto ? ", 'pretrain' or 'auto'" : " or 'pretrain'"}, got ${String(mode)}`);
  }
}

function checkLambda(lambda: unknown): number {
  if (typeof lambda !== 'number' || !Number.isFinite(lambda) || lambda < 0) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `lambda must be a finite number >= 0, got ${String(lambda)}`);
  }
  return lambda;
}

/** Square, non-empty, off-diagonal entries finite and >= 0 (the diagonal is ignored). */
function checkDistances(D: SquareMatrix): FlatSquare {
  const flat = toFlatSquare(D, 'distance matrix');
  const { n, data } = flat;
  if (n < 1) throw new MotherError('ERR_INVALID_ARGUMENT', 'distance matrix is empty');
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const x = data[i * n + j];
      if (!Number.isFinite(x) || x < 0) {
        throw new MotherError('ERR_INVALID_ARGUMENT',
          `distance matrix entry [${i}][${j}] is ${x}: distances must be finite and non-negative`);
      }
    }
  }
  return flat;
}

function checkKurtosis(ku: ArrayLike<number>, n: number): void {
  if (ku === null || typeof ku !== 'object' || typeof ku.length !== 'number') {
    throw new MotherError('ERR_INVALID_ARGUMENT', 'kurtosis must be an array of numbers');
  }
  if (ku.length !== n) {
    throw new MotherError('ERR_INVALID_ARGUMENT',
      `kurtosis has ${ku.length} entries but the distance matrix has ${n} rows`);
  }
  for (let i = 0; i < n; i++) {
    if (typeof ku[i] !== 'number' || !Number.isFinite(ku[i])) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `kurtosis of model ${i} is ${ku[i]}: it must be finite`);
    }
  }
}

function meanOff(flat: FlatSquare): number {
  const { n, data } = flat;
  if (n < 2) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) sum += data[i * n + j];
  return sum / (n * (n - 1));
}

/** Mean of the off-diagonal entries of a square matrix (0 for a 1 x 1 matrix). */
export function meanOffDiagonal(D: SquareMatrix): number {
  return meanOff(checkDistances(D));
}

function costsFlat(flat: FlatSquare, ku: ArrayLike<number>, mode: KurtosisMode, lambda: number): Float64Array {
  const { n, data } = flat;
  const penalty = lambda * meanOff(flat);
  const M = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      M[i * n + j] = i === j ? Infinity : data[i * n + j] + (againstTrend(ku[i], ku[j], mode) ? penalty : 0);
    }
  }
  return M;
}

export interface EdgeCostOptions {
  mode: KurtosisMode;
  /** Weight of the kurtosis penalty, relative to the mean distance. Default 0.3. */
  lambda?: number;
}

/**
 * The method's edge costs: M[i][j] = D[i][j] + lambda * mean(off-diagonal D) * against(i, j),
 * with against(i, j) = ku[j] > ku[i] for 'finetune' and ku[j] < ku[i] for 'pretrain', and
 * M[i][i] = +Infinity. D need not be symmetric. Returns the rows of M.
 */
export function edgeCosts(D: SquareMatrix, ku: ArrayLike<number>, opts: EdgeCostOptions): Float64Array[] {
  if (opts === null || typeof opts !== 'object') {
    throw new MotherError('ERR_INVALID_ARGUMENT', 'edgeCosts needs options { mode, lambda? }');
  }
  checkMode(opts.mode, false);
  const lambda = checkLambda(opts.lambda ?? DEFAULT_LAMBDA);
  const flat = checkDistances(D);
  checkKurtosis(ku, flat.n);
  const M = costsFlat(flat, ku, opts.mode, lambda);
  const rows: Float64Array[] = [];
  for (let i = 0; i < flat.n; i++) rows.push(M.slice(i * flat.n, (i + 1) * flat.n));
  return rows;
}

/** Confidence of one recovered edge parent -> child. */
export interface EdgeConfidence {
  parent: number;
  child: number;
  /** D[parent][child]. */
  distance: number;
  /** M[parent][child] (distance plus the penalty when against the trend). */
  cost: number;
  /** Whether the edge goes against the chosen mode's kurtosis trend (and was penalised). */
  against: boolean;
  /**
   * The cheapest other possible parent of the child: argmin of M[q][child] over q not in
   * {parent, child}, ties to the smaller index; null when the family has only two models.
   */
  alternativeParent: number | null;
  /** M[alternativeParent][child]; null when there is no alternative. */
  alternativeCost: number | null;
  /**
   * alternativeCost - cost: how much more the best other parent would cost locally. Positive:
   * the chosen parent is the child's cheapest by that much. Zero: a tie. Negative: a cheaper
   * parent exists but was rejected by the tree constraint (it would close a cycle). null when
   * there is no alternative.
   */
  margin: number | null;
  /** margin / mean off-diagonal distance (scale-free; 0 when all distances are 0); null like margin. */
  relativeMargin: number | null;
}

/** Per-family diagnostics of a recovered tree. */
export interface FamilyDiagnostics {
  size: number;
  /** Off-diagonal distance statistics (null for a single model). */
  meanDistance: number | null;
  minDistance: number | null;
  maxDistance: number | null;
  /** maxDistance / minDistance: the spread of distances (Infinity if some distance is 0). */
  spread: number | null;
  /** Tree edges that go against the chosen mode's kurtosis trend. */
  againstEdges: number;
  /** Fraction of tree edges that follow the trend (1 for a single model). */
  kurtosisAgreement: number;
  /** True when every tree edge follows the trend: the tree's kurtosis ordering agrees with the mode. */
  kurtosisConsistent: boolean;
}

export interface RecoverFamilyOptions {
  /** 'finetune', 'pretrain', or 'auto' (default): the orientation with the cheaper tree. */
  mode?: KurtosisMode | 'auto';
  /** Default 0.3. */
  lambda?: number;
  /** Fixed root (base model) index; default: the best root is recovered. */
  root?: number;
  /** Row-major n x n: nonzero where the edge i -> j is not allowed (lib/method/vocabulary.ts). */
  forbidden?: ArrayLike<number>;
  /** The models that may be the root (default: any); ignored with a fixed root. */
  candidateRoots?: readonly number[];
  /**
   * A given tree (parent of each model, -1 for its one root) scored under the mode's edge costs
   * instead of the arborescence (e.g. after lib/method/difference_shape.ts moved some parents);
   * its edges must not be forbidden. With 'auto', the mode whose costs make it cheaper.
   */
  tree?: readonly number[];
}

export interface FamilyRecovery {
  /** parent[i] for every model of the family; -1 for the root. */
  parent: number[];
  root: number;
  /** Total cost of the tree under the chosen mode's edge costs. */
  cost: number;
  /** The mode used (chosen per family in 'auto'). */
  mode: KurtosisMode;
  /** Tree cost under each mode evaluated ('auto' evaluates both). */
  costs: Partial<Record<KurtosisMode, number>>;
  /**
   * Cost of the best tree with a different root, minus cost: how clearly the root is the
   * root. null for a single model or a fixed root.
   */
  rootMargin: number | null;
  /** One entry per non-root model, in child index order. */
  edges: EdgeConfidence[];
  diagnostics: FamilyDiagnostics;
}

/**
 * Recovers the tree of one family from its distance matrix D (N x N) and per-model summed
 * excess kurtosis ku. In 'auto' mode both orientations are solved and the one with the lower
 * arborescence cost is kept (ties: 'finetune', the paper's default).
 */
export function recoverFamily(
  D: SquareMatrix,
  ku: ArrayLike<number>,
  opts: RecoverFamilyOptions = {},
): FamilyRecovery {
  const mode = opts.mode ?? 'auto';
  checkMode(mode, true);
  const lambda = checkLambda(opts.lambda ?? DEFAULT_LAMBDA);
  const flat = checkDistances(D);
  const { n, data } = flat;
  checkKurtosis(ku, n);
  if (opts.root !== undefined && (!Number.isInteger(opts.root) || opts.root < 0 || opts.root >= n)) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `root must be a model index in 0..${n - 1}, got ${opts.root}`);
  }
  if (opts.forbidden !== undefined && opts.forbidden.length !== n * n) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `forbidden must hold n x n = ${n * n} flags, got ${opts.forbidden.length}`);
  }
  const candidates = opts.candidateRoots?.length ? opts.candidateRoots : null;
  if (candidates && candidates.some((r) => !Number.isInteger(r) || r < 0 || r >= n)) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `candidateRoots must be model indices in 0..${n - 1}`);
  }
  const arbOpts = opts.root !== undefined ? { root: opts.root } : candidates ? { candidateRoots: candidates } : {};
  const forbid = (M: Float64Array) => {
    if (opts.forbidden) for (let q = 0; q < n * n; q++) if (opts.forbidden[q]) M[q] = Infinity;
    return M;
  };
  const modes: KurtosisMode[] = mode === 'auto' ? ['finetune', 'pretrain'] : [mode];
  const costs: Partial<Record<KurtosisMode, number>> = {};
  let best: { mode: KurtosisMode; M: Float64Array; parent: number[]; root: number; cost: number } | null = null;
  const given = opts.tree;
  if (given !== undefined) {
    const roots = given.filter((p) => p === -1).length;
    if (given.length !== n || roots !== 1 || given.some((p, v) => !Number.isInteger(p) || p < -1 || p >= n || p === v)) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `tree must give each of the ${n} models a parent index or -1 (exactly one root)`);
    }
    for (let v = 0; v < n; v++) {
      let steps = 0;
      for (let u = given[v]; u >= 0; u = given[u]) if (++steps > n) throw new MotherError('ERR_INVALID_ARGUMENT', 'tree has a cycle');
    }
  }
  for (const m of modes) {
    const M = forbid(costsFlat(flat, ku, m, lambda));
    let tree: { parent: number[]; root: number; cost: number };
    if (given !== undefined) {
      let t = 0;
      for (let v = 0; v < n; v++) if (given[v] >= 0) t += M[given[v] * n + v];
      if (t === Infinity) throw new MotherError('ERR_INVALID_ARGUMENT', 'tree uses a forbidden edge');
      tree = { parent: given.slice(), root: given.indexOf(-1), cost: t };
    } else {
      tree = minimumArborescenceMatrix({ n, data: M }, arbOpts);
    }
    costs[m] = tree.cost;
    if (best === null || tree.cost < best.cost) {
      best = { mode: m, M, parent: tree.parent, root: tree.root, cost: tree.cost };
    }
  }
  const { M, parent, root, cost } = best!;
  const chosen = best!.mode;

  let rootMargin: number | null = null;
  if (opts.root === undefined && n > 1) {
    const others: number[] = [];
    for (let v = 0; v < n; v++) if (v !== root && (!candidates || candidates.includes(v))) others.push(v);
    if (others.length) {
      try {
        rootMargin = minimumArborescenceMatrix({ n, data: M }, { candidateRoots: others }).cost - cost;
      } catch (e) {
        // no tree roots elsewhere without a forbidden edge
        if (!opts.forbidden || !(e instanceof MotherError)) throw e;
      }
    }
  }

  const mean = meanOff(flat);
  const edges: EdgeConfidence[] = [];
  let againstEdges = 0;
  for (let child = 0; child < n; child++) {
    const p = parent[child];
    if (p < 0) continue;
    const c = M[p * n + child];
    let alt = -1;
    for (let q = 0; q < n; q++) {
      if (q === p || q === child || M[q * n + child] === Infinity) continue;
      if (alt < 0 || M[q * n + child] < M[alt * n + child]) alt = q;
    }
    const against = againstTrend(ku[p], ku[child], chosen);
    if (against) againstEdges++;
    const altCost = alt < 0 ? null : M[alt * n + child];
    const margin = altCost === null ? null : altCost - c;
    edges.push({
      parent: p,
      child,
      distance: data[p * n + child],
      cost: c,
      against,
      alternativeParent: alt < 0 ? null : alt,
      alternativeCost: altCost,
      margin,
      relativeMargin: margin === null ? null : mean > 0 ? margin / mean : 0,
    });
  }

  let minD = Infinity;
  let maxD = -Infinity;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const x = data[i * n + j];
      if (x < minD) minD = x;
      if (x > maxD) maxD = x;
    }
  }
  const diagnostics: FamilyDiagnostics = {
    size: n,
    meanDistance: n > 1 ? mean : null,
    minDistance: n > 1 ? minD : null,
    maxDistance: n > 1 ? maxD : null,
    spread: n > 1 ? (minD > 0 ? maxD / minD : maxD > 0 ? Infinity : 1) : null,
    againstEdges,
    kurtosisAgreement: edges.length === 0 ? 1 : (edges.length - againstEdges) / edges.length,
    kurtosisConsistent: againstEdges === 0,
  };
  return { parent, root, cost, mode: chosen, costs, rootMargin, edges, diagnostics };
}

/** A filter over a model's tensors: which layers enter the summed kurtosis. */
export interface LayerPredicate {
  (name: string, shape: readonly number[]): boolean;
  /** Human-readable description of the rule (for reports and the CLI). */
  readonly description: string;
  /** The name substring required, or null when every square 2-D matrix qualifies. */
  readonly pattern: string | null;
}

/** Name substring of the ViT attention output projection (the reference's full-FT filter). */
export const VIT_KURTOSIS_PATTERN = 'attention.output.dense';
/** Name substring of the Llama attention output projection. */
export const LLAMA_KURTOSIS_PATTERN = 'self_attn.o_proj';

function makePredicate(pattern: string | null, description: string): LayerPredicate {
  const fn = (name: string, shape: readonly number[]): boolean =>
    isSquare(shape) && (pattern === null || (typeof name === 'string' && name.includes(pattern)));
  return Object.assign(fn, { description, pattern });
}

/**
 * The default layer filter for the kurtosis of a model, by architecture (a Hugging Face
 * architecture class such as 'ViTForImageClassification' / 'LlamaForCausalLM', a model_type
 * such as 'vit' / 'llama', or a repository name, case-insensitive):
 *   - ViT ('vit' at the start of a word: not MobileViT or LeViT): square 2-D tensors whose name
 *     contains 'attention.output.dense';
 *   - Llama (contains 'llama', e.g. CodeLlama): square 2-D tensors containing 'self_attn.o_proj';
 *   - anything else (e.g. Stable Diffusion): every square 2-D tensor.
 */
export function defaultKurtosisLayers(architecture: string): LayerPredicate {
  if (typeof architecture !== 'string') {
    throw new MotherError('ERR_INVALID_ARGUMENT', 'architecture must be a string');
  }
  const a = architecture.toLowerCase();
  if (/(^|[^a-z0-9])vit/.test(a)) {
    return makePredicate(VIT_KURTOSIS_PATTERN, `ViT: square 2-D tensors named *${VIT_KURTOSIS_PATTERN}*`);
  }
  if (a.includes('llama')) {
    return makePredicate(LLAMA_KURTOSIS_PATTERN, `Llama: square 2-D tensors named *${LLAMA_KURTOSIS_PATTERN}*`);
  }
  return makePredicate(null, 'all square 2-D tensors');
}

/** The per-tensor fields summedKurtosis needs (TensorStats from scanModel has them). */
export interface KurtosisSource {
  name: string;
  shape: readonly number[];
  /** Excess kurtosis (scipy.stats.kurtosis defaults); null when undefined (constant tensor). */
  kurtosis: number | null;
}

/**
 * The model's summed excess kurtosis over the tensors the predicate selects. Tensors whose
 * kurtosis is undefined (null or NaN: constant data) are skipped and listed.
 */
export function summedKurtosis(
  tensors: readonly KurtosisSource[],
  predicate: (name: string, shape: readonly number[]) => boolean,
): { value: number; layers: string[]; skipped: string[] } {
  if (!Array.isArray(tensors)) throw new MotherError('ERR_INVALID_ARGUMENT', 'tensors must be an array');
  let value = 0;
  const layers: string[] = [];
  const skipped: string[] = [];
  for (const t of tensors) {
    if (!predicate(t.name, t.shape)) continue;
    if (t.kurtosis === null || Number.isNaN(t.kurtosis)) {
      skipped.push(t.name);
      continue;
    }
    value += t.kurtosis;
    layers.push(t.name);
  }
  return { value, layers, skipped };
}
