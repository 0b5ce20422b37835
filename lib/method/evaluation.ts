// After the pipeline (evaluation): a recovered Model Graph against a ground truth, with the
// paper's metrics:
//   - directed edge accuracy: correct directed edges / ground-truth edges (an edge counts only
//     when both endpoints and the direction are right);
//   - undirected edge accuracy: ground-truth edges recovered in either direction / ground-truth
//     edges (a diagnostic: right pair, possibly wrong direction);
//   - clustering accuracy: the fraction of models in the best one-to-one matching of
//     ground-truth families to predicted families (Hungarian algorithm on the contingency
//     table, maximising the number of models matched).
// Families of the ground truth are the connected components of its forest (every model in the
// node set, isolated ones as singleton families).
import { MotherError } from '../core/errors';
import { UnionFind } from './matrix';

/** A model identifier: a name or an index. 1 and '1' are different ids. */
export type NodeId = string | number;
/** A directed edge [parent, child]. */
export type Edge = readonly [NodeId, NodeId];

export interface PredictedGraph {
  /** Recovered edges [parent, child]; each child at most once. */
  edges: readonly Edge[];
  /**
   * Recovered families (disjoint). Default: the connected components of the predicted edges.
   * Models of the node set in no listed family count as singleton families.
   */
  families?: readonly (readonly NodeId[])[];
}

export interface TruthGraph {
  /** Ground-truth edges [parent, child]: a forest (each child once, no cycle). */
  edges: readonly Edge[];
}

export interface WrongEdge {
  parent: NodeId;
  child: NodeId;
  /** 'reversed': the ground truth has child -> parent; 'wrong': any other false edge. */
  kind: 'reversed' | 'wrong';
  /** The child's parent in the ground truth (null: the child is a ground-truth root). */
  truthParent: NodeId | null;
}

export interface MissingEdge {
  parent: NodeId;
  child: NodeId;
  /** The parent the prediction gave the child (null: none, the child is a predicted root). */
  predictedParent: NodeId | null;
}

export interface FamilyEvaluation {
  /** Ground-truth root of the family. */
  root: NodeId;
  members: NodeId[];
  /** Ground-truth edges within the family. */
  edges: number;
  correctDirected: number;
  correctUndirected: number;
  /** null when the family has no edge (a single model). */
  directedAccuracy: number | null;
  undirectedAccuracy: number | null;
  /** Index into Evaluation.predictedFamilies of the family matched to it, or null. */
  matchedPredictedFamily: number | null;
  /** Models shared with the matched predicted family. */
  overlap: number;
}

export interface Evaluation {
  /** Number of models in the node set. */
  nodes: number;
  truthEdges: number;
  predictedEdges: number;
  correctDirected: number;
  correctUndirected: number;
  /** correctDirected / truthEdges; null when the ground truth has no edge. */
  directedAccuracy: number | null;
  /** correctUndirected / truthEdges; null when the ground truth has no edge. */
  undirectedAccuracy: number | null;
  /** Models in the best one-to-one family matching / nodes. */
  clusteringAccuracy: number;
  truthFamilies: NodeId[][];
  predictedFamilies: NodeId[][];
  /** One entry per ground-truth family, in the order of truthFamilies. */
  families: FamilyEvaluation[];
  /** Predicted edges that are not ground-truth edges (in prediction order). */
  wrongEdges: WrongEdge[];
  /** Ground-truth edges the prediction lacks in this direction (in ground-truth order). */
  missingEdges: MissingEdge[];
}

/**
 * Maximum-weight assignment (Hungarian algorithm, Kuhn-Munkres with potentials, O(r^2 c) for
 * r <= c; rectangular matrices are transposed as needed). Returns, for each row, its column
 * (or -1 when rows outnumber columns and the row is left out), and the total weight. Among
 * optimal assignments the result is deterministic (a function of the matrix only).
 */
