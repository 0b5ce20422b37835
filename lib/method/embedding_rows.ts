// Tree evidence from identical token-embedding rows (stage 5, inside a family). A fine-tune
// moves only the embedding rows of the tokens its data uses; with weight decay it shrinks the
// others by (1 - lr wd) per step, below a 16-bit dtype's resolution over short runs. So two
// relatives hold bit-identical rows (compared at the coarser of their dtypes) for every token
// left unused along the path between them, and the rows that differ grow along every path of
// the tree: the rows touched on a path a - b - c include those touched on a - b. The count
// resists what misleads the distances: two fine-tunes on the same data drift the same way and
// end up near each other across branches, but each keeps the rows its own history left alone.
// Measured on the medium zoo's Llama families (benchmarks/RESULTS.md, Direction): a fine-tune
// shares 171 identical rows with its parent and 146 with an uncle trained on the same data that
// RMS puts nearer.
//
// Use: in a family whose members all have a token embedding of one row length and whose counts
// vary between pairs (an embedding that every fine-tune rewrites, e.g. tied to the output head,
// or a continued pre-training that uses every token, gives 0 everywhere and no evidence), the
// distance of the undirected tree and of the arborescence becomes the rows that differ plus
// the family's distance scaled to 2 % of the rows compared at its largest: counts far apart
// decide, counts within a few rows (a touched row whose changes round away in a 16-bit dtype
// looks untouched) are left to the distance.
import { minimumSpanningTree } from './clocks';

/** The token embedding tensors mother looks for (Hugging Face names; GGUF's token_embd is mapped to model.embed_tokens). */
export const TOKEN_EMBEDDING = /(^|\.)(embed_tokens|wte|word_embeddings|embed_in|tok_embeddings)\.weight$/;

export interface RowHashTable {
  rows: number;
  rowElems: number;
  f32: ArrayLike<number>;
  f16: ArrayLike<number>;
  bf16: ArrayLike<number>;
}

export type RowLevel = 'f32' | 'f16' | 'bf16';

/** The precision two dtypes are compared at: the coarser (F32/F64 < F16 < BF16; F16 with BF16 at BF16; any other dtype at BF16). */
export function comparisonLevel(a: string, b: string): RowLevel {
  const rank = (d: string) => (d === 'F32' || d === 'F64' ? 0 : d === 'F16' ? 1 : 2);
  const r = Math.max(rank(a), rank(b));
  return r === 0 ? 'f32' : r === 1 ? 'f16' : 'bf16';
}

/** The precision three dtypes are compared at together: the coarsest. */
export function coarsest(...dtypes: string[]): RowLevel {
  let level: RowLevel = 'f32';
  for (const d of dtypes) {
    const l = comparisonLevel(d, d);
    if (l === 'bf16' || (l === 'f16' && level === 'f32')) level = l;
    if (l === 'f16' && level === 'f16') level = 'f16';
  }
  // F16 with BF16: BF16
  return dtypes.some((d) => comparisonLevel(d, d) === 'bf16') ? 'bf16' : level;
}

/** Rows compared (the shared leading rows of a resized vocabulary) and how many are identical; null when the rows have different lengths. */
export function identicalRows(a: RowHashTable, b: RowHashTable, level: RowLevel): { compared: number; identical: number } | null {
  if (a.rowElems !== b.rowElems) return null;
  const compared = Math.min(a.rows, b.rows);
  const ha = a[level], hb = b[level];
  let identical = 0;
  for (let r = 0; r < compared; r++) if (ha[r] === hb[r]) identical++;
  return { compared, identical };
}

/** Above this fraction of rows that break the nesting along the tree, the rows are no evidence. */
export const ROW_NESTING_TOLERANCE = 0.01;

export interface DifferingRows {
  /** per pair (m x m, row-major): the rows that are not identical, counted against `compared` */
  differing: Float64Array;
  /** the most rows any pair compares (a resized vocabulary's extra rows do not count against it) */
  compared: number;
  min: number;
  max: number;
  /** of the rows identical between two members, the fraction not identical between each of them and a member on the tree path between them */
  violations: number;
  /** the rows the family's distance weighs as (rowDistance): ROW_TOLERANCE_FRACTION of `compared`, at least 1 */
  tolerance: number;
}

