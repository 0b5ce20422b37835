// The shape of the difference between two models (issue 13.2, fans vs chains): the native
// moments of every pair's difference on a strided sample of rows (native/pairwise/diff_moments.h)
// against a float64 two-pass reference, and the rule that reads them (lib/method/difference_shape.ts).
import * as path from 'node:path';

import { native } from '../lib/core/binding';
import { differenceMoments } from '../lib/io/diff_moments';
import { DIFF_GAUSSIAN, DIFF_MARGIN, DIFF_WINDOW, differenceKurtosis, differenceKurtosisError, ERROR_Z, REPARENT_MARGIN, reparentByShape, siblingPenalty } from '../lib/method/difference_shape';
import { recoverFamily } from '../lib/method/direction';
import { pairIndex } from '../lib/method/matrix';
import { Rng } from './helpers/reference';
import { decode, encode, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

/** Two-pass float64 moments of x - y over the rows floor(i R / b), i < b = min(R, maxRows); NaN/Inf elements counted apart. */
function reference(x: Float64Array, y: Float64Array, rows: number, cols: number, maxRows: number) {
  const b = Math.min(rows, maxRows);
  const d: number[] = [];
  let bad = 0;
  for (let i = 0; i < b; i++) {
    const r = Math.floor((i * rows) / b);
    for (let e = 0; e < cols; e++) {
      const v = x[r * cols + e] - y[r * cols + e];
      if (Number.isFinite(v)) d.push(v);
      else bad++;
    }
  }
  const mean = d.reduce((a, v) => a + v, 0) / d.length;
  let m2 = 0, m3 = 0, m4 = 0;
  for (const v of d) { const t = v - mean; m2 += t * t; m3 += t * t * t; m4 += t * t * t * t; }
  return { count: d.length, mean, m2, m3, m4, bad };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

describe('diffMoments: the moments of every pair difference, against float64', () => {
  const tmp = tmpDir('mother-diff-moments-');
  afterAll(() => tmp.cleanup());
  const rng = new Rng(7);

  test.each(['F32', 'F16', 'BF16', 'F64'] as FloatDtype[])('%s: three models (one of them a near copy), 300 x 17 sampled at 64 and at every row; heavy tails', async (dtype) => {
    const rows = 300, cols = 17;
    const base = Float64Array.from({ length: rows * cols }, () => rng.studentT(4));
    const near = base.map((v) => v + 1e-3 * rng.normal());
    const far = Float64Array.from({ length: rows * cols }, () => 5 + rng.normal());
    const stored = [base, near, far].map((v) => decode(dtype, encode(dtype, v)));
    const files = stored.map((v, m) => {
      const f = path.join(tmp.dir, `m${m}-${dtype}.safetensors`);
      writeSafetensors(f, [{ name: 'w', dtype, shape: [rows, cols], data: encode(dtype, v) }]);
      return f;
    });
    for (const maxRows of [64, 1000]) {
      const [t] = await differenceMoments(files.map((f) => ({ files: [f], index: '' })), [{ name: 'w' }], { maxRows, threads: 2 });
      expect(t).not.toBeNull();
      expect(t!.sampled).toBe(Math.min(rows, maxRows));
      for (let i = 0; i < 3; i++)
        for (let j = i + 1; j < 3; j++) {
          const p = pairIndex(3, i, j);
          const want = reference(stored[i], stored[j], rows, cols, maxRows);
          expect(t!.count[p]).toBe(want.count);
          expect(rel(t!.mean[p], want.mean)).toBeLessThan(1e-9);
          expect(rel(t!.m2[p], want.m2)).toBeLessThan(1e-11);
          expect(Math.abs(t!.m3[p] - want.m3)).toBeLessThan(1e-9 * want.m2 ** 1.5 / Math.sqrt(want.count) + 1e-300);
          expect(rel(t!.m4[p], want.m4)).toBeLessThan(1e-11);
        }
    }
  });

  test('NaN and Inf counted, not folded; a model without the tensor (names null) or of another shape; a one-row tensor', async () => {
    const rows = 5, cols = 4;
    const a = Float64Array.from({ length: rows * cols }, () => rng.normal());
    const b = a.map((v) => v + rng.normal());
    b[3] = NaN;
    b[9] = Infinity;
    const fa = path.join(tmp.dir, 'a.safetensors'), fb = path.join(tmp.dir, 'b.safetensors'), fc = path.join(tmp.dir, 'c.safetensors');
    writeSafetensors(fa, [{ name: 'w', dtype: 'F64', shape: [rows, cols], data: encode('F64', a) }, { name: 'one', dtype: 'F64', shape: [1, 3], data: encode('F64', [1, 2, 3]) }, { name: 'x', dtype: 'F64', shape: [2, 2], data: encode('F64', [1, 2, 3, 4]) }]);
    writeSafetensors(fb, [{ name: 'v', dtype: 'F64', shape: [rows, cols], data: encode('F64', b) }, { name: 'one', dtype: 'F64', shape: [1, 3], data: encode('F64', [1, 1, 1]) }, { name: 'x', dtype: 'F64', shape: [4, 1], data: encode('F64', [1, 2, 3, 4]) }]);
    writeSafetensors(fc, [{ name: 'w', dtype: 'F64', shape: [rows, cols], data: encode('F64', a) }, { name: 'one', dtype: 'F64', shape: [1, 3], data: encode('F64', [0, 0, 0]) }]);
    const models = [fa, fb, fc].map((f) => ({ files: [f], index: '' }));
    const [w, one, x, gone] = await differenceMoments(models, [{ name: 'w', names: ['w', 'v', 'w'] }, { name: 'one' }, { name: 'x' }, { name: 'w', names: ['w', null, null] }]);
    const want = reference(a, b, rows, cols, 256);
    const p01 = pairIndex(3, 0, 1), p02 = pairIndex(3, 0, 2), p12 = pairIndex(3, 1, 2);
    expect(w!.nonFinite[p01]).toBe(2);
    expect(w!.count[p01]).toBe(want.count);
    expect(rel(w!.m2[p01], want.m2)).toBeLessThan(1e-12);
    expect([w!.count[p02], w!.m2[p02]]).toEqual([20, 0]); // identical tensors
    expect(w!.nonFinite[p12]).toBe(2);
    expect(one!.sampled).toBe(1);
    expect(one!.count[p01]).toBe(3);
    expect(one!.mean[p02]).toBe(2);
    expect(x).toBeNull(); // [2, 2] against [4, 1]
    expect(gone).toBeNull(); // one model holds it
  });

  test('argument checks: fewer than two models, names of the wrong length, maxRows out of range', () => {
    const m = { files: ['/nonexistent.safetensors'], index: '' };
    expect(() => native().diffMoments([m], [{ name: 'w' }], {})).toThrow(/2 to 4096 models/);
    expect(() => native().diffMoments([m, m], [{ name: 'w', names: ['w'] }], {})).toThrow(/one entry per model/);
    expect(() => native().diffMoments([m, m], [{ name: 'w' }], { maxRows: 0 })).toThrow(/maxRows/);
  });
});

describe('the rule: the difference kurtosis breaks a parent-sibling tie inside the window', () => {
  test('differenceKurtosis: the median over tensors of n m4 / m2^2 - 3, tensors with NaN/Inf or no difference left out', () => {
    // one pair (n = 2); per tensor count, m2, m4: kurtosis 3 * 1.5 - 3 = 1.5, 0, -1.2 (an even count: the mean of the middle two)
    const t = (count: number, m2: number, m4: number, nonFinite = 0) => ({ count: [count], m2: [m2], m4: [m4], nonFinite: [nonFinite] });
    const k = differenceKurtosis([t(100, 10, 4.5), t(100, 10, 3), t(100, 10, 1.8), t(100, 10, 99, 1), t(100, 0, 0), null], 2);
    expect(k[0]).toBeCloseTo(0, 12);
    const k2 = differenceKurtosis([t(100, 10, 4.5), t(100, 10, 1.8)], 2);
    expect(k2[0]).toBeCloseTo((1.5 - 1.2) / 2, 12);
    expect(differenceKurtosis([t(3, 1, 1)], 2)[0]).toBeNaN();
  });

  // models: 0 parent, 1 and 2 siblings of one recipe (1 nearer 2 than the parent is), 3 the child of 1
  const D = [
    [0, 1.0, 1.1, 1.4],
    [1.0, 0, 0.9, 0.8],
    [1.1, 0.9, 0, 1.3],
    [1.4, 0.8, 1.3, 0],
  ].flat();
  const K = [
    [NaN, 0.0, -0.05, 0.2],
    [0.0, NaN, 0.3, 0.05],
    [-0.05, 0.3, NaN, 0.45],
    [0.2, 0.05, 0.45, NaN],
  ].flat();

  test('the sibling nearer than the parent costs DIFF_WINDOW (both ways); the parent and the true chains do not', () => {
    const P = siblingPenalty(D, K, 4);
    // 0 lies in 2's window (1.1 <= 1.4 x 0.9) and is one run from 1 and from 2 (K 0 and -0.05,
    // both below K(1, 2) - margin = 0.1): 1 and 2 are two runs apart
    expect(P[1 * 4 + 2]).toBe(DIFF_WINDOW);
    expect(P[2 * 4 + 1]).toBe(DIFF_WINDOW);
    expect(P[0 * 4 + 2]).toBe(1);
    // 3's parent 1: no model is one run from both (0 is two runs from 3: K 0.2)
    expect(P[1 * 4 + 3]).toBe(1);
    expect(P[3 * 4 + 1]).toBe(1);
    expect(P[0 * 4 + 1]).toBe(1);
    // outside a window: never
    expect(P[0 * 4 + 3]).toBe(1);
  });

  test("a model's own child never marks the edge to its parent; nor do heavy-tailed differences (SGD) however they differ", () => {
    // p -> c -> g: c's child g is one run from c (K 0) but two from p (K 0.5): the edge p - c (K 0.25) stays
    const D3 = [0, 1.0, 1.3, 1.0, 0, 0.8, 1.3, 0.8, 0].flat();
    const K3 = [NaN, 0.25, 0.5, 0.25, NaN, 0.0, 0.5, 0.0, NaN];
    const P3 = siblingPenalty(D3, K3, 3);
    expect(P3[0 * 3 + 1]).toBe(1);
    // the grandparent - grandchild pair is two runs apart through c
    expect(P3[0 * 3 + 2]).toBe(DIFF_WINDOW);
    // every difference heavy-tailed (all K above DIFF_GAUSSIAN): nothing
    const Kh = K.map((k) => k + DIFF_GAUSSIAN + 1);
    expect([...siblingPenalty(D, Kh, 4)].every((v) => v === 1)).toBe(true);
  });

  test('a gap within the margin, or a non-finite K (adapter-like pairs), decides nothing', () => {
    const K2 = K.map((k, q) => (q === 1 * 4 + 2 || q === 2 * 4 + 1 ? 0 + DIFF_MARGIN - 1e-9 : k));
    expect(siblingPenalty(D, K2, 4)[1 * 4 + 2]).toBe(1);
    const K3 = K.map((k, q) => (q === 1 * 4 + 2 || q === 2 * 4 + 1 ? NaN : k));
    expect(siblingPenalty(D, K3, 4)[1 * 4 + 2]).toBe(1);
  });
});

describe('parents by the shape of the difference on the directed tree (reparentByShape)', () => {
  /** Symmetric c x c from a function of the pair. */
  const sym = (c: number, f: (a: number, b: number) => number) => {
    const M = new Float64Array(c * c);
    for (let a = 0; a < c; a++) for (let b = 0; b < c; b++) M[a * c + b] = a === b ? 0 : f(Math.min(a, b), Math.max(a, b));
    return M;
  };
  // the fan 0 -> 1, 2, 3 (3 on the same data as 2), hung by the distances as 2 -> 3
  const c = 4;
  const rms = sym(c, (a, b) => ({ '0,1': 1.0, '0,2': 1.0, '0,3': 1.25, '1,2': 1.4, '1,3': 1.6, '2,3': 0.95 } as Record<string, number>)[`${a},${b}`]);
  const K = sym(c, (a, b) => (a === 0 ? -0.05 : 0.3));
  test('a sibling hung under a sibling moves to the member one run from it; the tree is a tree', () => {
    const r = reparentByShape([-1, 0, 0, 2], rms, K, c);
    expect(r.parent).toEqual([-1, 0, 0, 0]);
    expect(r.moved).toEqual([{ child: 3, from: 2, to: 0, kFrom: 0.3, kTo: -0.05 }]);
    // the right tree stays
    expect(reparentByShape([-1, 0, 0, 0], rms, K, c).moved).toEqual([]);
  });
  test('no move: a gap within the margin, the parent outside the window, a K above the Gaussian gate, a forbidden edge', () => {
    const close = sym(c, (a, b) => (a === 0 ? 0.3 - REPARENT_MARGIN + 1e-9 : 0.3));
    expect(reparentByShape([-1, 0, 0, 2], rms, close, c).moved).toEqual([]);
    const far = rms.slice();
    far[0 * c + 3] = far[3 * c + 0] = 0.95 * DIFF_WINDOW + 1e-9; // just outside 1.4 x the nearest (0.95)
    expect(reparentByShape([-1, 0, 0, 2], far, K, c).moved).toEqual([]);
    const heavy = sym(c, (a, b) => (a === 0 ? DIFF_GAUSSIAN + 0.01 : 1.0)); // SGD-like: every pair heavy-tailed
    expect(reparentByShape([-1, 0, 0, 2], rms, heavy, c).moved).toEqual([]);
    const forbidden = new Uint8Array(c * c);
    forbidden[0 * c + 3] = 1;
    expect(reparentByShape([-1, 0, 0, 2], rms, K, c, { forbidden }).moved).toEqual([]);
    // a non-finite K (an adapter-like pair) never wins, but a parent whose K is undefined is left
    const nanK = K.slice();
    nanK[0 * c + 3] = nanK[3 * c + 0] = NaN;
    expect(reparentByShape([-1, 0, 0, 2], rms, nanK, c).moved).toEqual([]);
    const nanParent = K.slice();
    nanParent[2 * c + 3] = nanParent[3 * c + 2] = NaN;
    expect(reparentByShape([-1, 0, 0, 2], rms, nanParent, c).parent).toEqual([-1, 0, 0, 0]);
    // the gap of 0.35 against its standard error: moves at 0.1, not at 0.35 / ERROR_Z
    const err = (e: number) => sym(c, () => e / Math.SQRT2);
    expect(reparentByShape([-1, 0, 0, 2], rms, K, c, { error: err(0.1) }).moved).toHaveLength(1);
    expect(reparentByShape([-1, 0, 0, 2], rms, K, c, { error: err(0.35 / ERROR_Z + 1e-6) }).moved).toEqual([]);
    // the identical rows outrank K: the base differs from 3 in 5 more rows than 2 does (tolerance 1)
    const differing = sym(c, (a, b) => (a === 0 && b === 3 ? 20 : 15));
    expect(reparentByShape([-1, 0, 0, 2], rms, K, c, { rows: { differing, tolerance: 1 } }).moved).toEqual([]);
    expect(reparentByShape([-1, 0, 0, 2], rms, K, c, { rows: { differing, tolerance: 5 } }).moved).toHaveLength(1);
  });
  test('differenceKurtosisError: the spread of the median K of T Gaussian tensors of n elements, against simulation', () => {
    const rng = new Rng(8);
    for (const [n, T] of [[256, 1], [1024, 4], [4096, 9]]) {
      const ks: number[] = [];
      for (let rep = 0; rep < 300; rep++) {
        const per: number[] = [];
        for (let t = 0; t < T; t++) {
          let s2 = 0, s4 = 0, s1 = 0;
          const x = Array.from({ length: n }, () => rng.normal());
          for (const v of x) s1 += v;
          const mu = s1 / n;
          for (const v of x) { const d = v - mu; s2 += d * d; s4 += d ** 4; }
          per.push((n * s4) / (s2 * s2) - 3);
        }
        per.sort((a, b) => a - b);
        ks.push(T % 2 ? per[T >> 1] : (per[T / 2 - 1] + per[T / 2]) / 2);
      }
      const mean = ks.reduce((a, v) => a + v, 0) / ks.length;
      const sd = Math.sqrt(ks.reduce((a, v) => a + (v - mean) ** 2, 0) / (ks.length - 1));
      const tensors = Array.from({ length: T }, () => ({ count: [n], m2: [1], m4: [3 / n], nonFinite: [0] }));
      const se = differenceKurtosisError(tensors, 2)[0];
      expect(se / sd).toBeGreaterThan(0.75);
      expect(se / sd).toBeLessThan(1.35);
    }
    // no usable tensor: NaN
    expect(differenceKurtosisError([{ count: [3], m2: [1], m4: [1], nonFinite: [0] }], 2)[0]).toBeNaN();
  });
  test('a descendant is never taken: on random trees, K and distances the result is a tree with the same root, every move by the rule', () => {
    const rng = new Rng(57);
    let moves = 0;
    for (let t = 0; t < 300; t++) {
      const n = 3 + Math.floor(rng.next() * 8);
      const parent = [-1];
      for (let v = 1; v < n; v++) parent.push(Math.floor(rng.next() * v));
      // shuffle the labels so that parents are not always smaller indices
      const perm = Array.from({ length: n }, (_, i) => i).sort(() => rng.next() - 0.5);
      const p = new Array<number>(n);
      parent.forEach((q, v) => { p[perm[v]] = q < 0 ? -1 : perm[q]; });
      const R = sym(n, () => 1 + rng.next());
      const KK = sym(n, () => rng.next() * 0.6 - 0.3);
      const r = reparentByShape(p, R, KK, n);
      moves += r.moved.length;
      expect(r.parent.indexOf(-1)).toBe(p.indexOf(-1));
      expect(r.parent.filter((x) => x === -1)).toHaveLength(1);
      for (let v = 0; v < n; v++) {
        let steps = 0;
        for (let u = r.parent[v]; u >= 0; u = r.parent[u]) expect(++steps).toBeLessThanOrEqual(n);
      }
      for (const mv of r.moved) {
        expect(mv.kFrom - mv.kTo).toBeGreaterThan(REPARENT_MARGIN);
        expect(mv.kTo).toBeLessThanOrEqual(DIFF_GAUSSIAN);
      }
      // the result is a valid tree for recoverFamily's fixed-tree scoring
      const D = R;
      const fr = recoverFamily({ n, data: D }, new Array(n).fill(0), { mode: 'finetune', tree: r.parent });
      expect(fr.parent).toEqual(r.parent);
      let cost = 0;
      r.parent.forEach((q, v) => { if (q >= 0) cost += D[q * n + v]; });
      expect(fr.cost).toBeCloseTo(cost, 12);
    }
    expect(moves).toBeGreaterThan(100); // the rule fires often on random evidence
  });
  test("recoverFamily's fixed tree: validated (one root, no cycle, no forbidden edge)", () => {
    const D = sym(3, () => 1);
    expect(() => recoverFamily({ n: 3, data: D }, [0, 0, 0], { tree: [-1, 2, 1] })).toThrow(/cycle/);
    expect(() => recoverFamily({ n: 3, data: D }, [0, 0, 0], { tree: [-1, -1, 0] })).toThrow(/exactly one root/);
    expect(() => recoverFamily({ n: 3, data: D }, [0, 0, 0], { tree: [-1, 0] })).toThrow(/exactly one root/);
    const forbidden = new Uint8Array(9);
    forbidden[0 * 3 + 1] = 1;
    expect(() => recoverFamily({ n: 3, data: D }, [0, 0, 0], { tree: [-1, 0, 0], forbidden })).toThrow(/forbidden/);
  });
});