export function maxWeightAssignment(W: readonly (readonly number[])[]): { assignment: number[]; total: number } {
  if (!Array.isArray(W)) throw new MotherError('ERR_INVALID_ARGUMENT', 'weights must be an array of rows');
  const rows = W.length;
  if (rows === 0) return { assignment: [], total: 0 };
  const cols = W[0].length;
  for (let i = 0; i < rows; i++) {
    if (!Array.isArray(W[i]) || W[i].length !== cols) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `weights row ${i} must have ${cols} entries`);
    }
    for (let j = 0; j < cols; j++) {
      if (typeof W[i][j] !== 'number' || !Number.isFinite(W[i][j])) {
        throw new MotherError('ERR_INVALID_ARGUMENT', `weight [${i}][${j}] is ${W[i][j]}: weights must be finite`);
      }
    }
  }
  if (cols === 0) return { assignment: new Array(rows).fill(-1), total: 0 };
  const transpose = rows > cols;
  const n = transpose ? cols : rows;
  const m = transpose ? rows : cols;
  // Minimise cost = -weight. 1-indexed arrays; column 0 is the virtual start.
  const a = (i: number, j: number): number => -(transpose ? W[j - 1][i - 1] : W[i - 1][j - 1]);
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1);
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = a(i0, j) - u[i0] - v[j];
        if (cur < minv[j]) { minv[j] = cur; way[j] = j0; }
        if (minv[j] < delta) { delta = minv[j]; j1 = j; }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) { u[p[j]] += delta; v[j] -= delta; } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const assignment = new Array<number>(rows).fill(-1);
  let total = 0;
  for (let j = 1; j <= m; j++) {
    if (p[j] === 0) continue;
    const row = transpose ? j - 1 : p[j] - 1;
    const col = transpose ? p[j] - 1 : j - 1;
    assignment[row] = col;
    total += W[row][col];
  }
  return { assignment, total };
}

/**
 * Edges [parent, child] from a parent array (-1 for roots), optionally mapping indices to ids.
 */
export function edgesFromParents(parent: ArrayLike<number>, ids?: readonly NodeId[]): Edge[] {
  if (ids !== undefined && ids.length !== parent.length) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `ids has ${ids.length} entries, parent array ${parent.length}`);
  }
  const out: Edge[] = [];
  for (let c = 0; c < parent.length; c++) {
    const p = parent[c];
    if (p === -1) continue;
    if (!Number.isInteger(p) || p < 0 || p >= parent.length || p === c) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `parent of ${c} is ${p}: not a valid index`);
    }
    out.push(ids ? [ids[p], ids[c]] : [p, c]);
  }
  return out;
}

function isId(x: unknown): x is NodeId {
  return typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x));
}

function idText(x: NodeId): string {
  return typeof x === 'string' ? JSON.stringify(x) : String(x);
}

/** Validated edge list: parent of each child (at most one), in input order. */
function readEdges(edges: readonly Edge[], what: string, index: Map<NodeId, number>, known: boolean): Map<NodeId, NodeId> {
  if (!Array.isArray(edges)) throw new MotherError('ERR_INVALID_ARGUMENT', `${what} edges must be an array`);
  const parentOf = new Map<NodeId, NodeId>();
  for (let k = 0; k < edges.length; k++) {
    const e = edges[k];
    if (!Array.isArray(e) || e.length !== 2 || !isId(e[0]) || !isId(e[1])) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `${what} edge ${k} must be [parent, child] with string or number ids`);
    }
    const [p, c] = e;
    if (p === c) throw new MotherError('ERR_INVALID_ARGUMENT', `${what} edge ${k} is a self-loop on ${idText(p)}`);
    for (const x of [p, c]) {
      if (!index.has(x)) {
        if (known) throw new MotherError('ERR_INVALID_ARGUMENT', `${what} edge ${k} uses unknown id ${idText(x)}`);
        index.set(x, index.size);
      }
    }
    if (parentOf.has(c)) {
      throw new MotherError('ERR_INVALID_ARGUMENT',
        `${what} edges give ${idText(c)} two parents (${idText(parentOf.get(c)!)} and ${idText(p)})`);
    }
    parentOf.set(c, p);
  }
  return parentOf;
}

/** Connected components (as index lists in node order) of an undirected view of the edges. */
function components(n: number, pairs: [number, number][]): number[][] {
  const uf = new UnionFind(n);
  for (const [a, b] of pairs) uf.union(a, b);
  return uf.sets();
}

/**
 * Scores a predicted Model Graph against the ground truth. The node set is `ids` when given
 * (every edge and family must use those ids; models absent from all edges count as singleton
 * families), otherwise every id that appears in the truth, the prediction's edges or its
 * families, in order of first appearance. (The public `evaluate` of lib/recover.ts scores a
 * recovered ModelGraph with it.)
 */
