import * as fs from 'fs';
import * as path from 'path';
import {
  autoFamilies, clusterFamilies, condensedFromSquare, condensedIndex, cutTree, familiesFromLabels,
  Linkage, linkageRows, wardLinkage,
} from '../lib/method/clustering';
import { Rng } from './helpers/reference';
import { expectInvalid } from './helpers/errors';

// Global lookups are slow inside jest's VM context: alias them.
const { abs, max, sqrt, floor } = Math;

interface WardCase {
  name: string;
  n: number;
  condensed: number[];
  Z: [number, number, number, number][];
  maxclust: Record<string, number[]>;
}
const wardFixture: { cases: WardCase[] } = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'scipy', 'ward.json'), 'utf8'),
);

/** Renumbers labels 0, 1, ... by first appearance (smallest member). */
function canonical(labels: ArrayLike<number>): number[] {
  const map = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    if (!map.has(labels[i])) map.set(labels[i], map.size);
    out.push(map.get(labels[i])!);
  }
  return out;
}

function relErr(a: number, b: number): number {
  if (a === b) return 0;
  return abs(a - b) / max(abs(a), abs(b));
}


/** Independent O(n^3) greedy Ward clustering over a full matrix (no NN-chain, no relabel). */
function naiveWardHeights(condensed: ArrayLike<number>, n: number): number[] {
  const D: number[][] = [];
  for (let i = 0; i < n; i++) {
    D.push(new Array(n).fill(0));
    for (let j = 0; j < n; j++) if (i !== j) D[i][j] = condensed[condensedIndex(n, i, j)];
  }
  const size = new Array(n).fill(1);
  const alive = new Array(n).fill(true);
  const heights: number[] = [];
  for (let step = 0; step < n - 1; step++) {
    let bi = -1;
    let bj = -1;
    let best = Infinity;
    for (let i = 0; i < n; i++) {
      if (!alive[i]) continue;
      for (let j = i + 1; j < n; j++) {
        if (alive[j] && D[i][j] < best) { best = D[i][j]; bi = i; bj = j; }
      }
    }
    heights.push(best);
    const nx = size[bi];
    const ny = size[bj];
    for (let k = 0; k < n; k++) {
      if (!alive[k] || k === bi || k === bj) continue;
      const nk = size[k];
      const v = sqrt(((nk + nx) * D[bi][k] ** 2 + (nk + ny) * D[bj][k] ** 2 - nk * best * best) / (nx + ny + nk));
      D[bj][k] = v;
      D[k][bj] = v;
    }
    alive[bi] = false;
    size[bj] = nx + ny;
  }
  return heights.sort((a, b) => a - b);
}

describe('wardLinkage: hand-computed cases', () => {
  test('three points on a line 0, 1, 3', () => {
    // Ward height for Euclidean data: sqrt(2 na nb / (na + nb)) * |centroid difference|.
    const Z = linkageRows(wardLinkage([1, 3, 2], 3));
    expect(Z[0]).toEqual([0, 1, 1, 2]);
    expect(Z[1][0]).toBe(2);
    expect(Z[1][1]).toBe(3);
    expect(Z[1][3]).toBe(3);
    expect(relErr(Z[1][2], sqrt(4 / 3) * 2.5)).toBeLessThan(1e-15);
  });

  test('four points 0, 1, 10, 12: two pairs, then the pairs', () => {
    const pts = [0, 1, 10, 12];
    const y: number[] = [];
    for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) y.push(abs(pts[i] - pts[j]));
    const Z = linkageRows(wardLinkage(y, 4));
    expect(Z[0]).toEqual([0, 1, 1, 2]);
    expect(Z[1]).toEqual([2, 3, 2, 2]);
    // Centroids 0.5 and 11: sqrt(2*2*2/4) * 10.5.
    expect(Z[2].slice(0, 2)).toEqual([4, 5]);
    expect(relErr(Z[2][2], sqrt(2) * 10.5)).toBeLessThan(1e-14);
    expect(Z[2][3]).toBe(4);
  });

  test('n = 1 gives an empty linkage, n = 2 a single merge', () => {
    expect(wardLinkage([], 1).Z.length).toBe(0);
    expect(linkageRows(wardLinkage([0.25], 2))).toEqual([[0, 1, 0.25, 2]]);
  });

  test('ties: all distances equal merges in scipy order', () => {
    // NN-chain by hand (scipy's rules): chain [0]; nearest of 0 is 1 (first index with the
    // minimum); nearest of 1: the previous element 0 is the incumbent and wins the tie, so
    // merge (0, 1) at 1 into slot 1. Ward update from {0,1} to 2 and 3: sqrt(2/3 + 2/3 - 1/3)
    // = 1 exactly. The chain restarts at the lowest live slot 1: nearest is 2 (lowest index
    // among ties), then 2's incumbent is 1: merge (1, 2) -> {0, 1, 2}, id 4. Then 3 joins.
    const Z = linkageRows(wardLinkage(new Array(6).fill(1), 4));
    expect(Z[0]).toEqual([0, 1, 1, 2]);
    expect(Z[1]).toEqual([2, 4, 1, 3]);
    expect(Z[2].slice(0, 2)).toEqual([3, 5]);
    expect(Z[2][3]).toBe(4);
    // {0,1,2} to 3: t = 1/4, with d(slot 1, 3) = 1, d(slot 2, 3) = 1, d_xy = 1, nx = 2, ny = 1.
    const t = 1 / 4;
    const h = sqrt((1 + 2) * t * 1 * 1 + (1 + 1) * t * 1 * 1 - 1 * t * 1 * 1);
    expect(relErr(Z[2][2], h)).toBeLessThan(1e-15);
    expect(relErr(h, 1)).toBeLessThan(1e-15);
  });

  test('rejects bad input', () => {
    expectInvalid(() => wardLinkage([1, 2], 3), /must have 3 entries/);
    expectInvalid(() => wardLinkage([1, NaN, 2], 3), /finite and non-negative/);
    expectInvalid(() => wardLinkage([1, Infinity, 2], 3), /finite/);
    expectInvalid(() => wardLinkage([1, -1, 2], 3), /non-negative/);
    expectInvalid(() => wardLinkage([], 0), /positive integer/);
    expectInvalid(() => wardLinkage([1], 2.5), /positive integer/);
  });
});

