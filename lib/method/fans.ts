// Stage 5 (graph), after the tree: fans of siblings told from chains.
//
// Children fine-tuned from one parent with one recipe share a component u of their updates
// (A - P = u + e1, B - P = u + e2), so they lie nearer each other (|e1 - e2|) than either lies to
// P (|u + e|): the minimum arborescence hangs the fan off its first sibling, a chain P -> A -> B
// with B beside A. Two facts tell the fan from a chain, and the rule asks for both:
//
// 1. The geometry. ratio = (S[P][B] - S[P][A]) / S[A][B], S the squared distances. In a chain with
//    orthogonal increments S[P][B] = S[P][A] + S[A][B]: ratio 1. In the fan ratio =
//    (|e2|^2 - |e1|^2) / |e1 - e2|^2, about 0 for updates of one size, whatever u is. Alone it is
//    not enough: a chain whose second fine-tune undoes part of the first (forgetting) has the
//    fan's ratio too (two `copies` grandchildren of the seed-0 medium zoo at 0.01 and 0.11, so the
//    ratio rule alone broke as many edges as it fixed there: benchmarks/RESULTS.md).
// 2. The shape of the difference (lib/method/difference_shape.ts). A parent and its child differ
//    by one run of an adaptive optimiser, spread evenly over the elements (excess kurtosis K near
//    0); two siblings by two runs whose shared part cancels, and what is left is heavy-tailed. In
//    the fan K(P, B) is near-Gaussian and below K(A, B); in a chain, forgetting or not, B is one
//    run from A and two from P, so K(A, B) is the lower one. On the two fans of the seed-9 medium
//    zoo that became chains: K(P, B) -0.33 to -0.13, K(A, B) 0.26 to 0.50; ratio -0.07 to 0.22.
//
// B moves up to P when ratio < CHAIN_RATIO, K(P, B) <= DIFF_GAUSSIAN (SGD's and continued
// pre-training's differences are heavy-tailed between any two models: no evidence there) and
// K(A, B) - K(P, B) > max(FAN_MARGIN, ERROR_Z standard errors of the gap). Top-down, in rounds
// until nothing moves; never onto an edge the vocabulary forbids, nor to a P that differs from B
// in more identical embedding rows than A does (the rows are exact, K is a statistic).
import { DIFF_GAUSSIAN, ERROR_Z } from './difference_shape';

/** B (A's child, A under P) moves to P only when (S[P][B] - S[P][A]) / S[A][B] is below this. */
export const CHAIN_RATIO = 0.5;
/** ... and K(A, B) exceeds K(P, B) by more than this (and by ERROR_Z standard errors). */
export const FAN_MARGIN = 0.2;

export interface FanMove {
  child: number;
  from: number;
  to: number;
  ratio: number;
  /** K(from, child) and K(to, child). */
  kFrom: number;
  kTo: number;
}

/**
 * Fans vs chains on a tree (`parent[v]`, -1 for the root) of c models: S the squared distances
 * and K the difference kurtosis (c x c, row-major, symmetric); `error` the standard errors of K
 * (differenceKurtosisError), `forbidden[u * c + v]` nonzero for edges u -> v that may not be
 * taken, `rows` the identical embedding rows (lib/method/embedding_rows.ts). A non-finite K or
 * ratio never moves anything. Returns the new parents and the moves; the tree stays a tree (B
 * moves to its grandparent).
 */
export function resolveFans(
  parent: readonly number[], S: ArrayLike<number>, K: ArrayLike<number>, c: number,
  opts: { ratio?: number; margin?: number; gaussian?: number; error?: ArrayLike<number>; forbidden?: ArrayLike<number>; rows?: { differing: ArrayLike<number>; tolerance: number } } = {},
): { parent: number[]; moved: FanMove[] } {
  const maxRatio = opts.ratio ?? CHAIN_RATIO, margin = opts.margin ?? FAN_MARGIN, gaussian = opts.gaussian ?? DIFF_GAUSSIAN;
  const out = parent.slice();
  const moved: FanMove[] = [];
  const depth = (v: number) => { let d = 0; for (let u = out[v]; u >= 0 && d <= c; u = out[u]) d++; return d; };
  for (let round = 0; round < c; round++) {
    let changed = false;
    const order = Array.from({ length: c }, (_, v) => v).sort((x, y) => depth(x) - depth(y) || x - y);
    for (const b of order) {
      const a = out[b];
      if (a < 0) continue;
      const p = out[a];
      if (p < 0) continue;
      const sab = S[a * c + b];
      if (!(sab > 0)) continue;
      const ratio = (S[p * c + b] - S[p * c + a]) / sab;
      if (!(ratio < maxRatio)) continue;
      const kFrom = K[a * c + b], kTo = K[p * c + b];
      if (!Number.isFinite(kFrom) || !(kTo <= gaussian)) continue;
      const se = opts.error ? Math.hypot(opts.error[a * c + b], opts.error[p * c + b]) : 0;
      if (!(kFrom - kTo > Math.max(margin, ERROR_Z * (Number.isFinite(se) ? se : Infinity)))) continue;
      if (opts.forbidden && opts.forbidden[p * c + b]) continue;
      if (opts.rows && opts.rows.differing[p * c + b] > opts.rows.differing[a * c + b] + opts.rows.tolerance) continue;
      out[b] = p;
      moved.push({ child: b, from: a, to: p, ratio, kFrom, kTo });
      changed = true;
    }
    if (!changed) break;
  }
  return { parent: out, moved };
}