export function scoreGraph(predicted: PredictedGraph, truth: TruthGraph, ids?: readonly NodeId[]): Evaluation {
  if (predicted === null || typeof predicted !== 'object') {
    throw new MotherError('ERR_INVALID_ARGUMENT', 'predicted must be an object { edges, families? }');
  }
  if (truth === null || typeof truth !== 'object') {
    throw new MotherError('ERR_INVALID_ARGUMENT', 'truth must be an object { edges }');
  }
  const index = new Map<NodeId, number>();
  const known = ids !== undefined;
  if (known) {
    if (!Array.isArray(ids)) throw new MotherError('ERR_INVALID_ARGUMENT', 'ids must be an array');
    for (const x of ids) {
      if (!isId(x)) throw new MotherError('ERR_INVALID_ARGUMENT', `id ${String(x)} is not a string or number`);
      if (index.has(x)) throw new MotherError('ERR_INVALID_ARGUMENT', `id ${idText(x)} is listed twice`);
      index.set(x, index.size);
    }
  }
  const truthParent = readEdges(truth.edges, 'truth', index, known);
  const predParent = readEdges(predicted.edges, 'predicted', index, known);
  // The ground truth must be a forest.
  const reachesRoot = new Set<NodeId>();
  for (const start of truthParent.keys()) {
    const path = new Set<NodeId>();
    let x: NodeId | undefined = start;
    while (x !== undefined && !reachesRoot.has(x)) {
      if (path.has(x)) throw new MotherError('ERR_INVALID_ARGUMENT', `truth edges contain a cycle through ${idText(x)}`);
      path.add(x);
      x = truthParent.get(x);
    }
    for (const y of path) reachesRoot.add(y);
  }
  let givenFamilies: number[][] | null = null;
  if (predicted.families !== undefined) {
    if (!Array.isArray(predicted.families)) {
      throw new MotherError('ERR_INVALID_ARGUMENT', 'predicted families must be an array of arrays');
    }
    const owner = new Map<NodeId, number>();
    givenFamilies = [];
    predicted.families.forEach((fam, f) => {
      if (!Array.isArray(fam)) throw new MotherError('ERR_INVALID_ARGUMENT', `predicted family ${f} is not an array`);
      const list: number[] = [];
      for (const x of fam) {
        if (!isId(x)) throw new MotherError('ERR_INVALID_ARGUMENT', `predicted family ${f} has an invalid id ${String(x)}`);
        if (owner.has(x)) {
          throw new MotherError('ERR_INVALID_ARGUMENT',
            `${idText(x)} is in predicted families ${owner.get(x)} and ${f}: families must be disjoint`);
        }
        owner.set(x, f);
        if (!index.has(x)) {
          if (known) throw new MotherError('ERR_INVALID_ARGUMENT', `predicted family ${f} uses unknown id ${idText(x)}`);
          index.set(x, index.size);
        }
        list.push(index.get(x)!);
      }
      givenFamilies!.push(list);
    });
  }
  const n = index.size;
  const idOf: NodeId[] = new Array(n);
  for (const [x, i] of index) idOf[i] = x;

  // Families.
  const truthFam = components(n, [...truthParent].map(([c, p]) => [index.get(p)!, index.get(c)!]));
  let predFam: number[][];
  if (givenFamilies) {
    const covered = new Uint8Array(n);
    predFam = givenFamilies.filter((f) => f.length > 0);
    for (const f of predFam) for (const i of f) covered[i] = 1;
    for (let i = 0; i < n; i++) if (!covered[i]) predFam.push([i]);
  } else {
    predFam = components(n, [...predParent].map(([c, p]) => [index.get(p)!, index.get(c)!]));
  }
  const predOf = new Int32Array(n);
  predFam.forEach((f, k) => { for (const i of f) predOf[i] = k; });
  const truthOf = new Int32Array(n);
  truthFam.forEach((f, k) => { for (const i of f) truthOf[i] = k; });
  const contingency: number[][] = truthFam.map(() => new Array<number>(predFam.length).fill(0));
  for (let i = 0; i < n; i++) contingency[truthOf[i]][predOf[i]]++;
  const { assignment, total } = maxWeightAssignment(contingency);

  // Edges.
  let correctDirected = 0;
  let correctUndirected = 0;
  const famDirected = new Array<number>(truthFam.length).fill(0);
  const famUndirected = new Array<number>(truthFam.length).fill(0);
  const famEdges = new Array<number>(truthFam.length).fill(0);
  const missingEdges: MissingEdge[] = [];
  for (const [c, p] of truthParent) {
    const f = truthOf[index.get(c)!];
    famEdges[f]++;
    const directed = predParent.get(c) === p;
    const undirected = directed || predParent.get(p) === c;
    if (directed) { correctDirected++; famDirected[f]++; }
    if (undirected) { correctUndirected++; famUndirected[f]++; }
    if (!directed) missingEdges.push({ parent: p, child: c, predictedParent: predParent.get(c) ?? null });
  }
  const wrongEdges: WrongEdge[] = [];
  for (const [c, p] of predParent) {
    if (truthParent.get(c) === p) continue;
    wrongEdges.push({
      parent: p,
      child: c,
      kind: truthParent.get(p) === c ? 'reversed' : 'wrong',
      truthParent: truthParent.get(c) ?? null,
    });
  }

  const families: FamilyEvaluation[] = truthFam.map((members, f) => {
    let root: NodeId = idOf[members[0]];
    for (const i of members) if (!truthParent.has(idOf[i])) { root = idOf[i]; break; }
    const col = assignment[f];
    return {
      root,
      members: members.map((i) => idOf[i]),
      edges: famEdges[f],
      correctDirected: famDirected[f],
      correctUndirected: famUndirected[f],
      directedAccuracy: famEdges[f] > 0 ? famDirected[f] / famEdges[f] : null,
      undirectedAccuracy: famEdges[f] > 0 ? famUndirected[f] / famEdges[f] : null,
      matchedPredictedFamily: col >= 0 ? col : null,
      overlap: col >= 0 ? contingency[f][col] : 0,
    };
  });
  const truthEdges = truthParent.size;
  return {
    nodes: n,
    truthEdges,
    predictedEdges: predParent.size,
    correctDirected,
    correctUndirected,
    directedAccuracy: truthEdges > 0 ? correctDirected / truthEdges : null,
    undirectedAccuracy: truthEdges > 0 ? correctUndirected / truthEdges : null,
    clusteringAccuracy: n > 0 ? total / n : 1,
    truthFamilies: truthFam.map((f) => f.map((i) => idOf[i])),
    predictedFamilies: predFam.map((f) => f.map((i) => idOf[i])),
    families,
    wrongEdges,
    missingEdges,
  };
}

