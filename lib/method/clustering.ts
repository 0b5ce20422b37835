// Stage 4 of the pipeline (families): clustering models into families (one family = one
// pre-training run).
//
// wardLinkage reproduces scipy.cluster.hierarchy.linkage(condensed, method='ward') exactly:
// scipy (1.x) runs the nearest-neighbour-chain algorithm (`nn_chain` in _hierarchy.pyx) with
// the Lance-Williams update for Ward, then stable-sorts the merges by height and relabels the
// clusters with a union-find. We replicate every choice that matters on ties:
//   - the chain starts at the lowest-index live cluster whenever it is empty;
//   - the nearest neighbour of the chain's tip x is searched over live clusters in index
//     order with a strict '<', starting from the previous chain element as the incumbent (so
//     among equally near clusters the previous chain element wins, otherwise the lowest
//     index); when the chain has one element the incumbent is +Infinity;
//   - the merged pair (x, y) is ordered x < y; the merged cluster lives in slot y, slot x dies;
//   - the Ward update is evaluated with scipy's expression and operation order,
//     t = 1 / (nx + ny + ni), sqrt((ni + nx) * t * dxi * dxi + (ni + ny) * t * dyi * dyi
//     - ni * t * dxy * dxy), so results agree bit for bit on IEEE-754 doubles;
//   - merges are sorted by height with a stable sort (numpy's mergesort), so merges of equal
//     height keep the order in which the chain produced them;
//   - cluster ids are then assigned in row order (n, n+1, ...), each row listing the two
//     children's current ids smaller first, and its size.
// The algorithm is O(n^2) time and O(n^2) memory (a copy of the condensed matrix).
//
// Flat clusters: cutTree(Z, k) mirrors scipy's fcluster(Z, k, 'maxclust'); autoFamilies picks
// the number of families from a gap in the merge heights; clusterFamilies runs either within
// groups of mutually comparable models (same architecture), so incomparable models never share
// a family. Labels are always 0-based and numbered by smallest member index (the family
// containing model 0 is family 0, the family of the smallest model not in family 0 is 1, ...).
import { MotherError } from '../core/errors';
import { FlatSquare, pairCount, pairIndex, pairRowOffset, relabel, SquareMatrix, toFlatSquare, UnionFind } from './matrix';

/**
 * A hierarchical clustering in scipy's linkage-matrix format: n - 1 rows
 * [idA, idB, height, size], ids < n are observations and id n + r is the cluster formed at
 * row r, idA < idB.
 */
export interface Linkage {
  /** Number of observations. */
  readonly n: number;
  /** Row-major (n - 1) x 4 matrix, exactly what scipy's linkage returns. */
  readonly Z: Float64Array;
}

/** Index of pair (i, j), i != j, in a condensed (upper-triangle, row-major) distance vector. */
export const condensedIndex = pairIndex;

/**
 * The condensed distance vector of a square distance matrix (upper triangle, row-major, as
 * scipy.spatial.distance.squareform), optionally restricted to the given indices (in that
 * order). Checks symmetry (relative tolerance 1e-9 of the largest entry compared).
 */
export function condensedFromSquare(D: SquareMatrix, indices?: ArrayLike<number>): Float64Array {
  return condensedFromFlat(toFlatSquare(D, 'distance matrix'), indices);
}

function condensedFromFlat(flat: FlatSquare, indices?: ArrayLike<number>): Float64Array {
  const { n, data } = flat;
  const idx = indices ?? Int32Array.from({ length: n }, (_, i) => i);
  const m = idx.length;
  for (let a = 0; a < m; a++) {
    const i = idx[a];
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `index ${i} is outside 0..${n - 1}`);
    }
  }
  const out = new Float64Array((m * (m - 1)) / 2);
  let k = 0;
  for (let a = 0; a < m; a++) {
    const i = idx[a];
    for (let b = a + 1; b < m; b++) {
      const j = idx[b];
      const x = data[i * n + j];
      const y = data[j * n + i];
      if (Number.isNaN(x) || Number.isNaN(y)) {
        throw new MotherError('ERR_INVALID_ARGUMENT', `distance matrix entry [${i}][${j}] or [${j}][${i}] is NaN`);
      }
      if (x !== y && !(Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y)))) {
        throw new MotherError('ERR_INVALID_ARGUMENT',
          `distance matrix is not symmetric: [${i}][${j}] = ${x} but [${j}][${i}] = ${y}`);
      }
      out[k++] = x;
    }
  }
  return out;
}

