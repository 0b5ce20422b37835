// The direction clocks and their per-family choice, the merge fit, and the minimum spanning
// tree, against independent references (scipy for the MST and numpy least squares for the
// merge weights) and brute force.
import { spawnSync } from 'node:child_process';

import {
  chooseClock, clockTrees, TREE_COST_MARGIN, SHAPE_MARGIN, shapeScore, clockAgreementAt, CLOCK_ORDER, clockLabel, eccentricities, findMerges, fitMerge, MERGE_RESIDUAL, minimumSpanningTree, reroot,
} from '../lib/method/clocks';
import { recoverFamily } from '../lib/method/direction';
import { Rng } from './helpers/reference';

const { floor, sqrt } = Math;

function py(script: string, input: unknown): unknown {
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(input), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

const sqDist = (a: number[], b: number[]) => a.reduce((t, x, k) => t + (x - b[k]) ** 2, 0);

/** Random-walk vectors along a given tree (parent[i] < i), and their distance matrices. */
function walk(rng: Rng, parent: number[], dim: number, step: number[] | number = 1) {
  const v: number[][] = [];
  parent.forEach((p, i) => {
    const s = Array.isArray(step) ? step[i] : step;
    v.push(Array.from({ length: dim }, (_, d) => (p < 0 ? 10 * rng.normal() : v[p][d] + s * rng.normal())));
  });
  const n = v.length;
  const S = new Float64Array(n * n), D = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) { S[i * n + j] = sqDist(v[i], v[j]); D[i * n + j] = sqrt(S[i * n + j]); }
  return { v, S, D, n };
}

/** The undirected edge set of a tree given as parents. */
const edgeSet = (parent: number[]) => new Set(parent.map((p, v) => (p < 0 ? '' : [p, v].sort((a, b) => a - b).join('-'))).filter((x) => x));

describe('minimumSpanningTree', () => {
  test('the same tree and weight as scipy.sparse.csgraph.minimum_spanning_tree on random matrices', () => {
    const rng = new Rng(11);
    for (let t = 0; t < 5; t++) {
      const n = 3 + floor(rng.next() * 12);
      const D = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) D[i * n + j] = D[j * n + i] = 0.1 + rng.next();
      const ours = minimumSpanningTree(D, n);
      const ref = py(
        'import json,sys,numpy as np\nfrom scipy.sparse.csgraph import minimum_spanning_tree\nd=json.load(sys.stdin)\nn=d["n"];D=np.array(d["D"]).reshape(n,n)\nT=minimum_spanning_tree(np.triu(D)).tocoo()\nprint(json.dumps({"w":float(T.sum()),"e":sorted("-".join(map(str,sorted((int(a),int(b))))) for a,b in zip(T.row,T.col))}))',
        { n, D: Array.from(D) },
      ) as { w: number; e: string[] };
      const w = ours.reduce((s, p, v) => (p < 0 ? s : s + D[p * n + v]), 0);
      expect(w).toBeCloseTo(ref.w, 10);
      expect([...edgeSet(ours)].sort()).toEqual(ref.e);
      expect(ours.filter((p) => p < 0)).toHaveLength(1);
    }
  });
  test('reroot keeps the edges and makes r the root', () => {
    const parent = [-1, 0, 0, 1, 1, 2];
    for (let r = 0; r < parent.length; r++) {
      const q = reroot(parent, r);
      expect(q[r]).toBe(-1);
      expect(edgeSet(q)).toEqual(edgeSet(parent));
    }
  });
});