/** Agreement of predicted families with the ground truth's (both partitions of the same ids). */
export interface FamilyAgreement {
  /** Ground-truth families recovered exactly (same members), and how many there are. */
  exact: number;
  truthFamilies: number;
  predictedFamilies: number;
  /** exact / truthFamilies (1 for an empty set). */
  exactFraction: number;
  /** Adjusted Rand index (Hubert and Arabie 1985): 1 for identical partitions, about 0 for chance. */
  adjustedRand: number;
  /** Truth families split or merged: their members and the predicted families they fall in. */
  wrong: { truth: NodeId[]; predicted: NodeId[][] }[];
}

/**
 * Exact families and the adjusted Rand index of a predicted partition against the truth's,
 * over the ids of the truth partition (ids missing from the prediction count as singletons).
 */
export function familyAgreement(predicted: readonly (readonly NodeId[])[], truth: readonly (readonly NodeId[])[]): FamilyAgreement {
  const ids: NodeId[] = truth.flat();
  const index = new Map<NodeId, number>();
  ids.forEach((x) => {
    if (index.has(x)) throw new MotherError('ERR_INVALID_ARGUMENT', `${idText(x)} is in two truth families`);
    index.set(x, index.size);
  });
  const n = ids.length;
  const truthOf = new Int32Array(n);
  truth.forEach((f, k) => f.forEach((x) => (truthOf[index.get(x)!] = k)));
  const predOf = new Int32Array(n).fill(-1);
  const pred: number[][] = [];
  for (const f of predicted) {
    const list = f.filter((x) => index.has(x)).map((x) => index.get(x)!);
    if (list.length === 0) continue;
    for (const i of list) {
      if (predOf[i] >= 0) throw new MotherError('ERR_INVALID_ARGUMENT', `${idText(ids[i])} is in two predicted families`);
      predOf[i] = pred.length;
    }
    pred.push(list);
  }
  for (let i = 0; i < n; i++) if (predOf[i] < 0) { predOf[i] = pred.length; pred.push([i]); }
  const key = (f: readonly number[]) => [...f].sort((a, b) => a - b).join(',');
  const predKeys = new Set(pred.map(key));
  let exact = 0;
  const wrong: FamilyAgreement['wrong'] = [];
  for (const f of truth) {
    const list = f.map((x) => index.get(x)!);
    if (predKeys.has(key(list))) exact++;
    else {
      const hit = [...new Set(list.map((i) => predOf[i]))].sort((a, b) => a - b);
      wrong.push({ truth: [...f], predicted: hit.map((k) => pred[k].map((i) => ids[i])) });
    }
  }
  // adjusted Rand index from the contingency table
  const c2 = (x: number) => (x * (x - 1)) / 2;
  const cells = new Map<string, number>();
  for (let i = 0; i < n; i++) cells.set(`${truthOf[i]},${predOf[i]}`, (cells.get(`${truthOf[i]},${predOf[i]}`) ?? 0) + 1);
  let sumCells = 0;
  for (const v of cells.values()) sumCells += c2(v);
  const sumTruth = truth.reduce((a, f) => a + c2(f.length), 0);
  const sumPred = pred.reduce((a, f) => a + c2(f.length), 0);
  const total = c2(n);
  const expected = total > 0 ? (sumTruth * sumPred) / total : 0;
  const max = (sumTruth + sumPred) / 2;
  const adjustedRand = max === expected ? 1 : (sumCells - expected) / (max - expected);
  return { exact, truthFamilies: truth.length, predictedFamilies: pred.length, exactFraction: truth.length ? exact / truth.length : 1, adjustedRand, wrong };
}