function checkCondensedLength(condensed: ArrayLike<number>, n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `number of observations must be a positive integer, got ${n}`);
  }
  if (condensed === null || typeof condensed !== 'object' || typeof condensed.length !== 'number') {
    throw new MotherError('ERR_INVALID_ARGUMENT', 'condensed distances must be an array');
  }
  const expected = pairCount(n);
  if (condensed.length !== expected) {
    throw new MotherError('ERR_INVALID_ARGUMENT',
      `condensed distances for n = ${n} must have ${expected} entries, got ${condensed.length}`);
  }
}

function checkCondensed(condensed: ArrayLike<number>, n: number): void {
  checkCondensedLength(condensed, n);
  const expected = pairCount(n);
  for (let k = 0; k < expected; k++) {
    const x = condensed[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) {
      throw new MotherError('ERR_INVALID_ARGUMENT',
        `condensed distance ${k} is ${x}: distances must be finite and non-negative`);
    }
  }
}

/**
 * Ward hierarchical clustering of n observations from their condensed distance vector (as
 * scipy.spatial.distance.pdist returns). Returns the same linkage matrix as
 * scipy.cluster.hierarchy.linkage(condensed, method='ward'), ties included (see the file
 * header for how). Unlike scipy, n = 1 is accepted (an empty linkage) and negative distances
 * are rejected (Ward's update is meaningless for them).
 */
export function wardLinkage(condensed: ArrayLike<number>, n: number): Linkage {
  checkCondensed(condensed, n);
  const rows = n - 1;
  if (rows === 0) return { n, Z: new Float64Array(0) };
  const D = Float64Array.from(condensed);
  const size = new Int32Array(n).fill(1);
  const chain = new Int32Array(n);
  let chainLength = 0;
  const mx = new Int32Array(rows);
  const my = new Int32Array(rows);
  const mh = new Float64Array(rows);
  const { sqrt } = Math;
  // Row i of the upper triangle starts at rowStart[i] (entry (i, i + 1)).
  const rowStart = new Float64Array(n);
  for (let i = 0; i < n; i++) rowStart[i] = pairRowOffset(n, i);
  const at = (i: number, j: number): number => (i < j ? rowStart[i] + j : rowStart[j] + i);

  let y = 0;
  for (let k = 0; k < rows; k++) {
    if (chainLength === 0) {
      chainLength = 1;
      for (let i = 0; i < n; i++) {
        if (size[i] > 0) { chain[0] = i; break; }
      }
    }
    let x: number;
    let currentMin: number;
    for (;;) {
      x = chain[chainLength - 1];
      if (chainLength > 1) {
        y = chain[chainLength - 2];
        currentMin = D[at(x, y)];
      } else {
        currentMin = Infinity;
      }
      for (let i = 0; i < n; i++) {
        if (size[i] === 0 || i === x) continue;
        const dist = D[at(x, i)];
        if (dist < currentMin) {
          currentMin = dist;
          y = i;
        }
      }
      if (chainLength > 1 && y === chain[chainLength - 2]) break;
      chain[chainLength++] = y;
    }
    chainLength -= 2;
    if (x > y) { const t = x; x = y; y = t; }
    const nx = size[x];
    const ny = size[y];
    mx[k] = x;
    my[k] = y;
    mh[k] = currentMin;
    size[x] = 0;
    size[y] = nx + ny;
    const dxy = currentMin;
    for (let i = 0; i < n; i++) {
      const ni = size[i];
      if (ni === 0 || i === y) continue;
      const ixi = at(i, x);
      const iyi = at(i, y);
      const dxi = D[ixi];
      const dyi = D[iyi];
      const t = 1.0 / (nx + ny + ni);
      D[iyi] = sqrt((ni + nx) * t * dxi * dxi + (ni + ny) * t * dyi * dyi - ni * t * dxy * dxy);
    }
  }

  // Stable sort by height (numpy argsort kind='mergesort').
  const order = Array.from({ length: rows }, (_, i) => i);
  order.sort((a, b) => (mh[a] < mh[b] ? -1 : mh[a] > mh[b] ? 1 : a - b));

  // Relabel with a union-find over the 2n - 1 cluster ids, exactly as scipy's label().
  const uf = new UnionFind(2 * n - 1);
  const csize = new Int32Array(2 * n - 1).fill(1);
  const Z = new Float64Array(rows * 4);
  for (let r = 0; r < rows; r++) {
    const o = order[r];
    const a = uf.find(mx[o]);
    const b = uf.find(my[o]);
    const label = n + r;
    uf.attach(a, label);
    uf.attach(b, label);
    csize[label] = csize[a] + csize[b];
    Z[4 * r] = a < b ? a : b;
    Z[4 * r + 1] = a < b ? b : a;
    Z[4 * r + 2] = mh[o];
    Z[4 * r + 3] = csize[label];
  }
  return { n, Z };
}