describe('clock agreement and choice', () => {
  test('agreement counts ancestor-descendant pairs (brute force on a small tree; ties count one half)', () => {
    // 0 -> 1 -> 2, 0 -> 3
    const parent = [-1, 0, 1, 0];
    const v = [0, 1, 1, 5];
    // pairs: (0,1) +, (1,2) tie, (0,2) +, (0,3) +  -> 3.5 / 4
    expect(clockAgreementAt(parent, v, 1, 0)).toBe(3.5 / 4);
    expect(clockAgreementAt(parent, v, -1, 0)).toBe(0.5 / 4);
    // rooted at 3: 3 -> 0 -> 1 -> 2: pairs (3,0) -, (3,1) -, (3,2) -, (0,1) +, (0,2) +, (1,2) tie
    expect(clockAgreementAt(parent, v, 1, 3)).toBe(2.5 / 6);
    expect(clockAgreementAt([-1], [3], 1, 0)).toBe(1);
  });

  test('a clock monotone along the true tree wins over shuffled ones and gives the true root', () => {
    const rng = new Rng(5);
    for (let t = 0; t < 10; t++) {
      const parent = [-1, 0, 0, 0, 1, 1, 2, 2, 3, 3];
      const n = parent.length;
      // a clock that rises parent -> child
      const depthValue: number[] = [];
      parent.forEach((p, i) => depthValue.push(p < 0 ? 1 : depthValue[p] + 0.5 + rng.next()));
      // the models in a shuffled order
      const perm = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) { const j = floor(rng.next() * (i + 1)); [perm[i], perm[j]] = [perm[j], perm[i]]; }
      const inv = new Array<number>(n);
      perm.forEach((old, k) => (inv[old] = k));
      const tree = new Array<number>(n).fill(-1);
      parent.forEach((p, i) => { if (p >= 0) tree[inv[i]] = inv[p]; });
      const good = perm.map((old) => -depthValue[old]); // falls parent -> child: the 'kurtosis-' candidate
      const noise = perm.map(() => rng.next());
      const c = chooseClock(reroot(tree, inv[5]), { kurtosis: good, norm: noise, logstd: noise.map((x) => -x), spectral: noise.map((x) => x * x) });
      expect(c.chosen!.label).toBe('kurtosis-');
      expect(c.chosen!.agreement).toBe(1);
      expect(c.chosen!.root).toBe(inv[0]);
      expect(c.scores.map((s) => s.label)).toEqual(CLOCK_ORDER.map(clockLabel));
      for (const s of c.scores) if (s.label !== 'kurtosis-') expect(s.agreement).toBeLessThan(1);
      const rivals = c.scores.filter((s) => s.root !== c.chosen!.root).map((s) => s.agreement);
      expect(c.rootMargin).toBeCloseTo(1 - Math.max(...rivals), 12);
      expect(c.rootMargin!).toBeGreaterThan(0);
    }
  });

  test('the spectral clock is a candidate like the others: monotone where the rest are not, it is chosen', () => {
    // 0 -> 1 -> 2, 0 -> 3: spectral entropy rises along every path, the norm and kurtosis do not
    const tree = [-1, 0, 1, 0];
    const c = chooseClock(tree, { norm: [2, 1, 3, 0], kurtosis: [1, 3, 0, 2], logstd: [0, 2, 1, 3], spectral: [1, 2, 3, 2.5] });
    expect(c.chosen!.label).toBe('spectral+');
    expect(c.chosen!.root).toBe(0);
    expect(c.chosen!.agreement).toBe(1);
    expect(c.scores.map((s) => s.label)).toEqual(CLOCK_ORDER.map(clockLabel));
  });

  test('ties go by CLOCK_ORDER; a clock with a non-finite value or none is left out', () => {
    const tree = [-1, 0];
    const c = chooseClock(tree, { norm: [1, 2], kurtosis: [2, 1], logstd: null });
    expect(c.scores.map((s) => s.agreement)).toEqual([1, 1, 1, 1]);
    expect(c.chosen!.label).toBe(clockLabel(CLOCK_ORDER[0]));
    expect(c.why).toMatch(/tie order/);
    const d = chooseClock(tree, { norm: [1, NaN], kurtosis: [2, 1] });
    expect(d.scores.map((s) => s.clock)).toEqual(['kurtosis', 'kurtosis']);
    expect(chooseClock(tree, {}).chosen).toBeNull();
  });
});

