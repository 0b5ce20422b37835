import * as fs from 'fs';
import * as path from 'path';
import {
  Arborescence, minimumArborescence, minimumArborescenceMatrix, WeightedEdge,
} from '../lib/method/arborescence';
import { toFlatSquare } from '../lib/method/matrix';
import { Rng } from './helpers/reference';
import { expectInvalid } from './helpers/errors';

// Global lookups are slow inside jest's VM context: alias them.
const { abs, max, floor } = Math;


function close(a: number, b: number, tol = 1e-9): boolean {
  return abs(a - b) <= tol * max(1, abs(a), abs(b));
}

/** Checks that `res` is a spanning arborescence of the matrix graph and its cost is right. */
function checkTree(M: number[][], res: Arborescence, root?: number): void {
  const n = M.length;
  expect(res.parent.length).toBe(n);
  if (root !== undefined) expect(res.root).toBe(root);
  expect(res.parent[res.root]).toBe(-1);
  let cost = 0;
  for (let v = 0; v < n; v++) {
    if (v === res.root) continue;
    const p = res.parent[v];
    expect(p >= 0 && p < n && p !== v).toBe(true);
    expect(M[p][v]).not.toBe(Infinity);
    expect(res.parentEdge[v]).toBe(p * n + v);
    cost += M[p][v];
    // Reaches the root without a cycle.
    let u = v;
    let steps = 0;
    while (u !== res.root && steps <= n) { u = res.parent[u]; steps++; }
    expect(u).toBe(res.root);
  }
  expect(close(cost, res.cost, 1e-12)).toBe(true);
}

/** Exhaustive minimum over all arborescences (fixed root, or every root when undefined). */
function bruteForce(M: number[][], root?: number): { cost: number; parent: number[] | null; count: number } {
  const n = M.length;
  let best = Infinity;
  let bestParent: number[] | null = null;
  let count = 0; // number of optimal arborescences
  const roots = root === undefined ? Array.from({ length: n }, (_, i) => i) : [root];
  const parent = new Array<number>(n).fill(-1);
  for (const r of roots) {
    const others = Array.from({ length: n }, (_, i) => i).filter((v) => v !== r);
    const choices = others.map((v) => Array.from({ length: n }, (_, i) => i).filter((u) => u !== v && M[u][v] !== Infinity));
    if (choices.some((c) => c.length === 0)) continue;
    const idx = new Array<number>(others.length).fill(0);
    for (;;) {
      parent.fill(-1);
      let cost = 0;
      for (let a = 0; a < others.length; a++) {
        parent[others[a]] = choices[a][idx[a]];
        cost += M[choices[a][idx[a]]][others[a]];
      }
      let ok = true;
      for (let v = 0; v < n && ok; v++) {
        let u = v;
        let steps = 0;
        while (u !== r && steps <= n) { u = parent[u]; steps++; }
        if (u !== r) ok = false;
      }
      if (ok) {
        if (cost < best - 1e-12) { best = cost; bestParent = parent.slice(); count = 1; }
        else if (abs(cost - best) <= 1e-12) count++;
      }
      let a = 0;
      while (a < others.length && ++idx[a] === choices[a].length) { idx[a] = 0; a++; }
      if (a === others.length) break;
    }
  }
  return { cost: best, parent: bestParent, count };
}

interface RefEdge { u: number; v: number; w: number }

/**
 * Independent reference: textbook Chu-Liu/Edmonds, O(EV), contracting all cycles of the
 * cheapest-in-edge graph at once and recursing. Returns the chosen edge index per node or null.
 */
