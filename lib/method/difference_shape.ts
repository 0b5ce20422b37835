// Stage 5 (graph), before the tree: parents and siblings told apart by the shape of their
// difference, where the distances cannot.
//
// Children fine-tuned from one parent on related data share part of their updates, so two such
// siblings end up nearer each other than one of them is to the parent (a `code` and a
// `code_ext` fine-tune of one base), and the nearest-neighbour tree hangs one sibling under the
// other. The angle of the triangle does not separate the two cases (chains of fine-tunes that
// partly undo their parent's update have the same acute angles: benchmarks/RESULTS.md). The
// distribution of the difference does: a parent and its child differ by one training run, whose
// accumulated update is spread evenly over the elements (excess kurtosis near 0); two siblings
// differ by two runs whose shared part cancels, and what is left is concentrated in fewer
// elements (heavy tails). Measured on the Llama families of the medium zoos (seeds 1 and 2): the
// median over the square layers of the difference's excess kurtosis is below that of the nearer
// sibling (or cousin) for the true parent in 24 of 24 cases where the sibling is nearer, by 0.21
// to 0.43. It holds for adaptive optimisers only: on the medium zoo of seed 0, the tree edges of
// Adam fine-tunes (ViT and Llama) have K from -0.52 to +0.22, those of SGD fine-tunes +1.47 to
// +3.64 (above their non-edges), continued pre-training +0.40 to +0.59, merged LoRAs +0.42 to
// +1.59 (a low-rank difference is heavy-tailed to its own parent). Hence a window, a margin, the
// Gaussian gate DIFF_GAUSSIAN, and low-rank (adapter-like) pairs left out. In families without
// a token embedding (the ViTs) K scatters by about +-0.2 around 0 between one-run pairs: with the
// language models' margin the rule fixed the three fan edges of the seed-0 zoo but broke four
// ft_adamw edges of a seed-2 ViT split; with DIFF_MARGIN_OTHER it keeps the first and not the
// second (benchmarks/RESULTS.md).
//
// The rule, on the family's distances before the tree: two models a and b are two runs apart
// (siblings, or a grandparent and its grandchild) when a third model y, inside the window of a
// or of b (the models within DIFF_WINDOW x its nearest RMS distance), is one run from both: its
// difference kurtosis to each is near-Gaussian (at most DIFF_GAUSSIAN) and below K(a, b) by more
// than DIFF_MARGIN. Such an edge costs DIFF_WINDOW times its distance in the tree (both
// directions; the distances reported are not changed): a nearer sibling can no longer win
// against the parent the two share. A model's own child is one run from it but two from its
// parent, so it never marks the edge to the parent.
//
// After the tree (reparentByShape, language models only): with the direction set by the clock,
// each child takes the member one run from it (the lowest K within the window, no descendant of
// its own) when that K is clearly below its tree parent's (a margin and three standard errors of
// the estimates), unless the identical embedding rows say otherwise.
import { pairIndex } from './matrix';

/** Distances within this factor of a model's nearest do not decide its parent alone. */
export const DIFF_WINDOW = 1.4;
/** How far below K(a, b) the third member's K to each of a and b must be (language models). */
export const DIFF_MARGIN = 0.2;
/** The same for families without a token embedding (ViTs, other networks): their K scatter by
 *  about +-0.2 around 0 between one-run pairs, so only a wider gap counts. */
export const DIFF_MARGIN_OTHER = 0.3;
/** The rule reads a window only when its lowest difference kurtosis is at most this: the
 *  near-Gaussian difference of one run of an adaptive optimiser. SGD's updates follow the
 *  gradient's heavy tails, and continued pre-training rewrites everything: their differences are
 *  heavy-tailed between every two models, and their shapes tell parents from siblings nothing. */
export const DIFF_GAUSSIAN = 0.3;

/** The per-tensor moments of the differences (lib/io/diff_moments.ts): count, m2, m4 per pair. */
export interface DiffMomentsLike {
  count: ArrayLike<number>;
  m2: ArrayLike<number>;
  m4: ArrayLike<number>;
  nonFinite: ArrayLike<number>;
}

/**
 * Per pair of the n models (condensed, pairIndex order): the median over the tensors of the
 * excess kurtosis of the difference, n m4 / m2^2 - 3 (tensors where the pair differs nowhere, or
 * holds a NaN or an infinity, left out; NaN where none is left).
 */