describe('merges', () => {
  test('the fitted weight equals numpy least squares of (c - a) on (b - a); the residual is the relative squared residual', () => {
    const rng = new Rng(7);
    for (let t = 0; t < 5; t++) {
      const dim = 200;
      const a = Array.from({ length: dim }, () => rng.normal());
      const b = Array.from({ length: dim }, () => rng.normal());
      const w = 0.2 + 0.6 * rng.next();
      const c = a.map((x, k) => (1 - w) * x + w * b[k] + 0.3 * rng.normal());
      const v = [a, b, c];
      const S = new Float64Array(9);
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) S[i * 3 + j] = sqDist(v[i], v[j]);
      const fit = fitMerge(S, 3, 2, 0, 1)!;
      const ref = py(
        'import json,sys,numpy as np\nd=json.load(sys.stdin)\na,b,c=(np.array(x) for x in d)\nx=(b-a)[:,None]\nw,res,_,_=np.linalg.lstsq(x,c-a,rcond=None)\nprint(json.dumps({"w":float(w[0]),"e2":float(res[0]),"m":float(min(((c-a)**2).sum(),((c-b)**2).sum()))}))',
        v,
      ) as { w: number; e2: number; m: number };
      expect(fit.w).toBeCloseTo(ref.w, 9);
      expect(fit.residual).toBeCloseTo(ref.e2 / ref.m, 9);
    }
  });

  test('weighted averages are found with their weights; chains, siblings and fans are not merges', () => {
    const rng = new Rng(3);
    // 0 root; 1, 2, 3 fine-tunes of 0; 4 a fine-tune of 1 (a chain 0 -> 1 -> 4)
    const { v } = walk(rng, [-1, 0, 0, 0, 1], 400);
    const m1 = v[1].map((x, k) => 0.3 * x + 0.7 * v[2][k]);
    const m2 = v[2].map((x, k) => 0.5 * x + 0.5 * v[3][k] + 1e-3 * rng.normal());
    const all = [...v, m1, m2];
    const n = all.length;
    const S = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) S[i * n + j] = sqDist(all[i], all[j]);
    const merges = findMerges(S, n, Array.from({ length: n }, (_, i) => i));
    expect([...merges.keys()].sort()).toEqual([5, 6]);
    const f5 = merges.get(5)!;
    expect(f5.a === 1 ? 1 - f5.w : f5.w).toBeCloseTo(0.3, 6);
    const f6 = merges.get(6)!;
    expect([f6.a, f6.b].sort()).toEqual([2, 3]);
    expect(f6.w).toBeCloseTo(0.5, 2);
    // the chain's middle model lies between its ends only up to a residual of at least 1/2
    const chain = fitMerge(S, n, 1, 0, 4)!;
    expect(chain.residual).toBeGreaterThan(MERGE_RESIDUAL);
  });
});