describe('wardLinkage matches scipy (fixtures)', () => {
  test('fixture set covers the intended shapes', () => {
    const names = wardFixture.cases.map((c) => c.name);
    expect(names.length).toBeGreaterThanOrEqual(40);
    expect(names.some((s) => s.startsWith('ties-int'))).toBe(true);
    expect(names.some((s) => s.startsWith('grid-duplicates'))).toBe(true);
    expect(names.some((s) => s.startsWith('blobs'))).toBe(true);
    expect(max(...wardFixture.cases.map((c) => c.n))).toBe(60);
  });

  test.each(wardFixture.cases.map((c) => [c.name, c] as const))('%s: merge order, ids, sizes, heights', (_name, c) => {
    const Z = linkageRows(wardLinkage(c.condensed, c.n));
    expect(Z.length).toBe(c.n - 1);
    for (let r = 0; r < c.n - 1; r++) {
      expect([Z[r][0], Z[r][1], Z[r][3]]).toEqual([c.Z[r][0], c.Z[r][1], c.Z[r][3]]);
      const e = relErr(Z[r][2], c.Z[r][2]);
      if (!(e <= 1e-12)) throw new Error(`${c.name} row ${r}: height ${Z[r][2]} vs scipy ${c.Z[r][2]}`);
    }
  });

  test('heights agree bit for bit with scipy on every fixture', () => {
    let rows = 0;
    for (const c of wardFixture.cases) {
      const L = wardLinkage(c.condensed, c.n);
      for (let r = 0; r < c.n - 1; r++) {
        expect(L.Z[4 * r + 2]).toBe(c.Z[r][2]);
        rows++;
      }
    }
    expect(rows).toBeGreaterThan(500);
  });

  test.each(wardFixture.cases.map((c) => [c.name, c] as const))('%s: cutTree equals fcluster maxclust', (_name, c) => {
    const L = wardLinkage(c.condensed, c.n);
    for (const [k, labels] of Object.entries(c.maxclust)) {
      const mine = cutTree(L, Number(k));
      expect(mine).toEqual(canonical(labels));
    }
  });

  test('ties really produce fewer clusters than asked in some fixture (scipy semantics)', () => {
    let fewer = 0;
    for (const c of wardFixture.cases) {
      for (const [k, labels] of Object.entries(c.maxclust)) {
        if (new Set(labels).size < Number(k) && Number(k) <= c.n) fewer++;
      }
    }
    expect(fewer).toBeGreaterThan(0);
  });
});