export function differenceKurtosis(tensors: readonly (DiffMomentsLike | null)[], n: number): Float64Array {
  const P = (n * (n - 1)) / 2;
  const out = new Float64Array(P).fill(NaN);
  let q = 0;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++, q++) {
      const ks: number[] = [];
      for (const t of tensors) {
        if (!t) continue;
        const c = t.count[q], m2 = t.m2[q], m4 = t.m4[q];
        if (!(c >= 4) || !(m2 > 0) || t.nonFinite[q] > 0) continue;
        const k = (c * m4) / (m2 * m2) - 3;
        if (Number.isFinite(k)) ks.push(k);
      }
      if (!ks.length) continue;
      ks.sort((a, b) => a - b);
      const h = ks.length >> 1;
      out[pairIndex(n, i, j)] = ks.length % 2 ? ks[h] : (ks[h - 1] + ks[h]) / 2;
    }
  return out;
}

/**
 * Per pair (condensed, as differenceKurtosis): the standard error of that median K under a
 * Gaussian difference, sqrt(pi / 2) * sqrt(24 / n) / sqrt(T), n the median element count and T
 * the number of tensors it is the median of (the median of T estimates, each of standard error
 * sqrt(24 / n)); NaN where K is. Small tensors give noisy K: a 16 x 16 layer alone, 0.38.
 */
export function differenceKurtosisError(tensors: readonly (DiffMomentsLike | null)[], n: number): Float64Array {
  const P = (n * (n - 1)) / 2;
  const out = new Float64Array(P).fill(NaN);
  let q = 0;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++, q++) {
      const counts: number[] = [];
      for (const t of tensors) {
        if (!t) continue;
        const c = t.count[q], m2 = t.m2[q], m4 = t.m4[q];
        if (!(c >= 4) || !(m2 > 0) || t.nonFinite[q] > 0) continue;
        if (Number.isFinite((c * m4) / (m2 * m2))) counts.push(c);
      }
      if (!counts.length) continue;
      counts.sort((a, b) => a - b);
      const h = counts.length >> 1;
      const med = counts.length % 2 ? counts[h] : (counts[h - 1] + counts[h]) / 2;
      out[pairIndex(n, i, j)] = (Math.sqrt(Math.PI / 2) * Math.sqrt(24 / med)) / Math.sqrt(counts.length);
    }
  return out;
}

/**
 * The factor each edge's distance is multiplied by in the tree (c x c, row-major, symmetric; 1 on
 * the diagonal): DIFF_WINDOW for a pair (a, b) told apart as two runs from a common neighbour,
 * else 1: some y in the window of a or of b (the models within `window` x its nearest distance)
 * has a difference kurtosis of at most `gaussian` to both and below K(a, b) - `margin` to both.
 * D and K are c x c row-major, symmetric (distance and difference kurtosis); a pair with a
 * non-finite K is never marked and never serves as y's evidence.
 */
export function siblingPenalty(D: ArrayLike<number>, K: ArrayLike<number>, c: number, window = DIFF_WINDOW, margin = DIFF_MARGIN, gaussian = DIFF_GAUSSIAN): Float64Array {
  const near = new Float64Array(c).fill(Infinity);
  for (let b = 0; b < c; b++) for (let x = 0; x < c; x++) if (x !== b && Number.isFinite(D[x * c + b])) near[b] = Math.min(near[b], D[x * c + b]);
  const inWindow = (x: number, b: number) => x !== b && D[x * c + b] <= window * near[b];
  const out = new Float64Array(c * c).fill(1);
  for (let a = 0; a < c; a++)
    for (let b = a + 1; b < c; b++) {
      const k = K[a * c + b];
      if (!Number.isFinite(k)) continue;
      for (let y = 0; y < c; y++) {
        if (y === a || y === b || !(inWindow(y, a) || inWindow(y, b))) continue;
        const ka = K[y * c + a], kb = K[y * c + b];
        if (!(ka <= gaussian && kb <= gaussian && ka < k - margin && kb < k - margin)) continue;
        out[a * c + b] = out[b * c + a] = window;
        break;
      }
    }
  return out;
}

