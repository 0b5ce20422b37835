import { Edge, edgesFromParents, maxWeightAssignment, NodeId, scoreGraph as evaluate } from '../lib/method/evaluation';
import { Rng } from './helpers/reference';
import { expectInvalid } from './helpers/errors';

// Global lookups are slow inside jest's VM context: alias them.
const { abs, floor, max, min } = Math;


/** Best total over all injective row -> column maps of the smaller side (brute force). */
function bruteAssignment(W: number[][]): number {
  const r = W.length;
  const c = W[0].length;
  let best = -Infinity;
  const usedCol = new Array<boolean>(c).fill(false);
  const usedRow = new Array<boolean>(r).fill(false);
  if (r <= c) {
    const rec = (i: number, acc: number): void => {
      if (i === r) { best = max(best, acc); return; }
      for (let j = 0; j < c; j++) {
        if (usedCol[j]) continue;
        usedCol[j] = true;
        rec(i + 1, acc + W[i][j]);
        usedCol[j] = false;
      }
    };
    rec(0, 0);
  } else {
    const rec = (j: number, acc: number): void => {
      if (j === c) { best = max(best, acc); return; }
      for (let i = 0; i < r; i++) {
        if (usedRow[i]) continue;
        usedRow[i] = true;
        rec(j + 1, acc + W[i][j]);
        usedRow[i] = false;
      }
    };
    rec(0, 0);
  }
  return best;
}

describe('maxWeightAssignment (Hungarian)', () => {
  test('matches brute force on random square and rectangular matrices', () => {
    const rng = new Rng(4);
    let cases = 0;
    for (let t = 0; t < 600; t++) {
      const r = 1 + floor(rng.next() * 6);
      const c = 1 + floor(rng.next() * 6);
      const kind = t % 3;
      const W: number[][] = [];
      for (let i = 0; i < r; i++) {
        W.push([]);
        for (let j = 0; j < c; j++) {
          W[i].push(kind === 0 ? floor(rng.next() * 4) : kind === 1 ? rng.next() * 10 - 5 : floor(rng.next() * 100) - 50);
        }
      }
      const { assignment, total } = maxWeightAssignment(W);
      const brute = bruteAssignment(W);
      expect(abs(total - brute)).toBeLessThan(1e-9);
      // A valid injective assignment whose weights add up to the total.
      expect(assignment).toHaveLength(r);
      const cols = assignment.filter((j) => j >= 0);
      expect(cols.length).toBe(min(r, c));
      expect(new Set(cols).size).toBe(cols.length);
      let sum = 0;
      assignment.forEach((j, i) => { if (j >= 0) sum += W[i][j]; });
      expect(abs(sum - total)).toBeLessThan(1e-9);
      cases++;
    }
    expect(cases).toBe(600);
  });

  test('hand case and degenerate shapes', () => {
    // The diagonal is not optimal: 3 + 3 + 2 = 8 beats 1 + 1 + 1.
    const W = [
      [1, 3, 0],
      [3, 1, 0],
      [0, 0, 2],
    ];
    expect(maxWeightAssignment(W)).toEqual({ assignment: [1, 0, 2], total: 8 });
    expect(maxWeightAssignment([])).toEqual({ assignment: [], total: 0 });
    expect(maxWeightAssignment([[], []])).toEqual({ assignment: [-1, -1], total: 0 });
    expect(maxWeightAssignment([[5], [7], [6]])).toEqual({ assignment: [-1, 0, -1], total: 7 });
    expectInvalid(() => maxWeightAssignment([[1, 2], [3]]), /2 entries/);
    expectInvalid(() => maxWeightAssignment([[1, NaN]]), /finite/);
  });

  // Its wall time is measured by `npm run bench -- method`, not here.
  test('a 120 x 120 problem beats random permutations', () => {
    const rng = new Rng(8);
    const n = 120;
    const W = Array.from({ length: n }, () => Array.from({ length: n }, () => floor(rng.next() * 1000)));
    const { assignment, total } = maxWeightAssignment(W);
    expect(new Set(assignment).size).toBe(n);
    let diag = 0;
    for (let i = 0; i < n; i++) diag += W[i][i];
    expect(total).toBeGreaterThan(diag);
  });
});