describe('wardLinkage: independent checks', () => {
  test('heights equal an O(n^3) greedy Ward on random distinct distances', () => {
    const rng = new Rng(11);
    for (const n of [3, 7, 20, 64, 120]) {
      const y = Float64Array.from({ length: (n * (n - 1)) / 2 }, () => rng.next() + 1e-3);
      const L = wardLinkage(y, n);
      const mine = Array.from({ length: n - 1 }, (_, r) => L.Z[4 * r + 2]);
      const ref = naiveWardHeights(y, n);
      for (let r = 0; r < n - 1; r++) expect(relErr(mine[r], ref[r])).toBeLessThan(1e-12);
    }
  });

  test('linkage is well formed: monotone heights, ids used once, sizes add up', () => {
    const rng = new Rng(5);
    const n = 300;
    const y = Float64Array.from({ length: (n * (n - 1)) / 2 }, () => floor(rng.next() * 5));
    const L = wardLinkage(y, n);
    const size = new Array(2 * n - 1).fill(1);
    const used = new Array(2 * n - 1).fill(false);
    for (let r = 0; r < n - 1; r++) {
      const [a, b, h, s] = [L.Z[4 * r], L.Z[4 * r + 1], L.Z[4 * r + 2], L.Z[4 * r + 3]];
      expect(a < b && b < n + r).toBe(true);
      expect(used[a] || used[b]).toBe(false);
      used[a] = used[b] = true;
      size[n + r] = size[a] + size[b];
      expect(s).toBe(size[n + r]);
      if (r > 0) expect(h >= L.Z[4 * (r - 1) + 2]).toBe(true);
    }
    expect(L.Z[4 * (n - 2) + 3]).toBe(n);
  });

  // Its wall time (O(n^2)) is measured by `npm run bench -- method`, not here.
  test('n = 1500: the last merge holds every observation', () => {
    const rng = new Rng(3);
    const n = 1500;
    const y = Float64Array.from({ length: (n * (n - 1)) / 2 }, () => rng.next());
    const L = wardLinkage(y, n);
    expect(L.Z[4 * (n - 2) + 3]).toBe(n);
  });

  test('condensedFromSquare and condensedIndex agree with squareform layout', () => {
    const D = [[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]];
    expect(Array.from(condensedFromSquare(D))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(condensedIndex(4, 2, 1)).toBe(3);
    expect(Array.from(condensedFromSquare(D, [3, 0, 2]))).toEqual([3, 6, 2]);
    expect(Array.from(condensedFromSquare({ n: 2, data: [0, 7, 7, 0] }))).toEqual([7]);
    expectInvalid(() => condensedFromSquare([[0, 1], [2, 0]]), /not symmetric/);
    expectInvalid(() => condensedFromSquare([[0, 1, 2], [1, 0, 3]]), /square/);
    expectInvalid(() => condensedFromSquare(D, [0, 4]), /outside/);
  });
});

describe('cutTree', () => {
  const pts = [0, 1, 10, 12, 50];
  const y: number[] = [];
  for (let i = 0; i < pts.length; i++) for (let j = i + 1; j < pts.length; j++) y.push(abs(pts[i] - pts[j]));
  const L = wardLinkage(y, pts.length);

  test('labels by smallest member, k = 1..n', () => {
    expect(cutTree(L, 1)).toEqual([0, 0, 0, 0, 0]);
    expect(cutTree(L, 2)).toEqual([0, 0, 0, 0, 1]);
    expect(cutTree(L, 3)).toEqual([0, 0, 1, 1, 2]);
    expect(cutTree(L, 4)).toEqual([0, 0, 1, 2, 3]);
    expect(cutTree(L, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(cutTree(L, 99)).toEqual([0, 1, 2, 3, 4]);
  });

  test('rejects bad k and malformed linkage', () => {
    expectInvalid(() => cutTree(L, 0), /positive integer/);
    expectInvalid(() => cutTree(L, 1.5), /positive integer/);
    expectInvalid(() => cutTree({ n: 3, Z: new Float64Array(4) }, 1), /entries/);
    const bad: Linkage = { n: 3, Z: Float64Array.from([0, 1, 1, 2, 0, 3, 2, 3]) };
    expectInvalid(() => cutTree(bad, 1), /invalid child id/);
  });

  test('familiesFromLabels', () => {
    expect(familiesFromLabels([0, 1, 0, 2, 1])).toEqual([[0, 2], [1, 4], [3]]);
    expectInvalid(() => familiesFromLabels([0, -1]), /non-negative/);
  });
});

describe('autoFamilies', () => {
  test('well-separated blob fixtures: 4 families plus a lone model', () => {
    for (const c of wardFixture.cases.filter((x) => x.name.startsWith('blobs'))) {
      const L = wardLinkage(c.condensed, c.n);
      const cut = autoFamilies(L);
      expect(cut.cutAtGap).toBe(true);
      expect(cut.count).toBe(5);
      expect(cut.ratio!).toBeGreaterThan(100);
      // Same partition as scipy's maxclust with 5 clusters.
      expect(cut.labels).toEqual(canonical(c.maxclust['5']));
      const sizes = familiesFromLabels(cut.labels).map((f) => f.length).sort((a, b) => a - b);
      expect(sizes[0]).toBe(1);
    }
  });

  test('no gap: one family', () => {
    const rng = new Rng(9);
    const n = 30;
    const y = Float64Array.from({ length: (n * (n - 1)) / 2 }, () => 1 + rng.next());
    const cut = autoFamilies(wardLinkage(y, n));
    expect(cut.cutAtGap).toBe(false);
    expect(cut.count).toBe(1);
    expect(cut.labels.every((l) => l === 0)).toBe(true);
    expect(cut.ratio!).toBeLessThan(10);
  });

  test('threshold is respected, zero heights never form the gap, maxHeight caps merges', () => {
    // Two families at distance 1000; inside each, a duplicate pair (distance 0) and 1 apart.
    const pts = [0, 0, 1, 1000, 1000, 1001];
    const y: number[] = [];
    for (let i = 0; i < 6; i++) for (let j = i + 1; j < 6; j++) y.push(abs(pts[i] - pts[j]));
    const L = wardLinkage(y, 6);
    const cut = autoFamilies(L);
    expect(cut.labels).toEqual([0, 0, 0, 1, 1, 1]);
    expect(cut.count).toBe(2);
    expect(cut.cutHeight!).toBeLessThan(10);
    expect(autoFamilies(L, { minRatio: 1e6 }).count).toBe(1);
    expect(autoFamilies(L, { maxHeight: 0 }).labels).toEqual([0, 0, 1, 2, 2, 3]);
    expect(autoFamilies(L, { maxHeight: -1 }).cutHeight).toBeNull();
    expect(autoFamilies(L, { maxHeight: -1 }).count).toBe(6);
    expectInvalid(() => autoFamilies(L, { minRatio: 1 }), /minRatio/);
  });

  test('n = 1 and n = 2', () => {
    expect(autoFamilies(wardLinkage([], 1)).labels).toEqual([0]);
    const two = autoFamilies(wardLinkage([5], 2));
    expect(two.labels).toEqual([0, 0]);
    expect(two.ratio).toBeNull();
    expect(autoFamilies(wardLinkage([5], 2), { maxHeight: 1 }).labels).toEqual([0, 1]);
  });
});

describe('clusterFamilies', () => {
  test('models of different groups never share a family; cross-group entries are not read', () => {
    // Models 0, 2, 4 are group 'a' (one family), 1, 3 group 'b' (one family), 5 alone in 'c'.
    const groups = ['a', 'b', 'a', 'b', 'a', 'c'];
    const n = groups.length;
    const D: number[][] = [];
    for (let i = 0; i < n; i++) {
      D.push([]);
      for (let j = 0; j < n; j++) D[i].push(i === j ? 0 : groups[i] === groups[j] ? 1 + 0.1 * abs(i - j) : NaN);
    }
    const res = clusterFamilies(D, { groups });
    expect(res.families).toEqual([[0, 2, 4], [1, 3], [5]]);
    expect(res.labels).toEqual([0, 1, 0, 1, 0, 2]);
    expect(res.groups.map((g) => g.key)).toEqual(['a', 'b', 'c']);
    // Without groups the NaN entries are read and rejected.
    expectInvalid(() => clusterFamilies(D), /NaN/);
    expectInvalid(() => clusterFamilies(D, { groups, k: 2 }), /groups/);
    expectInvalid(() => clusterFamilies(D, { groups: ['a'] }), /groups has 1/);
  });

  test('fixed k with one group equals cutTree', () => {
    const pts = [0, 1, 10, 12, 50];
    const D = pts.map((a) => pts.map((b) => abs(a - b)));
    const res = clusterFamilies(D, { k: 3 });
    expect(res.labels).toEqual([0, 0, 1, 1, 2]);
    expect(res.groups[0].cut).toBeNull();
    // Auto: heights 1, 2, sqrt(2) * 10.5 = 14.85, 44.25 * sqrt(8 / 5) = 55.97; the largest
    // ratio 14.85 / 2 = 7.4 is below 10: one family; with minRatio 5 the cut falls in that gap.
    const auto = clusterFamilies(D);
    expect(auto.groups[0].cut!.ratio!).toBeCloseTo((sqrt(2) * 10.5) / 2, 12);
    expect(auto.labels).toEqual([0, 0, 0, 0, 0]);
    expect(clusterFamilies(D, { minRatio: 5 }).labels).toEqual([0, 0, 1, 1, 2]);
  });

  test('family labels interleave groups by smallest member', () => {
    // Group x: models 1, 2 (close), 4 (far: its own family); group y: 0, 3.
    const groups = ['y', 'x', 'x', 'y', 'x'];
    const far = 1e6;
    const D = [
      [0, NaN, NaN, 1, NaN],
      [NaN, 0, 1, NaN, far],
      [NaN, 1, 0, NaN, far],
      [1, NaN, NaN, 0, NaN],
      [NaN, far, far, NaN, 0],
    ];
    // Group x: heights 1 then ~1.15e6: only two positive heights, ratio > 10: cut.
    const res = clusterFamilies(D, { groups });
    expect(res.labels).toEqual([0, 1, 1, 0, 2]);
  });
});
