// Bootstrap support of tree edges (Felsenstein 1985, as phylogenetics reports it): the data are
// resampled by their independent units, here the layers (tensors) of the models, the tree is
// recovered again from each replicate, and an edge's support is the fraction of replicates that
// have it. The caller rebuilds the tree from layer weights (how many times each layer was drawn);
// this module draws the weights and counts.
import { MotherError } from '../core/errors';

/** Replicates per family (the support of an edge is a multiple of 1 / BOOTSTRAP_REPLICATES). */
export const BOOTSTRAP_REPLICATES = 100;

/** mulberry32: a small deterministic PRNG (uniform in [0, 1)). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit FNV-1a hash of a string (seeds from model ids: the same set gives the same supports). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Support of every directed edge p -> c among `n` nodes: support[p * n + c] = the fraction of
 * `replicates` trees (each from `tree(weights)`, weights[l] = how many times layer l was drawn
 * in `layers` draws with replacement) whose parent of c is p. A replicate whose tree is null
 * (nothing to recover from its draw) counts against every edge.
 */
export function bootstrapSupport(opts: {
  n: number;
  layers: number;
  seed: number;
  replicates?: number;
  tree: (weights: Float64Array) => readonly number[] | null;
}): Float64Array {
  const { n, layers, seed } = opts;
  const replicates = opts.replicates ?? BOOTSTRAP_REPLICATES;
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(layers) || layers < 0 || !Number.isInteger(replicates) || replicates < 1) {
    throw new MotherError('ERR_INVALID_ARGUMENT', `bootstrap: n, layers and replicates must be non-negative integers (replicates >= 1), got ${n}, ${layers}, ${replicates}`);
  }
  const count = new Float64Array(n * n);
  const rand = prng(seed);
  const w = new Float64Array(layers);
  for (let r = 0; r < replicates; r++) {
    w.fill(0);
    for (let d = 0; d < layers; d++) w[Math.min(layers - 1, Math.floor(rand() * layers))] += 1;
    const parent = opts.tree(w);
    if (!parent) continue;
    if (parent.length !== n) throw new MotherError('ERR_INTERNAL', `bootstrap: a replicate tree of ${parent.length} nodes for ${n}`);
    parent.forEach((p, c) => {
      if (p >= 0) count[p * n + c] += 1;
    });
  }
  for (let i = 0; i < count.length; i++) count[i] /= replicates;
  return count;
}
