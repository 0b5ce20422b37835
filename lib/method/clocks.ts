// Direction evidence with no mode set by hand: several per-model "clocks" and a per-family
// choice among them by self-consistency, plus the copies and merges that are no tree edges.
//
// A clock is a per-model number that moves one way along training (parent -> child). The
// candidates (the first three from the moments of the one read, the last from one more look at
// the square layers):
//   - 'norm':     sum over the family's varying square layers of ||W||^2 = count (std^2 + mean^2)
//                 (the squared distance from a zero-mean random initialisation of the same
//                 scale, up to that initialisation's own norm: Neural Phylogeny's signal);
//   - 'kurtosis': the summed excess kurtosis of the family's kurtosis layers (the paper's);
//   - 'logstd':   sum over the same layers as 'norm' of log(std): every layer weighs the same,
//                 whatever its size (the norm is dominated by the largest layers);
//   - 'spectral': sum over the same layers of the spectral entropy -sum p log p, p = s^2 / sum s^2
//                 over the singular values (lib/io/spectra.ts; at most a 512 x 512 strided
//                 sub-block per layer): dense, nearly isotropic updates spread the spectrum.
//                 Measured on the medium zoo (square layers, parent -> child): rises on 30 of 31
//                 Llama fine-tuning edges and 12 of 12 continued pre-training edges, where the
//                 norm rises on 14 of 31 and kurtosis is task-dependent; but on 32 of 66 ViT
//                 fine-tunes only, and falls on 9 of 12 merged-LoRA edges: a candidate, not a law.
// each with both signs ('+': rises parent -> child). A real clock is monotone along every
// root-to-leaf path of the tree; a wrong one is not. The pipeline's choice is clockTrees: each
// candidate's own tree (the arborescence with it as the trend) first, the near-ties' roots by
// votes of distinct clocks, and chooseClock's rules below among near-ties no vote decides.
// chooseClock: per family, on the undirected tree the
// distances alone determine (the minimum spanning tree), every candidate gets the root that
// makes it agree best and its agreement: the fraction of ancestor-descendant pairs of that
// rooted tree along which it moves its way (equal values count one half). The candidate with
// the highest agreement is used. Ties: first the shape of the tree (shapeScore: same-recipe
// siblings meet at an acute angle at their parent, the steps of a drifting chain at an obtuse
// one; only a difference of SHAPE_MARGIN decides), then the candidate whose root is the most
// central node of the tree (smallest eccentricity: the base model of a fine-tuned family is its
// hub), then CLOCK_ORDER (the prior: the norm grows on most fine-tunes, then the paper's
// kurtosis modes, the spectral entropy last).
import { MotherError } from '../core/errors';
import { FamilyRecovery, recoverFamily } from './direction';

export const CLOCK_NAMES = ['norm', 'kurtosis', 'logstd', 'spectral'] as const;
export type ClockName = (typeof CLOCK_NAMES)[number];
/** A clock and the way it moves parent -> child. */
export interface ClockCandidate {
  clock: ClockName;
  sign: 1 | -1;
}
/** The tie order of the candidates (earlier wins a tie of agreement). */
export const CLOCK_ORDER: readonly ClockCandidate[] = [
  { clock: 'norm', sign: 1 },
  { clock: 'kurtosis', sign: -1 },
  { clock: 'kurtosis', sign: 1 },
  { clock: 'logstd', sign: 1 },
  { clock: 'norm', sign: -1 },
  { clock: 'logstd', sign: -1 },
  { clock: 'spectral', sign: 1 },
  { clock: 'spectral', sign: -1 },
];
export const clockLabel = (c: ClockCandidate): string => `${c.clock}${c.sign > 0 ? '+' : '-'}`;

/**
 * The minimum spanning tree (Prim) of the symmetric distance matrix D (row-major n x n; the
 * upper triangle is read), as the parent of each node when rooted at 0 (-1 for node 0). Ties
 * go to the smaller index.
 */
export function minimumSpanningTree(D: ArrayLike<number>, n: number): number[] {
  const parent = new Array<number>(n).fill(-1);
  if (n === 0) return parent;
  const inTree = new Uint8Array(n);
  const best = new Float64Array(n).fill(Infinity);
  const from = new Int32Array(n).fill(-1);
  best[0] = 0;
  for (let step = 0; step < n; step++) {
    let u = -1;
    for (let v = 0; v < n; v++) if (!inTree[v] && (u < 0 || best[v] < best[u])) u = v;
    inTree[u] = 1;
    parent[u] = from[u];
    for (let v = 0; v < n; v++) {
      if (inTree[v]) continue;
      const d = u < v ? D[u * n + v] : D[v * n + u];
      if (d < best[v]) {
        best[v] = d;
        from[v] = u;
      }
    }
  }
  return parent;
}