/** The linkage as an array of [idA, idB, height, size] rows. */
export function linkageRows(linkage: Linkage): [number, number, number, number][] {
  checkLinkage(linkage);
  const { Z } = linkage;
  const out: [number, number, number, number][] = [];
  for (let r = 0; r < linkage.n - 1; r++) out.push([Z[4 * r], Z[4 * r + 1], Z[4 * r + 2], Z[4 * r + 3]]);
  return out;
}

function checkLinkage(linkage: Linkage): void {
  if (linkage === null || typeof linkage !== 'object') {
    throw new MotherError('ERR_INVALID_ARGUMENT', 'linkage must be an object { n, Z }');
  }
  const { n, Z } = linkage;
  if (!Number.isInteger(n) || n < 1) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `linkage: n must be a positive integer, got ${n}`);
  }
  if (!Z || Z.length !== 4 * (n - 1)) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `linkage: Z must have ${4 * (n - 1)} entries for n = ${n}`);
  }
  const seen = new Uint8Array(2 * n - 1);
  for (let r = 0; r < n - 1; r++) {
    for (let c = 0; c < 2; c++) {
      const id = Z[4 * r + c];
      if (!Number.isInteger(id) || id < 0 || id >= n + r || seen[id]) {
        throw new MotherError('ERR_INVALID_ARGUMENT', `linkage: row ${r} has an invalid child id ${id}`);
      }
      seen[id] = 1;
    }
    if (Number.isNaN(Z[4 * r + 2])) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `linkage: row ${r} has a NaN height`);
    }
  }
}

/**
 * Labels (0-based, numbered by smallest member) of the flat clusters obtained by applying the
 * merges of the rows for which keep(row) is true. Those rows must be closed under "child of".
 */
function labelsFromRows(linkage: Linkage, keep: (row: number) => boolean): number[] {
  const { n, Z } = linkage;
  const uf = new UnionFind(2 * n - 1);
  for (let r = 0; r < n - 1; r++) {
    if (!keep(r)) continue;
    uf.attach(uf.find(Z[4 * r]), n + r);
    uf.attach(uf.find(Z[4 * r + 1]), n + r);
  }
  return uf.labels(n);
}

/** For each row, the largest height in its subtree (scipy's get_max_dist_for_each_cluster). */
function maxDists(linkage: Linkage): Float64Array {
  const { n, Z } = linkage;
  const md = new Float64Array(n - 1);
  for (let r = 0; r < n - 1; r++) {
    let h = Z[4 * r + 2];
    for (let c = 0; c < 2; c++) {
      const id = Z[4 * r + c];
      if (id >= n && md[id - n] > h) h = md[id - n];
    }
    md[r] = h;
  }
  return md;
}