function refChuLiu(n: number, edges: RefEdge[], root: number): number[] | null {
  const best = new Array<number>(n).fill(-1);
  for (let k = 0; k < edges.length; k++) {
    const { u, v, w } = edges[k];
    if (u === v || v === root) continue;
    if (best[v] < 0 || w < edges[best[v]].w) best[v] = k;
  }
  for (let v = 0; v < n; v++) if (v !== root && best[v] < 0) return null;
  // Find cycles among best edges.
  const comp = new Array<number>(n).fill(-1);
  const mark = new Array<number>(n).fill(-1);
  let cycles = 0;
  for (let s = 0; s < n; s++) {
    let v = s;
    while (v !== root && mark[v] === -1 && comp[v] === -1) { mark[v] = s; v = edges[best[v]].u; }
    if (v !== root && mark[v] === s && comp[v] === -1) {
      let x = v;
      do { comp[x] = cycles; x = edges[best[x]].u; } while (x !== v);
      cycles++;
    }
  }
  if (cycles === 0) return best;
  const id = new Array<number>(n);
  let next = cycles;
  for (let v = 0; v < n; v++) id[v] = comp[v] >= 0 ? comp[v] : next++;
  const sub: RefEdge[] = [];
  const origin: number[] = [];
  for (let k = 0; k < edges.length; k++) {
    const { u, v, w } = edges[k];
    if (id[u] === id[v]) continue;
    sub.push({ u: id[u], v: id[v], w: comp[v] >= 0 ? w - edges[best[v]].w : w });
    origin.push(k);
  }
  const chosen = refChuLiu(next, sub, id[root]);
  if (!chosen) return null;
  const out = new Array<number>(n).fill(-1);
  for (let c = 0; c < next; c++) {
    if (chosen[c] < 0) continue;
    const k = origin[chosen[c]];
    out[edges[k].v] = k;
  }
  for (let v = 0; v < n; v++) if (v !== root && out[v] < 0) out[v] = best[v];
  return out;
}

/** Reference free-root solution: virtual root with edges of weight BIG to every node. */
function refFree(M: number[][]): { cost: number; parent: number[] } {
  const n = M.length;
  const edges: RefEdge[] = [];
  let sum = 0;
  for (let u = 0; u < n; u++) {
    for (let v = 0; v < n; v++) {
      if (u !== v && M[u][v] !== Infinity) { edges.push({ u, v, w: M[u][v] }); sum += abs(M[u][v]); }
    }
  }
  const BIG = 2 * sum + 1;
  for (let v = 0; v < n; v++) edges.push({ u: n, v, w: BIG });
  const chosen = refChuLiu(n + 1, edges, n)!;
  const parent = new Array<number>(n).fill(-1);
  let cost = 0;
  for (let v = 0; v < n; v++) {
    const e = edges[chosen[v]];
    if (e.u !== n) { parent[v] = e.u; cost += e.w; }
  }
  return { cost, parent };
}

function randomMatrix(rng: Rng, n: number, opts: { missing?: number; ties?: number }): number[][] {
  const M: number[][] = [];
  for (let i = 0; i < n; i++) {
    M.push([]);
    for (let j = 0; j < n; j++) {
      if (i === j) M[i].push(0);
      else if (opts.missing && rng.next() < opts.missing) M[i].push(Infinity);
      else if (opts.ties) M[i].push(floor(rng.next() * opts.ties));
      else M[i].push(rng.next());
    }
  }
  return M;
}

