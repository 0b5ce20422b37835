// Helpers of stages 3 to 5 of the pipeline (the pairwise pass and the method), each written
// once: square matrices (validated, flat row-major), the one order of unordered pairs (the
// upper triangle, row-major, as the addon returns pairwise results and scipy's condensed
// vectors hold them), a union-find, the layer filter (RegExp or predicate) and the square 2-D
// shape test. Depends on core/ only, so that io/ and method/ can both use it.
import { MotherError } from '../core/errors';

/**
 * A square matrix: an array of rows (number[][], Float64Array[], ...) or a flat row-major
 * buffer with its order n.
 */
export type SquareMatrix =
  | readonly ArrayLike<number>[]
  | { readonly n: number; readonly data: ArrayLike<number> };

/** A validated square matrix, copied to a flat row-major Float64Array. */
export interface FlatSquare {
  readonly n: number;
  readonly data: Float64Array;
}

/**
 * Copies a SquareMatrix into a flat row-major Float64Array, checking that it is square.
 * Values are not checked (callers have their own rules for NaN and infinities).
 */
export function toFlatSquare(m: SquareMatrix, what = 'matrix'): FlatSquare {
  if (m === null || typeof m !== 'object') {
    throw new MotherError('ERR_INVALID_ARGUMENT', `${what} must be an array of rows or { n, data }`);
  }
  if (Array.isArray(m)) {
    const rows = m as readonly ArrayLike<number>[];
    const n = rows.length;
    const data = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      const row = rows[i];
      if (row === null || typeof row !== 'object' || typeof row.length !== 'number') {
        throw new MotherError('ERR_INVALID_ARGUMENT', `${what}: row ${i} is not an array`);
      }
      if (row.length !== n) {
        throw new MotherError('ERR_INVALID_ARGUMENT',
          `${what} must be square: row ${i} has ${row.length} entries, expected ${n}`);
      }
      for (let j = 0; j < n; j++) data[i * n + j] = row[j];
    }
    return { n, data };
  }
  const { n, data } = m as { n: number; data: ArrayLike<number> };
  if (!Number.isInteger(n) || n < 0) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `${what}: n must be a non-negative integer, got ${n}`);
  }
  if (data === null || typeof data !== 'object' || data.length !== n * n) {
    throw new MotherError('ERR_INVALID_ARGUMENT',
      `${what} must be square: expected ${n * n} entries for n = ${n}, got ${data?.length}`);
  }
  return { n, data: Float64Array.from(data) };
}

// ---- unordered pairs --------------------------------------------------------------------------

/** Number of unordered pairs of n items. */
export function pairCount(n: number): number {
  return (n * (n - 1)) / 2;
}

/** pairIndex(n, i, j) = pairRowOffset(n, i) + j for i < j (row i of the upper triangle). */
export function pairRowOffset(n: number, i: number): number {
  return n * i - (i * (i + 1)) / 2 - i - 1;
}

/**
 * Index of the unordered pair {i, j}, i != j, among the n (n - 1) / 2 pairs listed as the
 * upper triangle row by row: (0,1), (0,2), ..., (0,n-1), (1,2), ... This is the order of the
 * addon's pairwise results and of scipy's condensed distance vectors.
 */
export function pairIndex(n: number, i: number, j: number): number {
  return i < j ? pairRowOffset(n, i) + j : pairRowOffset(n, j) + i;
}

/**
 * The n x n row-major matrix of per-pair values: entry [i][j] (i < j) is upper(i, j), entry
 * [j][i] is lower(i, j) (default: the same value), the diagonal is `diagonal`.
 */
export function squareFromPairs(
  n: number,
  diagonal: number,
  upper: (i: number, j: number) => number,
  lower: (i: number, j: number) => number = upper,
): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    out[i * n + i] = diagonal;
    for (let j = i + 1; j < n; j++) {
      out[i * n + j] = upper(i, j);
      out[j * n + i] = lower(i, j);
    }
  }
  return out;
}

/** The values of an n x n row-major matrix, one per pair: [i][j] for i < j, or [j][i] with `lower`. */
export function pairsFromSquare(data: ArrayLike<number>, n: number, lower = false): Float64Array {
  const out = new Float64Array(pairCount(n));
  let p = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) out[p++] = lower ? data[j * n + i] : data[i * n + j];
  return out;
}

// ---- union-find ---------------------------------------------------------------------------------

/**
 * Renumbers arbitrary keys 0, 1, ... in order of first appearance (so labels of sets are
 * numbered by their smallest member).
 */
export function relabel(keys: ArrayLike<number>): number[] {
  const map = new Map<number, number>();
  const out = new Array<number>(keys.length);
  for (let i = 0; i < keys.length; i++) {
    let l = map.get(keys[i]);
    if (l === undefined) { l = map.size; map.set(keys[i], l); }
    out[i] = l;
  }
  return out;
}

/** Disjoint sets over 0..size-1 (path compression). */
export class UnionFind {
  private readonly parent: Int32Array;

  constructor(size: number) {
    this.parent = new Int32Array(size);
    for (let i = 0; i < size; i++) this.parent[i] = i;
  }

  /** The representative of v's set. */
  find(v: number): number {
    const parent = this.parent;
    let root = v;
    while (parent[root] !== root) root = parent[root];
    while (parent[v] !== root) { const p = parent[v]; parent[v] = root; v = p; }
    return root;
  }

  /**
   * Makes the representative `root` a child of `to`, which then represents both sets (scipy's
   * relabelling of a linkage, where each merge creates a new cluster id).
   */
  attach(root: number, to: number): void {
    this.parent[root] = to;
  }

  /** Joins the sets of a and b (the smaller representative represents the union). */
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[ra < rb ? rb : ra] = ra < rb ? ra : rb;
  }

  /** Set label of each of the first `count` elements, 0-based, numbered by smallest member. */
  labels(count = this.parent.length): number[] {
    return relabel(Array.from({ length: count }, (_, i) => this.find(i)));
  }

  /** The sets of the first `count` elements, each in index order, listed by smallest member. */
  sets(count = this.parent.length): number[][] {
    const out: number[][] = [];
    this.labels(count).forEach((l, i) => (l < out.length ? out[l].push(i) : out.push([i])));
    return out;
  }
}

// ---- tensors ----------------------------------------------------------------------------------

/** Which tensors to use: a RegExp on the name, or a predicate on (name, shape). */
export type LayerFilter = RegExp | ((name: string, shape: number[]) => boolean);

/** A tensor predicate on (name, shape). */
export type TensorPredicate = (name: string, shape: readonly number[]) => boolean;

/**
 * The predicate of a layer filter (undefined: no filter). A RegExp is tested from its start
 * on every call (lastIndex reset, so /g and /y filters match every name); a function gets a
 * copy of the shape.
 */
export function layerMatcher(filter: LayerFilter | undefined): TensorPredicate | undefined {
  if (filter === undefined) return undefined;
  if (filter instanceof RegExp) {
    return (name) => {
      filter.lastIndex = 0;
      return filter.test(name);
    };
  }
  return (name, shape) => filter(name, [...shape]);
}

/** A square 2-D shape with at least one row (the tensors that get a rank and a kurtosis). */
export function isSquare(shape: readonly number[]): boolean {
  return Array.isArray(shape) && shape.length === 2 && shape[0] === shape[1] && shape[0] > 0;
}