/**
 * Flat clusters like scipy's fcluster(Z, k, criterion='maxclust'), labels 0-based and
 * numbered by smallest member (scipy's labels are 1-based in tree order: equal up to a
 * permutation). As in scipy, the cut is a height threshold: the smallest threshold t among
 * the (subtree-maximum) merge heights giving at most k clusters, every merge of height <= t
 * applied. So when merges tie in height, fewer than k clusters can come out. k >= n gives
 * singletons.
 */
export function cutTree(linkage: Linkage, k: number): number[] {
  checkLinkage(linkage);
  const { n } = linkage;
  if (!Number.isInteger(k) || k < 1) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `number of clusters must be a positive integer, got ${k}`);
  }
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const md = maxDists(linkage);
  const sorted = Float64Array.from(md).sort();
  // Clusters at threshold sorted[i] = n - (number of rows with md <= sorted[i]); the smallest
  // such threshold with at most k clusters needs at least n - k rows merged.
  let idx = n - k - 1;
  const t = sorted[idx];
  while (idx + 1 < sorted.length && sorted[idx + 1] === t) idx++;
  return labelsFromRows(linkage, (r) => md[r] <= t);
}

export interface AutoFamiliesOptions {
  /**
   * Smallest ratio between consecutive positive merge heights that counts as the gap between
   * families. Default 10: models of different pre-training runs are orders of magnitude
   * farther apart than relatives.
   */
  minRatio?: number;
  /**
   * Optional absolute ceiling, in linkage height units: merges above it are never within a
   * family, whatever the ratios say. Default +Infinity.
   */
  maxHeight?: number;
}

export interface FamilyCut {
  /** Family label of each observation (0-based, numbered by smallest member). */
  labels: number[];
  /** Number of families. */
  count: number;
  /** The largest merge height that was applied (null when none was: all singletons). */
  cutHeight: number | null;
  /**
   * The largest ratio between consecutive positive merge heights (null when fewer than two
   * positive heights exist), and whether it was used to cut.
   */
  ratio: number | null;
  cutAtGap: boolean;
}

/**
 * Chooses the number of families from the merge heights. The heights h_0 <= ... <= h_{n-2}
 * are scanned for the largest ratio h_{i+1} / h_i between consecutive POSITIVE heights (merges
 * at height 0 are exact duplicates and always stay within a family; among equal ratios the
 * lowest gap wins). If that ratio is >= minRatio, every merge up to h_i is applied and those
 * above are not: the families are the clusters below the gap, so a model with no relative
 * stays a singleton family. Otherwise everything is one family. maxHeight, when given, also
 * stops every merge above it. With fewer than two positive heights no gap can be measured
 * (e.g. n = 2): one family unless maxHeight separates them.
 */
export function autoFamilies(linkage: Linkage, opts: AutoFamiliesOptions = {}): FamilyCut {
  checkLinkage(linkage);
  const minRatio = opts.minRatio ?? 10;
  const maxHeight = opts.maxHeight ?? Infinity;
  if (typeof minRatio !== 'number' || !(minRatio > 1)) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `minRatio must be a number > 1, got ${minRatio}`);
  }
  if (typeof maxHeight !== 'number' || Number.isNaN(maxHeight)) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `maxHeight must be a number, got ${maxHeight}`);
  }
  const md = maxDists(linkage);
  const heights = Float64Array.from(md).sort();
  let bestRatio: number | null = null;
  let bestLow = Infinity;
  let prev = -1;
  for (let i = 0; i < heights.length; i++) {
    const h = heights[i];
    if (!(h > 0)) continue;
    if (prev > 0) {
      const ratio = h / prev;
      if (bestRatio === null || ratio > bestRatio) {
        bestRatio = ratio;
        bestLow = prev;
      }
    }
    prev = h;
  }
  const cutAtGap = bestRatio !== null && bestRatio >= minRatio;
  let threshold = cutAtGap ? bestLow : Infinity;
  if (maxHeight < threshold) threshold = maxHeight;
  const labels = labelsFromRows(linkage, (r) => md[r] <= threshold);
  let count = 0;
  for (const l of labels) if (l + 1 > count) count = l + 1;
  let cutHeight: number | null = null;
  for (let i = 0; i < heights.length; i++) if (heights[i] <= threshold) cutHeight = heights[i];
  return { labels, count, cutHeight, ratio: bestRatio, cutAtGap };
}