/** How much lower the difference kurtosis to another candidate must be than to the tree's parent. */
export const REPARENT_MARGIN = 0.1;
/** ... and by how many standard errors of the two K estimates (differenceKurtosisError). */
export const ERROR_Z = 3;

export interface ShapeMove {
  child: number;
  from: number;
  to: number;
  /** K(child, from) and K(child, to). */
  kFrom: number;
  kTo: number;
}

/**
 * Parents by the shape of the difference, on a directed tree (language models). A child and its
 * parent differ by one run of an adaptive optimiser: their difference is near-Gaussian, and a
 * sibling, cousin or grandparent, two or more runs away, gives a heavier-tailed one, however near
 * it lies. Top-down (by depth), each child v looks at the members that are not its descendants
 * and are within `window` x the nearest of them in RMS distance; the one with the lowest K(., v)
 * becomes v's parent when that K is at most `gaussian` and below K(parent, v) by more than
 * max(`margin`, ERROR_Z x the standard error of the gap, from `error`: differenceKurtosisError)
 * (or the parent's K is undefined); forbidden edges (`forbidden[u * c + v]` nonzero: the
 * vocabulary's) are never taken, nor, with `rows` (the identical embedding rows,
 * lib/method/embedding_rows.ts), a member that differs from v in more rows than the parent by
 * more than their tolerance: the rows are exact where K is a statistic. Rounds repeat until nothing moves (at most c). rms and K
 * are c x c row-major and symmetric; a non-finite K never wins. The tree stays a tree: v moves
 * under a member that is not its descendant.
 */
export function reparentByShape(
  parent: readonly number[], rms: ArrayLike<number>, K: ArrayLike<number>, c: number,
  opts: { window?: number; margin?: number; gaussian?: number; forbidden?: ArrayLike<number>; error?: ArrayLike<number>; rows?: { differing: ArrayLike<number>; tolerance: number } } = {},
): { parent: number[]; moved: ShapeMove[] } {
  const window = opts.window ?? DIFF_WINDOW, margin = opts.margin ?? REPARENT_MARGIN, gaussian = opts.gaussian ?? DIFF_GAUSSIAN;
  const out = parent.slice();
  const moved: ShapeMove[] = [];
  const depth = (v: number) => { let d = 0; for (let u = out[v]; u >= 0 && d <= c; u = out[u]) d++; return d; };
  const below = (v: number) => {
    const s = new Uint8Array(c);
    s[v] = 1;
    for (let grew = true; grew; ) {
      grew = false;
      for (let x = 0; x < c; x++) if (!s[x] && out[x] >= 0 && s[out[x]]) { s[x] = 1; grew = true; }
    }
    return s;
  };
  for (let round = 0; round < c; round++) {
    let changed = false;
    const order = Array.from({ length: c }, (_, v) => v).sort((x, y) => depth(x) - depth(y) || x - y);
    for (const v of order) {
      const p = out[v];
      if (p < 0) continue;
      const mine = below(v);
      let near = Infinity;
      for (let u = 0; u < c; u++) if (!mine[u] && Number.isFinite(rms[u * c + v])) near = Math.min(near, rms[u * c + v]);
      let best = -1;
      for (let u = 0; u < c; u++) {
        if (mine[u] || !(rms[u * c + v] <= window * near) || !Number.isFinite(K[u * c + v])) continue;
        if (opts.forbidden && opts.forbidden[u * c + v]) continue;
        // the identical rows are exact evidence: no candidate that differs from v in more rows
        if (opts.rows && opts.rows.differing[u * c + v] > opts.rows.differing[p * c + v] + opts.rows.tolerance) continue;
        if (best < 0 || K[u * c + v] < K[best * c + v]) best = u;
      }
      if (best < 0 || best === p) continue;
      const kTo = K[best * c + v], kFrom = K[p * c + v];
      if (!(kTo <= gaussian)) continue;
      // the gap must pass the margin and three standard errors of the two estimates
      const se = opts.error ? Math.hypot(opts.error[p * c + v], opts.error[best * c + v]) : 0;
      if (Number.isFinite(kFrom) && !(kFrom - kTo > Math.max(margin, ERROR_Z * (Number.isFinite(se) ? se : Infinity)))) continue;
      out[v] = best;
      moved.push({ child: v, from: p, to: best, kFrom, kTo });
      changed = true;
    }
    if (!changed) break;
  }
  return { parent: out, moved };
}