/**
 * The family's evidence, or null when it tells nothing: a member without rows, row lengths that
 * differ, counts that do not vary, or rows that are not nested along the tree. A row left
 * untouched between two members is untouched all along the path between them, so a row
 * identical between x and z is identical between x and every y on the tree path and between y
 * and z; on the minimum spanning tree of the differing counts at most ROW_NESTING_TOLERANCE of
 * them may break that (hash coincidences, or rows that weight decay moved to the same value:
 * then the identity is no history, and the rows are not used), and some must be checked (two
 * members apart on the tree sharing a row: else the counts join neighbours only and tell no
 * tree; measured: continued pre-training chains, where one pair shares 127-131 rows and no other).
 */
export function differingRows(tables: readonly (RowHashTable | null)[], dtypes: readonly string[]): DifferingRows | null {
  const m = tables.length;
  if (m < 3 || tables.some((t) => t === null)) return null;
  const t = tables as RowHashTable[];
  const same = new Float64Array(m * m);
  let compared = 0, minSame = Infinity, maxSame = -Infinity;
  for (let x = 0; x < m; x++)
    for (let y = x + 1; y < m; y++) {
      const c = identicalRows(t[x], t[y], comparisonLevel(dtypes[x], dtypes[y]));
      if (c === null || c.compared === 0) return null;
      same[x * m + y] = same[y * m + x] = c.identical;
      compared = Math.max(compared, c.compared);
      minSame = Math.min(minSame, c.identical);
      maxSame = Math.max(maxSame, c.identical);
    }
  if (!(maxSame > minSame) || maxSame === 0) return null;
  const differing = same.map((v, q) => (Math.floor(q / m) === q % m ? 0 : compared - v));
  // nesting along the tree
  const parent = minimumSpanningTree(differing, m);
  const adj: number[][] = Array.from({ length: m }, () => []);
  parent.forEach((p, v) => { if (p >= 0) { adj[p].push(v); adj[v].push(p); } });
  const pathFrom = (x: number): Int32Array => {
    const prev = new Int32Array(m).fill(-2);
    prev[x] = -1;
    const queue = [x];
    while (queue.length) { const u = queue.shift()!; for (const w of adj[u]) if (prev[w] === -2) { prev[w] = u; queue.push(w); } }
    return prev;
  };
  let checked = 0, broken = 0;
  for (let x = 0; x < m; x++) {
    const prev = pathFrom(x);
    for (let z = x + 1; z < m; z++) {
      for (let y = prev[z]; y !== x && y >= 0; y = prev[y]) {
        const level = coarsest(dtypes[x], dtypes[y], dtypes[z]);
        const hx = t[x][level], hy = t[y][level], hz = t[z][level];
        const rows = Math.min(t[x].rows, t[y].rows, t[z].rows);
        for (let r = 0; r < rows; r++) {
          if (hx[r] !== hz[r]) continue;
          checked++;
          if (hx[r] !== hy[r]) broken++;
        }
      }
    }
  }
  const violations = checked > 0 ? broken / checked : 0;
  // no two members apart on the tree share a row: nothing is nested, the counts tell no tree
  if (checked === 0 || violations > ROW_NESTING_TOLERANCE) return null;
  return { differing, compared, min: compared - maxSame, max: compared - minSame, violations, tolerance: Math.max(1, ROW_TOLERANCE_FRACTION * compared) };
}

/** A few rows of the count are within its noise (a touched row whose changes round away in a
 *  16-bit dtype looks untouched): the distance weighs as much as this fraction of the rows compared. */
export const ROW_TOLERANCE_FRACTION = 0.02;

/** The combined distance: rows that differ, plus the distance d scaled to `tolerance` rows at the
 *  family's largest distance dMax (counts within a few rows of each other: the distance decides). */
export function rowDistance(differing: number, d: number, dMax: number, tolerance: number): number {
  return differing + (dMax > 0 && Number.isFinite(d) ? (tolerance * d) / dMax : 0);
}