describe('fans vs chains', () => {
  /** A fan of k same-recipe siblings under model 0: a shared update u plus each one's own e. */
  function fan(rng: Rng, k: number, dim: number, shared: number) {
    const p = Array.from({ length: dim }, () => 10 * rng.normal());
    const u = Array.from({ length: dim }, () => shared * rng.normal());
    const v = [p, ...Array.from({ length: k }, () => p.map((x, d) => x + u[d] + rng.normal()))];
    const n = v.length;
    const S = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) S[i * n + j] = sqDist(v[i], v[j]);
    return { S, n };
  }
  /** A chain 0 -> 1 -> ... whose steps share a drift d (continued pre-training on one corpus). */
  function drift(rng: Rng, steps: number, dim: number, shared: number) {
    const d = Array.from({ length: dim }, () => shared * rng.normal());
    const v = [Array.from({ length: dim }, () => 10 * rng.normal())];
    for (let s = 0; s < steps; s++) v.push(v[s].map((x, k) => x + d[k] + rng.normal()));
    const n = v.length;
    const S = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) S[i * n + j] = sqDist(v[i], v[j]);
    return { S, n };
  }
  test('the shape of a tree: a same-recipe fan reads best from its parent, a drifting chain from an end, orthogonal steps decide nothing', () => {
    const rng = new Rng(23);
    const path = [-1, 0, 1]; // the undirected path 0 - 1 - 2
    for (let t = 0; t < 5; t++) {
      // fan: parent 0 with children 1, 2, laid out as the path 1 - 0 - 2
      const f = fan(rng, 2, 300, 1);
      const star = [1, -1, 0]; // path 1 - 0 - 2 rooted at 1
      expect(shapeScore(star, f.S, 0) - shapeScore(star, f.S, 1)).toBeGreaterThan(SHAPE_MARGIN);
      // chain 0 -> 1 -> 2 with drift
      const c = drift(rng, 2, 300, 1);
      expect(shapeScore(path, c.S, 0) - shapeScore(path, c.S, 1)).toBeGreaterThan(SHAPE_MARGIN);
      expect(shapeScore(path, c.S, 0)).toBeCloseTo(shapeScore(path, c.S, 2), 10); // both ends read it as a chain
      // orthogonal increments: within the margin
      const o = walk(rng, path, 3000, 1);
      expect(Math.abs(shapeScore(path, o.S, 0) - shapeScore(path, o.S, 1))).toBeLessThan(SHAPE_MARGIN);
      // the tie of two clocks that agree fully, one rooting the path at its middle (1), one at an end (0)
      const clocks = { norm: [1, 2, 3], kurtosis: [0, 1, 0] }; // norm+ monotone from 0; kurtosis- falls from 1 both ways
      const onChain = chooseClock(path, clocks, c.S);
      expect(onChain.chosen!.label).toBe('norm+');
      expect(onChain.why).toMatch(/shape of the tree/);
      expect(chooseClock(path, clocks).chosen!.label).toBe('kurtosis-'); // without distances: the most central root
      expect(chooseClock(path, clocks, o.S).chosen!.label).toBe('kurtosis-'); // no shape evidence: the most central root
      // the same two clocks on a same-recipe fan laid out as the path 1 - 0 - 2: the parent 0 is the middle
      const fanClocks = { norm: [2, 1, 3], kurtosis: [1, 0, 0] };
      expect(chooseClock(star, fanClocks, f.S).chosen!.root).toBe(0);
    }
  });
  test('eccentricity of tree nodes (hops to the farthest node), the tie-break of clocks', () => {
    expect(eccentricities([-1, 0, 1, 2])).toEqual([3, 2, 2, 3]);
    expect(eccentricities([-1, 0, 0, 0])).toEqual([1, 2, 2, 2]);
    // kurtosis- and norm+ both agree fully; their roots differ: the hub (node 0 of the star) wins the tie
    const star = [-1, 0, 0, 0];
    const c = chooseClock(reroot(star, 1), { norm: [2, 1, 3, 4], kurtosis: [0, -1, -2, -3] });
    expect(c.scores.filter((s) => s.agreement === 1).map((s) => s.label).sort()).toEqual(['kurtosis-', 'norm+']);
    expect(c.chosen!.label).toBe('kurtosis-');
    expect(c.chosen!.root).toBe(0);
    // norm+ roots it at 1 just as well: the family's root margin is 0
    expect(c.rootMargin).toBe(0);
  });
});