/** Eccentricity of every node of a tree (the most edges to any other node). */
export function eccentricities(parent: readonly number[]): number[] {
  const adj = adjacency(parent);
  return parent.map((_, r) => {
    const dist = new Array<number>(parent.length).fill(-1);
    dist[r] = 0;
    const queue = [r];
    let far = 0;
    for (let q = 0; q < queue.length; q++) {
      const u = queue[q];
      for (const v of adj[u]) if (dist[v] < 0) { dist[v] = dist[u] + 1; far = Math.max(far, dist[v]); queue.push(v); }
    }
    return far;
  });
}

/** Undirected adjacency of a tree given as parents. */
function adjacency(parent: readonly number[]): number[][] {
  const adj: number[][] = parent.map(() => []);
  parent.forEach((p, v) => {
    if (p >= 0) {
      adj[p].push(v);
      adj[v].push(p);
    }
  });
  return adj;
}

/** The tree re-rooted at r: parent of each node (-1 for r). */
export function reroot(parent: readonly number[], r: number): number[] {
  const adj = adjacency(parent);
  const out = new Array<number>(parent.length).fill(-1);
  const seen = new Uint8Array(parent.length);
  const stack = [r];
  seen[r] = 1;
  while (stack.length) {
    const u = stack.pop()!;
    for (const v of adj[u]) {
      if (seen[v]) continue;
      seen[v] = 1;
      out[v] = u;
      stack.push(v);
    }
  }
  return out;
}

/**
 * Agreement of a clock with the tree rooted at r: over every ancestor-descendant pair (u above
 * v), the fraction with sign * (values[v] - values[u]) > 0; equal values count one half.
 * 1 for a tree of one node.
 */
export function clockAgreementAt(parent: readonly number[], values: ArrayLike<number>, sign: 1 | -1, r: number): number {
  const rooted = reroot(parent, r);
  let good = 0, total = 0;
  for (let v = 0; v < rooted.length; v++) {
    for (let u = rooted[v]; u >= 0; u = rooted[u]) {
      const d = sign * (values[v] - values[u]);
      total++;
      good += d > 0 ? 1 : d === 0 ? 0.5 : 0;
    }
  }
  return total === 0 ? 1 : good / total;
}

export interface ClockScore extends ClockCandidate {
  label: string;
  /** The best agreement over the roots, and the root that gives it (ties: the smaller index). */
  agreement: number;
  root: number;
}

export interface ClockChoice {
  /** The candidate used (null when no clock has values). */
  chosen: ClockScore | null;
  /**
   * The family's direction confidence: the chosen agreement minus the best agreement of a
   * candidate whose best root is another model (0: another clock roots the family elsewhere
   * just as well; null when every candidate gives the same root or there is one candidate).
   */
  rootMargin: number | null;
  /** Every candidate with values, in CLOCK_ORDER. */
  scores: ClockScore[];
  why: string;
}

/** Shape scores of two roots closer than this do not decide between them (see shapeScore). */
export const SHAPE_MARGIN = 0.3;

/**
 * How well the tree rooted at r reads as fans and chains, from the squared distances S (n x n,
 * row-major). At every node v, for every two of its tree neighbours a and b, the cosine of the
 * angle at v, cos = (S[a][v] + S[b][v] - S[a][b]) / (2 sqrt(S[a][v] S[b][v])): siblings
 * fine-tuned with one recipe share a part of their updates (an acute angle at their parent,
 * cos > 0), successive steps of a chain (continued pre-training) drift on in one direction (an
 * obtuse angle at the middle model, cos < 0); independent updates are orthogonal (cos ~ 0, no
 * evidence). The score adds +cos where a and b are both v's children under root r (a fan at v)
 * and -cos where one of them is v's parent (a chain through v). Measured on the small zoo: fans
 * -0.004 to 0.53, chains -0.35 to 0.14 (5 of 6 below -0.1).
 */
export function shapeScore(parent: readonly number[], S: ArrayLike<number>, r: number): number {
  const n = parent.length;
  const rooted = reroot(parent, r);
  const adj = adjacency(parent);
  let score = 0;
  for (let v = 0; v < n; v++) {
    const nb = adj[v];
    for (let x = 0; x < nb.length; x++)
      for (let y = x + 1; y < nb.length; y++) {
        const a = nb[x], b = nb[y];
        const sa = S[a * n + v], sb = S[b * n + v];
        const c = (sa + sb - S[a * n + b]) / (2 * Math.sqrt(sa * sb));
        if (!Number.isFinite(c)) continue;
        score += rooted[a] === v && rooted[b] === v ? c : -c;
      }
  }
  return score;
}

