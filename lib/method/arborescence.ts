// Stage 5 of the pipeline (direction and tree): the tree of a family.
//
// Minimum spanning arborescence (directed minimum spanning tree): Chu-Liu/Edmonds in
// O(E log V) with Tarjan's contraction scheme (Tarjan 1977, as corrected by Camerini, Fratta &
// Maffioli 1979): one mergeable heap of incoming edges per (contracted) node, with lazy cost
// offsets, a union-find with rollback for the contractions, and a final expansion pass that
// turns the chosen edges of contracted cycles back into a tree over the original nodes.
//
// Heaps are leftist heaps (worst-case O(log E) merge, so the recursion stays shallow even on
// millions of edges); the union-find is union-by-size without path compression so that it can
// be rolled back for the expansion. Total time O(E log E) = O(E log V), memory O(E).
//
// Free root. When no root is given, the result is the minimum-cost arborescence over all
// possible roots. We add a virtual super-root with an edge to every candidate root and solve
// the rooted problem; instead of giving those edges a "large" cost (which would mix magnitudes
// and cost precision in floating point), every cost is a pair (virtual, weight) compared
// lexicographically, a virtual edge costing (1, 0) and a real edge (0, w). Edmonds' algorithm
// is valid over any totally ordered abelian group, so the result first minimises the number of
// virtual edges used (1 exactly when some single root reaches every node) and then the real
// weight: the minimum over all roots, computed exactly. In practice the pair is never stored:
// a walk stops as soon as it takes a virtual edge, so no (1, .) offset is ever subtracted and
// real edges keep first component 0; each node therefore has two heaps, real in-edges and
// virtual in-edges, and the virtual heap is consulted only when no real edge enters.
//
// Edges that become internal to a contracted node (self-loops) are discarded when they reach
// the top of its heap; in free-root mode, once one contracted node holds every node, its real
// heap is dropped at once (it can only hold self-loops), which keeps dense inputs fast.
//
// Tie-breaking (deterministic, documented). Whenever the algorithm picks the cheapest incoming
// edge of a (contracted) node, candidates of equal reduced cost are ordered by their position
// in the input edge list, earlier first; for matrix input the edges are listed row by row, so
// the smaller parent index wins. Virtual super-root edges come after every real edge, ordered
// by target index. Nodes are processed in index order. The result is therefore a pure function
// of the input (including the input order of the edges). Reduced costs are floating-point
// differences, so two alternatives whose true reduced costs are equal can differ by an ulp;
// only exactly representable ties (e.g. integer weights) are guaranteed to follow the rule.
import { MotherError } from '../core/errors';
import { SquareMatrix, toFlatSquare } from './matrix';

/** A weighted directed edge from -> to. */
export interface WeightedEdge {
  readonly from: number;
  readonly to: number;
  readonly weight: number;
}

export interface ArborescenceOptions {
  /** Fixed root. Default: free root (the minimum over all roots). */
  root?: number;
  /**
   * Free-root mode only: the nodes allowed to be the root (default: every node). Used e.g. to
   * measure how much worse the best tree with a different root is.
   */
  candidateRoots?: ArrayLike<number>;
}

export interface Arborescence {
  /** parent[v] for every node; -1 for the root. */
  parent: number[];
  root: number;
  /** Sum of the weights of the chosen edges (summed in node order). */
  cost: number;
  /**
   * For edge-list input: the index in the input list of the edge chosen into each node (-1 for
   * the root). For matrix input: parent[v] * n + v (-1 for the root).
   */
  parentEdge: number[];
}

/**
 * Minimum spanning arborescence of a directed graph given as an edge list over nodes 0..n-1.
 * Self-loops, edges into a fixed root and edges of weight +Infinity are ignored; parallel edges
 * are allowed. Throws MotherError ERR_INVALID_ARGUMENT for malformed input (bad node index,
 * NaN or -Infinity weight) and when no spanning arborescence exists.
 */
