// Direction evidence from the size of the vocabulary (stage 5, inside a family). A fine-tune may
// add tokens to its parent's vocabulary (new rows of the token embedding and of the output head:
// CodeLlama's 32016 against Llama-2's 32000, chat and pad tokens of countless fine-tunes), and
// the added rows are carried by every descendant; a fine-tune does not cut tokens away. So
// within one family the number of embedding rows never falls parent -> child: the root holds
// the smallest vocabulary, and no model with more rows is the parent of one with fewer.
//
// It is a constraint, not a clock: equal sizes say nothing. Used when the members' sizes
// differ (all of them have a token embedding): the family's root is chosen among the models
// of the smallest vocabulary, and an edge from a larger vocabulary to a smaller one is
// forbidden in the arborescence. It is what the distances and the clocks get wrong in the
// Llama families of the zoo (benchmarks/RESULTS.md, Direction): a code fine-tune lies nearer
// the code fine-tune with extended vocabulary than to their common parent, and the norm clock
// roots the family at the extended one.

export interface VocabularyOrder {
  /** Per member: may it be the family's root (its vocabulary is the smallest)? */
  admissible: boolean[];
  /** Row-major n x n: 1 where the edge i -> j would shrink the vocabulary (rows[i] > rows[j]). */
  forbidden: Uint8Array;
  min: number;
  max: number;
}

/**
 * The order the vocabulary sizes impose on a family of n members (rows[x]: the number of rows
 * of member x's token embedding, null when it has none). null when some member has none or
 * every size is the same (no evidence).
 */
export function vocabularyOrder(rows: readonly (number | null)[]): VocabularyOrder | null {
  const n = rows.length;
  if (n < 2 || rows.some((r) => r === null || !Number.isFinite(r))) return null;
  const r = rows as number[];
  const min = Math.min(...r), max = Math.max(...r);
  if (min === max) return null;
  const forbidden = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (r[i] > r[j]) forbidden[i * n + j] = 1;
  return { admissible: r.map((x) => x === min), forbidden, min, max };
}