describe('evaluate', () => {
  // Two families: A -> {B, C}, B -> D; and X -> Y.
  const truth: { edges: Edge[] } = { edges: [['A', 'B'], ['A', 'C'], ['B', 'D'], ['X', 'Y']] };

  test('perfect prediction scores 1 everywhere', () => {
    const res = evaluate({ edges: truth.edges }, truth);
    expect(res).toMatchObject({
      nodes: 6, truthEdges: 4, predictedEdges: 4, correctDirected: 4, correctUndirected: 4,
      directedAccuracy: 1, undirectedAccuracy: 1, clusteringAccuracy: 1, wrongEdges: [], missingEdges: [],
    });
    expect(res.truthFamilies).toEqual([['A', 'B', 'C', 'D'], ['X', 'Y']]);
    expect(res.families.map((f) => f.root)).toEqual(['A', 'X']);
  });

  test('hand case: reversed, wrong and missing edges, per-family numbers', () => {
    const pred = { edges: [['A', 'B'], ['C', 'A'], ['C', 'D'], ['Y', 'X']] as Edge[] };
    const res = evaluate(pred, truth);
    expect(res.correctDirected).toBe(1);
    expect(res.correctUndirected).toBe(3); // A-B, A-C, X-Y
    expect(res.directedAccuracy).toBe(0.25);
    expect(res.undirectedAccuracy).toBe(0.75);
    expect(res.wrongEdges).toEqual([
      { parent: 'C', child: 'A', kind: 'reversed', truthParent: null },
      { parent: 'C', child: 'D', kind: 'wrong', truthParent: 'B' },
      { parent: 'Y', child: 'X', kind: 'reversed', truthParent: null },
    ]);
    expect(res.missingEdges).toEqual([
      { parent: 'A', child: 'C', predictedParent: null },
      { parent: 'B', child: 'D', predictedParent: 'C' },
      { parent: 'X', child: 'Y', predictedParent: null },
    ]);
    expect(res.families[0]).toMatchObject({
      root: 'A', edges: 3, correctDirected: 1, correctUndirected: 2, directedAccuracy: 1 / 3, undirectedAccuracy: 2 / 3,
      matchedPredictedFamily: 0, overlap: 4,
    });
    expect(res.families[1]).toMatchObject({ root: 'X', edges: 1, correctDirected: 0, directedAccuracy: 0, undirectedAccuracy: 1 });
    expect(res.clusteringAccuracy).toBe(1);
  });

  test('clustering accuracy uses the best one-to-one matching', () => {
    // Predicted families merge the two true families and split off D: the big predicted family
    // can match only one true family.
    const res = evaluate({ edges: [], families: [['A', 'B', 'C', 'X', 'Y'], ['D']] }, truth);
    // Best: {A,B,C,D} <-> {A,B,C,X,Y} (3) and {X,Y} <-> {D} (0): 3 / 6; or {X,Y} <-> big (2),
    // {A..D} <-> {D} (1): 3 / 6. Either way 0.5.
    expect(res.clusteringAccuracy).toBe(0.5);
    expect(res.predictedFamilies).toEqual([['A', 'B', 'C', 'X', 'Y'], ['D']]);
    expect(res.directedAccuracy).toBe(0);
    // Without families the prediction's components are used; isolated nodes are singletons.
    const comp = evaluate({ edges: [['A', 'B'], ['A', 'C'], ['B', 'D']] }, truth);
    expect(comp.predictedFamilies).toEqual([['A', 'B', 'C', 'D'], ['X'], ['Y']]);
    expect(comp.clusteringAccuracy).toBe(5 / 6);
    expect(comp.families[1]).toMatchObject({ overlap: 1 });
  });

  test('clustering accuracy equals brute force over label permutations', () => {
    const rng = new Rng(12);
    for (let t = 0; t < 200; t++) {
      const n = 2 + floor(rng.next() * 9);
      const kt = 1 + floor(rng.next() * 4);
      const kp = 1 + floor(rng.next() * 4);
      const tl = Array.from({ length: n }, () => floor(rng.next() * kt));
      const pl = Array.from({ length: n }, () => floor(rng.next() * kp));
      // Truth as stars: the first member of each label is the parent of the others.
      const first = new Map<number, number>();
      const edges: Edge[] = [];
      tl.forEach((l, i) => {
        if (!first.has(l)) first.set(l, i); else edges.push([first.get(l)!, i]);
      });
      const families: number[][] = [];
      pl.forEach((l, i) => { while (families.length <= l) families.push([]); families[l].push(i); });
      const ids = Array.from({ length: n }, (_, i) => i);
      const res = evaluate({ edges: [], families }, { edges }, ids);
      // Brute force: every injective map of used true labels to predicted labels.
      const tLabels = [...new Set(tl)];
      const pLabels = [...new Set(pl)];
      const W = tLabels.map((a) => pLabels.map((b) => tl.filter((x, i) => x === a && pl[i] === b).length));
      expect(res.clusteringAccuracy).toBeCloseTo(bruteAssignment(W) / n, 12);
    }
  });

  test('ids: isolated models, numeric ids, parent arrays', () => {
    const ids: NodeId[] = [0, 1, 2, 3, 4];
    const truthEdges = edgesFromParents([-1, 0, 0, -1, -1]);
    expect(truthEdges).toEqual([[0, 1], [0, 2]]);
    const res = evaluate({ edges: edgesFromParents([-1, 0, 1, -1, -1]) }, { edges: truthEdges }, ids);
    expect(res.nodes).toBe(5);
    expect(res.truthFamilies).toEqual([[0, 1, 2], [3], [4]]);
    expect(res.directedAccuracy).toBe(0.5);
    expect(res.families[1]).toMatchObject({ root: 3, edges: 0, directedAccuracy: null, overlap: 1 });
    expect(edgesFromParents([-1, 0], ['base', 'child'])).toEqual([['base', 'child']]);
    // No truth edges: edge accuracies are undefined (null).
    const none = evaluate({ edges: [] }, { edges: [] }, ['a', 'b']);
    expect(none.directedAccuracy).toBeNull();
    expect(none.clusteringAccuracy).toBe(1);
    // 1 and '1' are different ids.
    expectInvalid(() => evaluate({ edges: [['1', 0]] }, { edges: [] }, [0, 1]), /unknown id "1"/);
  });

  test('bad input is rejected', () => {
    expectInvalid(() => evaluate({ edges: [['A', 'A']] }, truth), /self-loop/);
    expectInvalid(() => evaluate({ edges: [['A', 'B'], ['C', 'B']] }, truth), /two parents/);
    expectInvalid(() => evaluate({ edges: [] }, { edges: [['A', 'B'], ['B', 'A']] }), /two parents|cycle/);
    expectInvalid(() => evaluate({ edges: [] }, { edges: [['A', 'B'], ['B', 'C'], ['C', 'A']] }), /cycle/);
    expectInvalid(() => evaluate({ edges: [['A', 'Q']] }, truth, ['A', 'B', 'C', 'D', 'X', 'Y']), /unknown id "Q"/);
    expectInvalid(() => evaluate({ edges: [] }, truth, ['A', 'A']), /twice/);
    expectInvalid(() => evaluate({ edges: [], families: [['A'], ['A', 'B']] }, truth), /disjoint/);
    expectInvalid(() => evaluate({ edges: [['A']] as unknown as Edge[] }, truth), /\[parent, child\]/);
    expectInvalid(() => evaluate(null as unknown as { edges: Edge[] }, truth), /predicted/);
    expectInvalid(() => edgesFromParents([1, 1]), /not a valid index/);
    expectInvalid(() => edgesFromParents([-1, 0], ['a']), /ids has 1/);
  });
});