export function minimumArborescence(
  n: number,
  edges: readonly WeightedEdge[],
  opts: ArborescenceOptions = {},
): Arborescence {
  checkN(n);
  if (!Array.isArray(edges)) throw new MotherError('ERR_INVALID_ARGUMENT', 'edges must be an array');
  const m = edges.length;
  const from = new Int32Array(m);
  const to = new Int32Array(m);
  const w = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const e = edges[k];
    if (e === null || typeof e !== 'object') {
      throw new MotherError('ERR_INVALID_ARGUMENT', `edge ${k} is not an object`);
    }
    const { from: a, to: b, weight } = e;
    if (!Number.isInteger(a) || a < 0 || a >= n || !Number.isInteger(b) || b < 0 || b >= n) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `edge ${k} (${a} -> ${b}) has a node outside 0..${n - 1}`);
    }
    if (typeof weight !== 'number' || Number.isNaN(weight) || weight === -Infinity) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `edge ${k} (${a} -> ${b}) has weight ${weight}`);
    }
    from[k] = a;
    to[k] = b;
    w[k] = weight;
  }
  return solve(n, from, to, w, opts, (k) => k);
}

/**
 * Minimum spanning arborescence of the complete digraph with edge costs M[i][j] for i -> j.
 * +Infinity marks a missing edge; the diagonal is ignored. NaN or -Infinity off the diagonal is
 * rejected. Ties are broken in favour of the smaller parent index (see the file header).
 */
export function minimumArborescenceMatrix(M: SquareMatrix, opts: ArborescenceOptions = {}): Arborescence {
  const { n, data } = toFlatSquare(M, 'cost matrix');
  let m = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const x = data[i * n + j];
      if (Number.isNaN(x) || x === -Infinity) {
        throw new MotherError('ERR_INVALID_ARGUMENT', `cost matrix entry [${i}][${j}] is ${x}`);
      }
      if (x !== Infinity) m++;
    }
  }
  const from = new Int32Array(m);
  const to = new Int32Array(m);
  const w = new Float64Array(m);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const x = data[i * n + j];
      if (i === j || x === Infinity) continue;
      from[k] = i;
      to[k] = j;
      w[k] = x;
      k++;
    }
  }
  return solve(n, from, to, w, opts, (e) => from[e] * n + to[e]);
}

function checkN(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `number of nodes must be a positive integer, got ${n}`);
  }
}

