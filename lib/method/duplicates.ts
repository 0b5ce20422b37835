// Which member of a set of identical models is the source of the others. Identical values say
// nothing about it; the files do: a copy is written after its source, so the model whose
// weight files were last modified earliest is taken as the source when it is older than every
// other member by DUPLICATE_WRITTEN_GAP_MS (filesystems keep mtimes to 1-2 s, and a copy made
// with `cp -p`, `rsync -a` or a git checkout keeps or resets them all alike). Otherwise (times
// within the gap, or unknown) the first member in input order. A weak cue, reported as such:
// `duplicates[].sourceBy` in the graph.

/** Two modification times closer than this are a tie. */
export const DUPLICATE_WRITTEN_GAP_MS = 2000;

export interface DuplicateSource {
  /** The member taken as the source (an element of the set). */
  source: number;
  /** 'written': its weight files are older than every other member's; 'order': first in input order. */
  by: 'written' | 'order';
}

/**
 * The source of a set of identical models (indices in input order, ascending), from the last
 * modification time of each model's weight files in ms (null: unknown).
 */
export function duplicateSource(members: readonly number[], written: readonly (number | null)[]): DuplicateSource {
  const sorted = [...members].sort((a, b) => a - b);
  const times = sorted.map((i) => written[i]);
  if (times.every((t): t is number => t !== null && Number.isFinite(t))) {
    const oldest = Math.min(...times);
    const within = sorted.filter((_, q) => times[q] - oldest < DUPLICATE_WRITTEN_GAP_MS);
    if (within.length === 1) return { source: within[0], by: 'written' };
  }
  return { source: sorted[0], by: 'order' };
}