describe('minimum arborescence: exhaustive check on small graphs', () => {
  test('every graph with 1..6 nodes (ties, missing edges, free and fixed roots) matches brute force', () => {
    const rng = new Rng(2024);
    let checked = 0;
    let infeasible = 0;
    let unique = 0;
    for (let seed = 0; seed < 360; seed++) {
      const n = 1 + (seed % 6);
      const kind = floor(seed / 6) % 4;
      const M = randomMatrix(rng, n, {
        missing: kind >= 2 ? 0.45 : 0,
        ties: kind % 2 === 1 ? 3 : 0,
      });
      const roots: (number | undefined)[] = [undefined, floor(rng.next() * n)];
      for (const root of roots) {
        const brute = bruteForce(M, root);
        const opts = root === undefined ? {} : { root };
        if (brute.parent === null) {
          expectInvalid(() => minimumArborescenceMatrix(M, opts), /no spanning arborescence/);
          infeasible++;
          continue;
        }
        const res = minimumArborescenceMatrix(M, opts);
        checkTree(M, res, root);
        if (!close(res.cost, brute.cost, 1e-12)) {
          throw new Error(`n=${n} seed=${seed} root=${root}: cost ${res.cost} vs brute ${brute.cost}`);
        }
        if (brute.count === 1) {
          expect(res.parent).toEqual(brute.parent);
          unique++;
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(infeasible).toBeGreaterThan(10);
    expect(unique).toBeGreaterThan(150);
  });
});

describe('minimum arborescence: large random graphs against a textbook O(EV) Chu-Liu/Edmonds', () => {
  test('dense graphs, distinct weights: same cost and same tree (free root and fixed root)', () => {
    const rng = new Rng(77);
    for (const n of [200, 257]) {
      const M = randomMatrix(rng, n, {});
      const res = minimumArborescenceMatrix(M);
      const ref = refFree(M);
      checkTree(M, res);
      expect(close(res.cost, ref.cost, 1e-12)).toBe(true);
      expect(res.parent).toEqual(ref.parent);

      const root = 17;
      const fixed = minimumArborescenceMatrix(M, { root });
      const edges: RefEdge[] = [];
      for (let u = 0; u < n; u++) for (let v = 0; v < n; v++) if (u !== v) edges.push({ u, v, w: M[u][v] });
      const chosen = refChuLiu(n, edges, root)!;
      const refParent = chosen.map((k) => (k < 0 ? -1 : edges[k].u));
      checkTree(M, fixed, root);
      expect(fixed.parent).toEqual(refParent);
      expect(fixed.cost).toBeGreaterThanOrEqual(res.cost - 1e-12);
    }
  });

  test('sparse graphs and tied integer weights: same cost', () => {
    const rng = new Rng(78);
    for (let t = 0; t < 4; t++) {
      const n = 200 + 10 * t;
      const M = randomMatrix(rng, n, { missing: t < 2 ? 0.97 : 0, ties: t % 2 === 1 ? 4 : 0 });
      // Guarantee feasibility: a random spanning tree rooted at a random node.
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) { const j = floor(rng.next() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
      for (let i = 1; i < n; i++) {
        const p = order[floor(rng.next() * i)];
        if (M[p][order[i]] === Infinity) M[p][order[i]] = t % 2 === 1 ? 3 : 0.5 + rng.next();
      }
      const res = minimumArborescenceMatrix(M);
      const ref = refFree(M);
      checkTree(M, res);
      expect(close(res.cost, ref.cost, 1e-12)).toBe(true);
      if (t === 0) expect(res.parent).toEqual(ref.parent);
    }
  });

  // Its wall time is measured by `npm run bench -- method`, not here.
  test('dense n = 700: one root, a spanning tree', () => {
    const rng = new Rng(79);
    const n = 700;
    const data = new Float64Array(n * n);
    for (let i = 0; i < data.length; i++) data[i] = rng.next();
    const res = minimumArborescenceMatrix({ n, data });
    expect(res.parent.filter((p) => p === -1).length).toBe(1);
  });
});

describe('minimum arborescence: networkx fixtures', () => {
  const fixture: { cases: { name: string; n: number; edges: [number, number, number][]; cost: number; parent?: number[] }[] } =
    JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'scipy', 'arborescence.json'), 'utf8'));

  test('fixture has structure and tie cases', () => {
    expect(fixture.cases.length).toBeGreaterThanOrEqual(10);
    expect(fixture.cases.some((c) => c.parent === undefined)).toBe(true);
  });

  test.each(fixture.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const edges: WeightedEdge[] = c.edges.map(([from, to, weight]) => ({ from, to, weight }));
    const res = minimumArborescence(c.n, edges);
    expect(close(res.cost, c.cost, 1e-12)).toBe(true);
    if (c.parent) expect(res.parent).toEqual(c.parent);
    // parentEdge points at the input edge actually used.
    for (let v = 0; v < c.n; v++) {
      if (v === res.root) { expect(res.parentEdge[v]).toBe(-1); continue; }
      const e = edges[res.parentEdge[v]];
      expect([e.from, e.to]).toEqual([res.parent[v], v]);
    }
  });
});