/** Groups observations by label: families[l] lists the members of family l in index order. */
export function familiesFromLabels(labels: ArrayLike<number>): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0) {
      throw new MotherError('ERR_INVALID_ARGUMENT', `label ${i} is ${l}: labels must be non-negative integers`);
    }
    while (out.length <= l) out.push([]);
    out[l].push(i);
  }
  return out.filter((f) => f.length > 0);
}

export interface ClusterFamiliesOptions extends AutoFamiliesOptions {
  /**
   * Comparability group of each model (e.g. an architecture key): models of different groups
   * are never compared (their distance entries are not read, and may be NaN) and never share a
   * family. Default: all models in one group.
   */
  groups?: ArrayLike<string | number>;
  /**
   * Fixed number of families (scipy maxclust cut). Only allowed with a single group;
   * otherwise the number is chosen per group by autoFamilies.
   */
  k?: number;
}

export interface FamilyClustering {
  /** Family label of each model, 0-based, numbered by smallest member. */
  labels: number[];
  /** Members of each family, in index order. */
  families: number[][];
  /** Per comparability group (in order of first member): members and Ward linkage. */
  groups: { key: string | number; members: number[]; linkage: Linkage; cut: FamilyCut | null }[];
}

/**
 * Clusters models into families from a full distance matrix: Ward linkage within each
 * comparability group, then a cut (fixed k for one group, else autoFamilies per group).
 */
export function clusterFamilies(D: SquareMatrix, opts: ClusterFamiliesOptions = {}): FamilyClustering {
  const flat = toFlatSquare(D, 'distance matrix');
  if (flat.n < 1) throw new MotherError('ERR_INVALID_ARGUMENT', 'distance matrix is empty');
  return clusterGroups(flat.n, opts, (members) => condensedFromFlat(flat, members));
}

/**
 * clusterFamilies from one distance per unordered pair (the condensed order of pairIndex, as
 * pairwise results and scipy's pdist give them). Pairs of different groups are not read.
 */
export function clusterFamiliesOfPairs(condensed: ArrayLike<number>, n: number, opts: ClusterFamiliesOptions = {}): FamilyClustering {
  checkCondensedLength(condensed, n);
  return clusterGroups(n, opts, (members) => {
    const out = new Float64Array(pairCount(members.length));
    let k = 0;
    for (let a = 0; a < members.length; a++)
      for (let b = a + 1; b < members.length; b++) {
        const x = condensed[pairIndex(n, members[a], members[b])];
        if (Number.isNaN(x)) throw new MotherError('ERR_INVALID_ARGUMENT', `distance of pair (${members[a]}, ${members[b]}) is NaN`);
        out[k++] = x;
      }
    return out;
  });
}

/** Ward within each comparability group, then the cut; condensedOf gives a group's distances. */
function clusterGroups(n: number, opts: ClusterFamiliesOptions, condensedOf: (members: number[]) => Float64Array): FamilyClustering {
  const groupKeys = opts.groups;
  if (groupKeys !== undefined && groupKeys.length !== n) {
    throw new MotherError('ERR_INVALID_ARGUMENT',
      `groups has ${groupKeys.length} entries but the distance matrix has ${n} rows`);
  }
  const byKey = new Map<string | number, number[]>();
  for (let i = 0; i < n; i++) {
    const key = groupKeys === undefined ? 0 : groupKeys[i];
    if (typeof key !== 'string' && typeof key !== 'number') {
      throw new MotherError('ERR_INVALID_ARGUMENT', `group of model ${i} must be a string or number`);
    }
    let list = byKey.get(key);
    if (!list) { list = []; byKey.set(key, list); }
    list.push(i);
  }
  if (opts.k !== undefined && byKey.size > 1) {
    throw new MotherError('ERR_INVALID_ARGUMENT',
      'a fixed number of families (k) cannot be combined with several comparability groups');
  }
  const keys = new Int32Array(n);
  const groups: FamilyClustering['groups'] = [];
  let offset = 0;
  for (const [key, members] of byKey) {
    const linkage = wardLinkage(condensedOf(members), members.length);
    let labels: number[];
    let cut: FamilyCut | null = null;
    if (opts.k !== undefined) {
      labels = cutTree(linkage, opts.k);
    } else {
      cut = autoFamilies(linkage, opts);
      labels = cut.labels;
    }
    let max = 0;
    for (let a = 0; a < members.length; a++) {
      keys[members[a]] = offset + labels[a];
      if (labels[a] + 1 > max) max = labels[a] + 1;
    }
    offset += max;
    groups.push({ key, members, linkage, cut });
  }
  const labels = relabel(keys);
  return { labels, families: familiesFromLabels(labels), groups };
}