describe('the clock by the trees it explains (clockTrees)', () => {
  // Hops from node r on the undirected tree: a clock that rises away from r along every path.
  const hops = (parent: number[], r: number) => {
    const back = reroot(parent, r);
    return back.map((_, v) => { let d = 0; for (let u = v; back[u] >= 0; u = back[u]) d++; return d; });
  };
  test('two clocks agreeing on a root outvote one that is monotone from another root on a near-tied tree', () => {
    // the truth: a fan 0 -> 1, 2, 3 whose siblings 1 and 2 (one recipe) are a hair nearer each
    // other than to their parent, so the minimum spanning tree is the chain 2 - 1 - 0 - 3
    const n = 4;
    const d = [[0, 1, 1, 1], [1, 0, 0.999, 1.4], [1, 0.999, 0, 1.4], [1, 1.4, 1.4, 0]];
    const D = Float64Array.from(d.flat());
    const S = D.map((x) => x * x);
    const clocks = {
      norm: [2, 1, 0, 3], // monotone on the spanning tree from 2: 2 -> 1 -> 0 -> 3
      spectral: [0, 1.1, 1.0, 1.2], // rises parent -> child on the fan, not along 0 -> 1 -> 2
      logstd: [0, 1.2, 1.1, 1.3],
      kurtosis: null,
    };
    // agreement on the spanning tree alone picks the norm and roots the family at the sibling 2
    const mst = minimumSpanningTree(D, n);
    const alone = chooseClock(mst, clocks, S);
    expect(alone.chosen!.label).toBe('norm+');
    expect(alone.chosen!.root).toBe(2);
    // every candidate's own tree: the norm's and the spectral clock's cost the same (2.999)
    const o = clockTrees(D, n, clocks, S, { lambda: 0.3, names: ['base', 'a', 'b', 'c'] });
    const cost = (label: string) => o.trees.find((t) => t.label === label)!;
    expect(cost('norm+').cost).toBeCloseTo(2.999, 12);
    expect(cost('norm+').root).toBe(2);
    expect(cost('spectral+').cost).toBeCloseTo(2.999, 12);
    expect(cost('spectral+').root).toBe(0);
    expect(o.recovery!.root).toBe(0);
    expect(['spectral+', 'logstd+']).toContain(o.choice.chosen!.label);
    expect(o.choice.why).toMatch(/root base has the most clocks \((logstd, spectral|spectral, logstd)\)/);
    // the tree used is the chosen clock's own arborescence
    const v = clocks[o.choice.chosen!.clock]!;
    expect(o.recovery!.parent).toEqual(recoverFamily({ n, data: D }, v.map((x) => -o.choice.chosen!.sign * x), { mode: 'finetune', lambda: 0.3 }).parent);
  });
  test('a clock whose tree is dearer by more than the margin is no near-tie: the cheapest tree wins alone', () => {
    const rng = new Rng(91);
    for (let t = 0; t < 10; t++) {
      const parent = [-1, 0, 0, 1, 1, 2, 2, 3];
      const w = walk(rng, parent, 2000, 1);
      const depth = hops(parent, 0);
      // the norm rises along every path from the base; the kurtosis zig-zags along the path
      // 3 - 1 - 0 - 2 - 5 (0, 1, 0, 1, 0), so no rooting of this tree is monotone in it
      const norm = depth.map((x, i) => x + 1e-3 * i);
      const kurtosis = [0, 1, 1, 0, 0.5, 0, 0.5, 0.5];
      const o = clockTrees(w.D, w.n, { norm, kurtosis, logstd: null, spectral: null }, w.S, { lambda: 0.3 });
      const best = Math.min(...o.trees.map((x) => x.cost));
      const near = o.trees.filter((x) => x.cost <= best * (1 + TREE_COST_MARGIN));
      expect(near.map((x) => x.label)).toEqual(['norm+']);
      expect(o.choice.chosen!.label).toBe('norm+');
      expect(o.choice.why).toMatch(/cheapest tree/);
      expect(o.recovery!.root).toBe(0);
      expect(o.recovery!.parent).toEqual(parent);
    }
  });
  test('a tie of votes falls back to the agreement rules among the near-ties', () => {
    // the path 0 - 1 - 2: the norm rises from 0, the kurtosis from 2; both trees are the path
    const n = 3;
    const D = Float64Array.from([0, 1, 2, 1, 0, 1, 2, 1, 0]);
    const o = clockTrees(D, n, { norm: [0, 1, 2], kurtosis: [2, 1, 0] }, undefined, { lambda: 0.3 });
    expect(o.choice.why).toMatch(/no root has the most clocks/);
    // equal agreement, equally central ends: the tie order (norm+ before kurtosis+)
    expect(o.choice.chosen!.label).toBe('norm+');
    expect(o.recovery!.parent).toEqual([-1, 0, 1]);
    // only admissible roots (e.g. the smallest vocabulary) are candidates
    const only2 = clockTrees(D, n, { norm: [0, 1, 2], kurtosis: [2, 1, 0] }, undefined, { lambda: 0.3, admissible: [false, false, true] });
    expect(only2.recovery!.root).toBe(2);
    expect(() => clockTrees(D, 2, { norm: [0, 1] }, undefined, { lambda: 0.3 })).toThrow(/9 entries for 2 models/);
    expect(clockTrees(D, n, {}, undefined, { lambda: 0.3 }).recovery).toBeNull();
  });
});