/**
 * Scores every clock candidate (or those in `only`) on the undirected tree `parent` (any
 * rooting) and picks the one with the highest agreement. Ties: with the squared distances S, the roots whose shapeScore is
 * within SHAPE_MARGIN of the best; among those the most central root; then CLOCK_ORDER. A
 * clock whose values are null, or not finite for some model, is left out. With `admissible`
 * (a flag per model, some set: e.g. the members of the smallest vocabulary), only those
 * models are candidate roots.
 */
export function chooseClock(parent: readonly number[], clocks: Partial<Record<ClockName, ArrayLike<number> | null>>, S?: ArrayLike<number>, admissible?: readonly boolean[], only?: readonly ClockCandidate[]): ClockChoice {
  const n = parent.length;
  if (admissible !== undefined && admissible.length !== n) throw new MotherError('ERR_INVALID_ARGUMENT', `admissible has ${admissible.length} flags for ${n} models`);
  const allowed = (r: number) => !admissible || !admissible.some((a) => a) || admissible[r];
  const scores: ClockScore[] = [];
  for (const c of CLOCK_ORDER) {
    if (only && !only.some((o) => o.clock === c.clock && o.sign === c.sign)) continue;
    const values = clocks[c.clock];
    if (!values) continue;
    if (values.length !== n) throw new MotherError('ERR_INVALID_ARGUMENT', `clock ${c.clock} has ${values.length} values for ${n} models`);
    let finite = true;
    for (let i = 0; i < n; i++) if (!Number.isFinite(values[i])) finite = false;
    if (!finite) continue;
    let best = -1, root = 0;
    for (let r = 0; r < n; r++) {
      if (!allowed(r)) continue;
      const a = clockAgreementAt(parent, values, c.sign, r);
      if (a > best) {
        best = a;
        root = r;
      }
    }
    scores.push({ ...c, label: clockLabel(c), agreement: best, root });
  }
  const ecc = eccentricities(parent);
  let chosen: ClockScore | null = null;
  // ties of agreement: the roots whose shape score is within SHAPE_MARGIN of the best (when the
  // squared distances are given), among them the most central (smallest eccentricity in hops
  // on the tree: the base model of a fine-tuned family is its hub), then CLOCK_ORDER
  let top = -Infinity;
  for (const s of scores) top = Math.max(top, s.agreement);
  const tied = scores.filter((s) => s.agreement === top);
  const shape = new Map<number, number>();
  if (S) for (const s of tied) if (!shape.has(s.root)) shape.set(s.root, shapeScore(parent, S, s.root));
  const bestShape = Math.max(...shape.values());
  const plausible = tied.filter((s) => !S || shape.get(s.root)! >= bestShape - SHAPE_MARGIN);
  for (const s of plausible) if (chosen === null || ecc[s.root] < ecc[chosen.root]) chosen = s;
  let rival: ClockScore | null = null;
  if (chosen) for (const s of scores) if (s.root !== chosen.root && (rival === null || s.agreement > rival.agreement)) rival = s;
  const rootMargin = chosen && rival ? chosen.agreement - rival.agreement : null;
  const why = chosen === null
    ? 'no clock has values'
    : `${chosen.label} agrees best with the distance tree (${(100 * chosen.agreement).toFixed(1)} % of ancestor-descendant pairs)` +
      (tied.length > 1 ? `; tied with ${tied.filter((s) => s !== chosen).map((s) => s.label).join(', ')}: ${S && plausible.length < tied.length ? `the shape of the tree (fans and chains: root ${chosen.root} scores ${bestShape.toFixed(2)}), then ` : ''}the most central root, then the tie order` : '');
  return { chosen, rootMargin, scores, why };
}

// ---- the clock by the trees it explains ------------------------------------------------------

/**
 * Candidates whose own tree costs at most this fraction more than the cheapest one explain the
 * distances equally well (see clockTrees). Measured on the Llama splits of seeds 4 and 7 (the
 * same 62 edges right from 0.001 to 0.005; 0.01 loses 2, 0.02 loses 6).
 */
export const TREE_COST_MARGIN = 0.002;

/** One candidate's own tree: the arborescence of the distances with that clock as the trend. */
export interface ClockTree {
  label: string;
  /** The tree's cost: distances plus the penalties of the edges against the clock. */
  cost: number;
  /** The tree's root. */
  root: number;
}