function solve(
  n: number,
  from: Int32Array,
  to: Int32Array,
  weight: Float64Array,
  opts: ArborescenceOptions,
  edgeLabel: (e: number) => number,
): Arborescence {
  checkN(n);
  const fixedRoot = opts.root;
  const free = fixedRoot === undefined;
  if (!free && (!Number.isInteger(fixedRoot) || fixedRoot! < 0 || fixedRoot! >= n)) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `root must be a node index in 0..${n - 1}, got ${fixedRoot}`);
  }
  let candidates: Int32Array;
  if (free) {
    if (opts.candidateRoots === undefined) {
      candidates = new Int32Array(n);
      for (let v = 0; v < n; v++) candidates[v] = v;
    } else {
      const mark = new Uint8Array(n);
      for (let i = 0; i < opts.candidateRoots.length; i++) {
        const v = opts.candidateRoots[i];
        if (!Number.isInteger(v) || v < 0 || v >= n) {
          throw new MotherError('ERR_INVALID_ARGUMENT', `candidate root ${v} is not a node index in 0..${n - 1}`);
        }
        mark[v] = 1;
      }
      const list: number[] = [];
      for (let v = 0; v < n; v++) if (mark[v]) list.push(v);
      if (list.length === 0) throw new MotherError('ERR_INVALID_ARGUMENT', 'candidateRoots is empty');
      candidates = Int32Array.from(list);
    }
  } else {
    if (opts.candidateRoots !== undefined) {
      throw new MotherError('ERR_INVALID_ARGUMENT', 'candidateRoots only applies when no root is given');
    }
    candidates = new Int32Array(0);
  }

  // Node count including the virtual super-root (index n) in free-root mode.
  const N = free ? n + 1 : n;
  const r = free ? n : fixedRoot!;
  const mReal = from.length;

  // Heap nodes = usable edges: real edges first (input order), then virtual super-root edges.
  let usedReal = 0;
  for (let k = 0; k < mReal; k++) {
    if (from[k] !== to[k] && to[k] !== r && weight[k] !== Infinity) usedReal++;
  }
  const E = usedReal + candidates.length;
  const src = new Int32Array(E);
  const dst = new Int32Array(E);
  const key = new Float64Array(E);
  const lazy = new Float64Array(E);
  const left = new Int32Array(E).fill(-1);
  const right = new Int32Array(E).fill(-1);
  const rank = new Int32Array(E).fill(1);
  // Compacted edge index -> caller's edge index (-1 for virtual edges).
  const origin = new Int32Array(E);
  let e = 0;
  for (let k = 0; k < mReal; k++) {
    if (from[k] === to[k] || to[k] === r || weight[k] === Infinity) continue;
    src[e] = from[k];
    dst[e] = to[k];
    key[e] = weight[k];
    origin[e] = k;
    e++;
  }
  for (let i = 0; i < candidates.length; i++) {
    src[e] = r;
    dst[e] = candidates[i];
    key[e] = 0;
    origin[e] = -1;
    e++;
  }

  // Leftist heaps with a lazy additive offset per subtree.
  const push = (a: number): void => {
    const d = lazy[a];
    if (d !== 0) {
      key[a] += d;
      const l = left[a];
      const rr = right[a];
      if (l >= 0) lazy[l] += d;
      if (rr >= 0) lazy[rr] += d;
      lazy[a] = 0;
    }
  };
  // Strict total order on (reduced cost, edge index); both operands pushed.
  const merge = (a: number, b: number): number => {
    if (a < 0) return b;
    if (b < 0) return a;
    push(a);
    push(b);
    if (key[b] < key[a] || (key[b] === key[a] && b < a)) { const t = a; a = b; b = t; }
    const rr = merge(right[a], b);
    right[a] = rr;
    const l = left[a];
    const rl = l < 0 ? 0 : rank[l];
    const rrk = rank[rr];
    if (rl < rrk) {
      left[a] = rr;
      right[a] = l;
      rank[a] = rl + 1;
    } else {
      rank[a] = rrk + 1;
    }
    return a;
  };

  // heap[v]: real edges into v; vheap[v]: virtual edges into v (free-root mode). A virtual edge
  // costs (1, 0) in the lexicographic order, more than any real edge (0, w); since a walk ends
  // as soon as a virtual edge is chosen, no offset (1, .) is ever subtracted, so real edges
  // always keep a first component of 0: a virtual edge is chosen exactly when no real edge
  // enters the (contracted) node, and among virtual edges by reduced second component.
  const heap = new Int32Array(N).fill(-1);
  const vheap = new Int32Array(N).fill(-1);
  {
    // Linear-time build: merge singletons pairwise in FIFO order (the order is strict, so the
    // heap's shape does not affect which edge is the minimum).
    const start = new Int32Array(N + 1);
    for (let k = 0; k < usedReal; k++) start[dst[k] + 1]++;
    let maxLen = 0;
    for (let v = 0; v < N; v++) {
      if (start[v + 1] > maxLen) maxLen = start[v + 1];
      start[v + 1] += start[v];
    }
    const bucket = new Int32Array(usedReal);
    const fill = start.slice(0, N);
    for (let k = 0; k < usedReal; k++) bucket[fill[dst[k]]++] = k;
    const fifo = new Int32Array(2 * maxLen);
    for (let v = 0; v < N; v++) {
      let head = 0;
      let tail = 0;
      for (let i = start[v]; i < start[v + 1]; i++) fifo[tail++] = bucket[i];
      if (tail === 0) continue;
      while (tail - head > 1) {
        const a = fifo[head++];
        const b = fifo[head++];
        fifo[tail++] = merge(a, b);
      }
      heap[v] = fifo[head];
    }
    for (let k = usedReal; k < E; k++) vheap[dst[k]] = k;
  }

  // Union-find with rollback.
  const ufParent = new Int32Array(N);
  const ufSize = new Int32Array(N).fill(1);
  for (let v = 0; v < N; v++) ufParent[v] = v;
  const history: number[] = [];
  const find = (x: number): number => {
    while (ufParent[x] !== x) x = ufParent[x];
    return x;
  };
  const join = (a: number, b: number): boolean => {
    a = find(a);
    b = find(b);
    if (a === b) return false;
    if (ufSize[a] < ufSize[b]) { const t = a; a = b; b = t; }
    ufParent[b] = a;
    ufSize[a] += ufSize[b];
    history.push(b);
    return true;
  };
  const rollback = (t: number): void => {
    while (history.length > t) {
      const b = history.pop()!;
      const a = ufParent[b];
      ufSize[a] -= ufSize[b];
      ufParent[b] = b;
    }
  };

  const seen = new Int32Array(N).fill(-1);
  seen[r] = r;
  const pathNode = new Int32Array(N);
  const pathEdge = new Int32Array(N);
  const inEdge = new Int32Array(N).fill(-1);
  // Contracted cycles: representative, union-find time, and their edges (a slice of cycEdges).
  const cycRep: number[] = [];
  const cycTime: number[] = [];
  const cycStart: number[] = [];
  const cycEdges: number[] = [];

  for (let s = 0; s < N; s++) {
    let u = s;
    let qi = 0;
    while (seen[u] < 0) {
      // Discard edges that became internal to u by earlier contractions (self-loops): they can
      // never be chosen, and skipping them leaves the order of the others unchanged. Once u
      // holds every real node (free-root mode), every real edge is internal.
      let h = free && ufSize[u] === n ? -1 : heap[u];
      while (h >= 0) {
        push(h);
        if (find(src[h]) !== u) break;
        h = merge(left[h], right[h]);
      }
      heap[u] = h;
      if (h < 0) {
        h = vheap[u];
        if (h < 0) {
          throw new MotherError('ERR_INVALID_ARGUMENT', free
            ? `no spanning arborescence: node ${u} has no usable incoming edge`
            : `no spanning arborescence rooted at ${r}: node ${u} has no usable incoming edge`);
        }
        // A virtual edge: the walk ends at the super-root.
        pathEdge[qi] = h;
        pathNode[qi] = u;
        qi++;
        seen[u] = s;
        break;
      }
      // Subtract the chosen edge's cost from every edge into this (contracted) node, then pop.
      const c = key[h];
      lazy[h] -= c;
      push(h);
      heap[u] = merge(left[h], right[h]);
      if (vheap[u] >= 0) lazy[vheap[u]] -= c;
      pathEdge[qi] = h;
      pathNode[qi] = u;
      qi++;
      seen[u] = s;
      u = find(src[h]);
      if (seen[u] === s) {
        // Found a cycle: contract it.
        let cyc = -1;
        let vcyc = -1;
        const end = qi;
        const time = history.length;
        let wNode: number;
        do {
          wNode = pathNode[--qi];
          cyc = merge(cyc, heap[wNode]);
          vcyc = merge(vcyc, vheap[wNode]);
        } while (join(u, wNode));
        u = find(u);
        heap[u] = cyc;
        vheap[u] = vcyc;
        seen[u] = -1;
        cycRep.push(u);
        cycTime.push(time);
        cycStart.push(cycEdges.length);
        for (let i = qi; i < end; i++) cycEdges.push(pathEdge[i]);
      }
    }
    for (let i = 0; i < qi; i++) inEdge[find(dst[pathEdge[i]])] = pathEdge[i];
  }
  // Expansion: undo the contractions from the last to the first; inside each cycle every node
  // keeps its cycle edge except the one entered by the edge chosen for the whole cycle.
  for (let c = cycRep.length - 1; c >= 0; c--) {
    rollback(cycTime[c]);
    const entering = inEdge[cycRep[c]];
    const stop = c + 1 < cycRep.length ? cycStart[c + 1] : cycEdges.length;
    for (let i = cycStart[c]; i < stop; i++) inEdge[find(dst[cycEdges[i]])] = cycEdges[i];
    if (entering >= 0) inEdge[find(dst[entering])] = entering;
  }

  const parent = new Array<number>(n).fill(-1);
  const parentEdge = new Array<number>(n).fill(-1);
  let root = -1;
  let roots = 0;
  let cost = 0;
  for (let v = 0; v < n; v++) {
    if (!free && v === r) { root = v; continue; }
    const ed = inEdge[v];
    if (ed < 0) throw new MotherError('ERR_INTERNAL', `arborescence: node ${v} left without a parent`);
    if (origin[ed] < 0) {
      roots++;
      root = v;
      continue;
    }
    parent[v] = src[ed];
    parentEdge[v] = edgeLabel(origin[ed]);
    cost += weight[origin[ed]];
  }
  if (free && roots !== 1) {
    throw new MotherError('ERR_INVALID_ARGUMENT',
      `no spanning arborescence: no single ${opts.candidateRoots === undefined ? '' : 'candidate '}root reaches every node (at least ${roots} roots needed)`);
  }
  return { parent, root, cost, parentEdge };
}
