// The shape of the difference between two models (issue 13.2, fans vs chains): the native
// moments of every pair's difference on a strided sample of rows (native/pairwise/diff_moments.h)
// against a float64 two-pass reference, and the rule that reads them (lib/method/difference_shape.ts).
import * as path from 'node:path';

import { native } from '../lib/core/binding';
import { differenceMoments } from '../lib/io/diff_moments';
import { DIFF_GAUSSIAN, DIFF_MARGIN, DIFF_WINDOW, differenceKurtosis, siblingPenalty } from '../lib/method/difference_shape';
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