export interface FamilyOrientation {
  /** The clock used (chosen null: no clock has values, and recovery is null). */
  choice: ClockChoice;
  /** The chosen candidate's tree. */
  recovery: FamilyRecovery | null;
  /** Every candidate's own tree, in the order of choice.scores. */
  trees: ClockTree[];
}

export interface OrientOptions {
  /** Weight of the penalty of an edge against the clock, relative to the mean distance. */
  lambda: number;
  /** Row-major n x n: nonzero where the edge i -> j is not allowed (lib/method/vocabulary.ts). */
  forbidden?: ArrayLike<number>;
  /** A flag per model, some set: only those models may be the root. */
  admissible?: readonly boolean[];
  /** The models' names, for `why` (default: their indices). */
  names?: readonly string[];
}

/**
 * The direction stage of one family with no mode set by hand: which clock, and the tree it gives.
 * D: the distances the tree is built on (row-major n x n, symmetric); S: the squared distances
 * (shapeScore's). Every candidate clock (chooseClock's, both signs) gets its own tree: the
 * minimum arborescence of D with that clock as the trend (an edge against it costs lambda x the
 * mean distance more, recoverFamily). A clock that really moves one way along the family's
 * history explains the distances with no detour; a wrong one needs edges against it or longer
 * edges. Then:
 *   1. the candidates whose tree costs at most TREE_COST_MARGIN more than the cheapest are the
 *      near-ties (any clock that is monotone on some rooting of one and the same tree costs the
 *      same as every other such clock);
 *   2. among the near-ties, each root gets one vote per distinct clock (norm, kurtosis, logstd,
 *      spectral) whose tree is rooted there: a root that several clocks agree on wins;
 *   3. when no root has the most votes alone: chooseClock among the near-ties (agreement on the
 *      minimum spanning tree, then the shape of the tree, the most central root, CLOCK_ORDER).
 * The candidate used is the cheapest near-tie at the winning root (ties: CLOCK_ORDER).
 * Measured (RESULTS.md, Direction): a single clock that is monotone from a wrong root (the norm
 * in Llama families fine-tuned with weight decay, rooted at a code fine-tune) used to win on
 * agreement alone; two clocks agreeing on the base now outvote it.
 */
export function clockTrees(D: ArrayLike<number>, n: number, clocks: Partial<Record<ClockName, ArrayLike<number> | null>>, S: ArrayLike<number> | undefined, opts: OrientOptions): FamilyOrientation {
  if (D.length !== n * n) throw new MotherError('ERR_INVALID_ARGUMENT', `distances hold ${D.length} entries for ${n} models`);
  const mst = minimumSpanningTree(D, n);
  const all = chooseClock(mst, clocks, S, opts.admissible);
  if (!all.chosen) return { choice: all, recovery: null, trees: [] };
  const candidateRoots = opts.admissible && opts.admissible.some((a) => a) ? opts.admissible.map((a, i) => (a ? i : -1)).filter((i) => i >= 0) : undefined;
  const recOpts = { mode: 'finetune' as const, lambda: opts.lambda, ...(opts.forbidden ? { forbidden: opts.forbidden } : {}), ...(candidateRoots ? { candidateRoots } : {}) };
  const data = D instanceof Float64Array ? D : Float64Array.from(D);
  const recs = all.scores.map((s) => {
    const v = clocks[s.clock]!;
    const trend = new Float64Array(n);
    for (let i = 0; i < n; i++) trend[i] = -s.sign * v[i];
    return recoverFamily({ n, data }, trend, recOpts);
  });
  const trees: ClockTree[] = all.scores.map((s, k) => ({ label: s.label, cost: recs[k].cost, root: recs[k].root }));
  const min = Math.min(...trees.map((t) => t.cost));
  const near = all.scores.map((_, k) => k).filter((k) => trees[k].cost <= min + TREE_COST_MARGIN * Math.abs(min));
  const votes = new Map<number, Set<ClockName>>();
  for (const k of near) {
    const set = votes.get(trees[k].root) ?? new Set<ClockName>();
    set.add(all.scores[k].clock);
    votes.set(trees[k].root, set);
  }
  const most = Math.max(...[...votes.values()].map((v) => v.size));
  const top = [...votes.keys()].filter((r) => votes.get(r)!.size === most);
  let pick: number;
  let why: string;
  const name = (r: number) => (opts.names ? opts.names[r] : String(r));
  const nearLabels = near.map((k) => `${all.scores[k].label} (root ${name(trees[k].root)})`).join(', ');
  if (top.length === 1) {
    const at = near.filter((k) => trees[k].root === top[0]);
    pick = at.reduce((b, k) => (trees[k].cost < trees[b].cost ? k : b), at[0]);
    why = near.length === 1
      ? `${all.scores[pick].label} gives the cheapest tree (cost ${trees[pick].cost.toPrecision(6)}; the next ${(100 * (Math.min(...trees.filter((_, k) => k !== pick).map((t) => t.cost), Infinity) / trees[pick].cost - 1)).toFixed(2)} % dearer)`
      : `the trees of ${nearLabels} cost within ${(100 * TREE_COST_MARGIN).toFixed(1)} % of the cheapest; root ${name(top[0])} has the most clocks (${[...votes.get(top[0])!].join(', ')}): ${all.scores[pick].label}`;
  } else {
    const sub = chooseClock(mst, clocks, S, opts.admissible, near.map((k) => all.scores[k]));
    pick = all.scores.findIndex((s) => s.label === sub.chosen!.label);
    why = `the trees of ${nearLabels} cost within ${(100 * TREE_COST_MARGIN).toFixed(1)} % of the cheapest and no root has the most clocks; among them: ${sub.why}`;
  }
  const chosen = all.scores[pick];
  let rival: ClockScore | null = null;
  for (const s of all.scores) if (s.root !== chosen.root && (rival === null || s.agreement > rival.agreement)) rival = s;
  const choice: ClockChoice = { chosen, rootMargin: rival ? chosen.agreement - rival.agreement : null, scores: all.scores, why };
  return { choice, recovery: recs[pick], trees };
}