describe('minimum arborescence: API, tie-breaking, errors', () => {
  test('a hand-checked cycle contraction', () => {
    // Cheapest in-edges form the cycle 1 <-> 2; entering it from 0 is cheapest at node 2.
    const I = Infinity;
    const M = [
      [0, 10, 6, I],
      [I, 0, 1, 5],
      [I, 2, 0, I],
      [I, I, 3, 0],
    ];
    const res = minimumArborescenceMatrix(M, { root: 0 });
    expect(res.parent).toEqual([-1, 2, 0, 1]);
    expect(res.cost).toBe(6 + 2 + 5);
    // Free root: 0 has no in-edges, so it must be the root.
    expect(minimumArborescenceMatrix(M).parent).toEqual([-1, 2, 0, 1]);
  });

  test('ties: the smaller parent index (earlier edge) wins', () => {
    const M = [
      [0, 1, 1],
      [1, 0, 1],
      [1, 1, 0],
    ];
    const fixed = minimumArborescenceMatrix(M, { root: 0 });
    expect(fixed.parent).toEqual([-1, 0, 0]);
    const free = minimumArborescenceMatrix(M);
    expect(free.cost).toBe(2);
    expect(minimumArborescenceMatrix(M)).toEqual(free); // deterministic
    // Parallel edges of equal weight: the earlier one in the list is used.
    const edges: WeightedEdge[] = [
      { from: 0, to: 1, weight: 2 },
      { from: 0, to: 1, weight: 1 },
      { from: 0, to: 1, weight: 1 },
    ];
    const res = minimumArborescence(2, edges, { root: 0 });
    expect(res.parentEdge).toEqual([-1, 1]);
    expect(res.cost).toBe(1);
  });

  test('free-root ties between roots are deterministic and optimal', () => {
    // A directed 4-cycle with equal weights: every node is an optimal root.
    const I = Infinity;
    const M = [
      [0, 1, I, I],
      [I, 0, 1, I],
      [I, I, 0, 1],
      [1, I, I, 0],
    ];
    const res = minimumArborescenceMatrix(M);
    expect(res.cost).toBe(3);
    checkTree(M, res);
    expect(res.root).toBe(0);
  });

  test('candidateRoots restricts the root; the best other root is measurably worse', () => {
    const M = [
      [0, 1, 1],
      [5, 0, 1],
      [5, 5, 0],
    ];
    const best = minimumArborescenceMatrix(M);
    expect(best.root).toBe(0);
    expect(best.cost).toBe(2);
    const other = minimumArborescenceMatrix(M, { candidateRoots: [1, 2] });
    expect(other.root).toBe(1);
    expect(other.cost).toBe(6);
    expectInvalid(() => minimumArborescenceMatrix(M, { candidateRoots: [] }), /empty/);
    expectInvalid(() => minimumArborescenceMatrix(M, { candidateRoots: [3] }), /candidate root/);
    expectInvalid(() => minimumArborescenceMatrix(M, { root: 0, candidateRoots: [0] }), /only applies/);
  });

  test('single node; negative weights are fine', () => {
    expect(minimumArborescenceMatrix([[0]])).toEqual({ parent: [-1], root: 0, cost: 0, parentEdge: [-1] });
    const res = minimumArborescenceMatrix([[0, -2], [-1, 0]]);
    expect(res.cost).toBe(-2);
    expect(res.parent).toEqual([-1, 0]);
  });

  test('infeasible graphs throw', () => {
    const I = Infinity;
    expectInvalid(() => minimumArborescenceMatrix([[0, I], [I, 0]]), /no single root/);
    expectInvalid(() => minimumArborescenceMatrix([[0, 1, I], [I, 0, I], [I, I, 0]], { root: 0 }), /rooted at 0/);
    expectInvalid(() => minimumArborescence(3, [{ from: 1, to: 2, weight: 1 }], { root: 0 }), /no spanning/);
  });

  test('bad input is rejected', () => {
    expectInvalid(() => minimumArborescenceMatrix([[0, 1], [1]]), /square/);
    expectInvalid(() => minimumArborescenceMatrix([[0, NaN], [1, 0]]), /NaN/);
    expectInvalid(() => minimumArborescenceMatrix([[0, -Infinity], [1, 0]]), /-Infinity/);
    expectInvalid(() => minimumArborescenceMatrix([]), /positive integer/);
    expectInvalid(() => minimumArborescenceMatrix([[0, 1], [1, 0]], { root: 2 }), /root must be/);
    expectInvalid(() => minimumArborescence(2, [{ from: 0, to: 2, weight: 1 }]), /outside/);
    expectInvalid(() => minimumArborescence(2, [{ from: 0, to: 1, weight: NaN }]), /weight NaN/);
    expectInvalid(() => minimumArborescence(0, []), /positive integer/);
    expectInvalid(() => toFlatSquare({ n: 2, data: [1, 2, 3] }), /square/);
    // NaN on the diagonal is ignored.
    expect(minimumArborescenceMatrix([[NaN, 1], [2, NaN]]).cost).toBe(1);
  });
});