// ---- families from the relatedness test ---------------------------------------------------------

/** The families of related pairs. */
export interface RelatedFamilies {
  /** Family label of each model, 0-based, numbered by smallest member. */
  labels: number[];
  /** Members of each family, in index order (singletons included). */
  families: number[][];
  /** Comparability groups: connected components of the comparable pairs (members in index order). */
  groups: number[][];
  /** Sets of exact copies (two or more models whose every compared tensor is identical), in index order. */
  duplicates: number[][];
}

/**
 * Families as the connected components of the related pairs (no number of families, no
 * threshold on distances): a chain of any length stays one family as long as each link is
 * related, independent runs are never joined unless some pair between them is related, and
 * exact copies join their original like any relative. `comparable(p)`, `related(p)` and
 * `identical(p)` are read for every pair p (pairIndex order); a related pair must be
 * comparable. Models comparable with no other model are their own group and family.
 */
export function relatedFamilies(
  n: number,
  comparable: (p: number) => boolean,
  related: (p: number) => boolean,
  identical: (p: number) => boolean = () => false,
): RelatedFamilies {
  if (!Number.isInteger(n) || n < 0) throw new MotherError('ERR_INVALID_ARGUMENT', `number of models must be a non-negative integer, got ${n}`);
  const fam = new UnionFind(n);
  const grp = new UnionFind(n);
  const dup = new UnionFind(n);
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const p = pairIndex(n, i, j);
      const c = comparable(p);
      if (c) grp.union(i, j);
      if (related(p)) {
        if (!c) throw new MotherError('ERR_INVALID_ARGUMENT', `pair (${i}, ${j}) is related but not comparable`);
        fam.union(i, j);
      }
      if (c && identical(p)) dup.union(i, j);
    }
  const labels = fam.labels(n);
  return { labels, families: familiesFromLabels(labels), groups: grp.sets(n), duplicates: dup.sets(n).filter((s) => s.length > 1) };
}

/**
 * The weakest link that holds a family together: among the pairs of `members` that `link`
 * accepts, the maximum spanning tree by `strength` (Kruskal), and its weakest edge, i.e. the
 * largest s such that the family stays connected through links of strength >= s. Returns
 * null for a single model or when the accepted links do not connect the members.
 */
export function weakestLink(
  members: readonly number[],
  strength: (i: number, j: number) => number,
  link: (i: number, j: number) => boolean,
): { i: number; j: number; strength: number } | null {
  const m = members.length;
  if (m < 2) return null;
  const edges: { a: number; b: number; s: number }[] = [];
  for (let a = 0; a < m; a++)
    for (let b = a + 1; b < m; b++) if (link(members[a], members[b])) edges.push({ a, b, s: strength(members[a], members[b]) });
  edges.sort((x, y) => y.s - x.s || x.a - y.a || x.b - y.b);
  const uf = new UnionFind(m);
  let joined = 0;
  let weakest: { a: number; b: number; s: number } | null = null;
  for (const e of edges) {
    if (uf.find(e.a) === uf.find(e.b)) continue;
    uf.union(e.a, e.b);
    weakest = e;
    if (++joined === m - 1) break;
  }
  if (joined < m - 1 || weakest === null) return null;
  return { i: members[weakest.a], j: members[weakest.b], strength: weakest.s };
}