// ---- merges --------------------------------------------------------------------------------

export interface MergeFit {
  /** The two parents and the fitted weights: child ~ (1 - w) * a + w * b. */
  a: number;
  b: number;
  w: number;
  /** Residual squared norm over the smaller squared distance of the child to a or b. */
  residual: number;
}

/** The largest relative residual accepted as a merge. */
export const MERGE_RESIDUAL = 0.05;
/** How far inside (0, 1) the fitted weight must lie. */
export const MERGE_WEIGHT_MARGIN = 0.05;

/**
 * Least squares of model c on the line through models a and b, from squared Euclidean
 * distances only (S row-major n x n, symmetric): c - a = w (b - a) + e with
 * w = (S[c][a] + S[a][b] - S[c][b]) / (2 S[a][b]) and |e|^2 = S[c][a] - w^2 S[a][b].
 * The residual is |e|^2 / min(S[c][a], S[c][b]): near 0 for a weighted average of a and b,
 * at least 1/2 for a chain a -> c -> b with orthogonal increments. null when a degenerate
 * distance is 0.
 */
export function fitMerge(S: ArrayLike<number>, n: number, c: number, a: number, b: number): MergeFit | null {
  const sab = S[a * n + b], sca = S[c * n + a], scb = S[c * n + b];
  if (!(sab > 0) || !(sca > 0) || !(scb > 0)) return null;
  const w = (sca + sab - scb) / (2 * sab);
  const e2 = Math.max(0, sca - w * w * sab);
  return { a, b, w, residual: e2 / Math.min(sca, scb) };
}

/**
 * The merges among the models `nodes` of one family: a model is a merge of two others when its
 * best fit (smallest residual over pairs of the other nodes) has a residual of at most
 * MERGE_RESIDUAL and a weight inside (MERGE_WEIGHT_MARGIN, 1 - MERGE_WEIGHT_MARGIN). A model
 * found to be a merge is not used as a parent of another merge.
 */
export function findMerges(S: ArrayLike<number>, n: number, nodes: readonly number[]): Map<number, MergeFit> {
  const fits: { c: number; fit: MergeFit }[] = [];
  for (const c of nodes) {
    let best: MergeFit | null = null;
    for (let x = 0; x < nodes.length; x++)
      for (let y = x + 1; y < nodes.length; y++) {
        const a = nodes[x], b = nodes[y];
        if (a === c || b === c) continue;
        const f = fitMerge(S, n, c, a, b);
        if (f && f.w > MERGE_WEIGHT_MARGIN && f.w < 1 - MERGE_WEIGHT_MARGIN && (best === null || f.residual < best.residual)) best = f;
      }
    if (best && best.residual <= MERGE_RESIDUAL) fits.push({ c, fit: best });
  }
  fits.sort((p, q) => p.fit.residual - q.fit.residual);
  const out = new Map<number, MergeFit>();
  for (const { c, fit } of fits) {
    if (out.has(fit.a) || out.has(fit.b)) continue;
    if ([...out.values()].some((f) => f.a === c || f.b === c)) continue;
    out.set(c, fit);
  }
  return out;
}
