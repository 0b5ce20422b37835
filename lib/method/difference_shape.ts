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
