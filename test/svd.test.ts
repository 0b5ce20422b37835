// The blocked SVD of the core (native/pairwise/svd.cc: Householder bidiagonalisation with
// level-3 updates, implicit-shift QR on the bidiagonal) against numpy.linalg.svd (LAPACK) on
// the matrices rank decisions meet: random, graded down to 1e-15, merged-LoRA differences of
// rank 2..64 with storage noise, repeated values, zero, 1 x 1, tall and wide. Errors are
// counted in units of eps x sigma_max (eps = 2^-52), which is what a rank tolerance compares
// with. Timing lives in `npm run bench:speed` (section svd), never here.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { native } from '../lib/core/binding';
import { tmpDir } from './helpers/tmp';

interface SvdResult {
  values: Float64Array;
  seconds: number;
  kernels: string;
}
interface SvdTesting {
  singularValues(a: Float64Array, m: number, n: number, options?: { threads?: number; method?: 'blocked' | 'jacobi'; kernels?: 'auto' | 'baseline' | 'avx2' }): SvdResult;
  bidiagonalSingularValues(d: Float64Array, e: Float64Array): Float64Array;
}
interface Case {
  name: string;
  m: number;
  n: number;
  file: string;
  values: number[];
  rank: number;
}

const EPS = 2 ** -52;
const svd = () => native().testing as unknown as SvdTesting;

/** Bound on |s - s_numpy| in eps sigma_max: both are backward stable (p(n) eps ||A||); observed
 *  up to about 0.15 max(m, n) + 3. */
const bound = (m: number, n: number) => 4 + 0.25 * Math.max(m, n);

function errorUnits(got: Float64Array, want: number[]): number {
  if (want.length === 0) return 0;
  const unit = want[0] > 0 ? EPS * want[0] : Number.MIN_VALUE;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / unit);
  return worst;
}

let tmp: ReturnType<typeof tmpDir>;
let cases: Case[];
const matrices = new Map<string, Float64Array>();
beforeAll(() => {
  tmp = tmpDir();
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'helpers', 'numpy_svd.py'), tmp.dir], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`numpy reference failed (is python3-numpy installed?): ${r.stderr}`);
  cases = JSON.parse(r.stdout) as Case[];
  for (const c of cases) {
    const b = fs.readFileSync(c.file);
    matrices.set(c.name, new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8).slice());
  }
});
afterAll(() => tmp.cleanup());

describe('singular values against numpy.linalg.svd', () => {
  test('every case, both kernel sets: each value within a few eps sigma_max of numpy, largest first', () => {
    expect(cases.length).toBeGreaterThan(30);
    const report: string[] = [];
    for (const c of cases) {
      const a = matrices.get(c.name)!;
      for (const kernels of ['auto', 'baseline'] as const) {
        const r = svd().singularValues(a, c.m, c.n, { kernels });
        expect(r.values.length).toBe(Math.min(c.m, c.n));
        for (let i = 1; i < r.values.length; i++) expect(r.values[i]).toBeLessThanOrEqual(r.values[i - 1]);
        for (const s of r.values) expect(s).toBeGreaterThanOrEqual(0);
        const err = errorUnits(r.values, c.values);
        if (!(err <= bound(c.m, c.n))) report.push(`${c.name} (${kernels}): ${err.toFixed(2)} eps sigma_max > ${bound(c.m, c.n)}`);
      }
    }
    expect(report).toEqual([]);
  });

  test('numerical ranks (sigma_max x max(m, n) x eps) equal numpy.linalg.matrix_rank', () => {
    let checked = 0;
    for (const c of cases) {
      const tol = (c.values[0] ?? 0) * Math.max(c.m, c.n) * EPS;
      // skip a case with a value within a factor of 2 of the threshold: no method decides it
      if (c.values.some((s) => s > tol / 2 && s < 2 * tol)) continue;
      const r = svd().singularValues(matrices.get(c.name)!, c.m, c.n);
      const stol = (r.values[0] ?? 0) * Math.max(c.m, c.n) * EPS;
      expect([c.name, r.values.filter((s) => s > stol).length]).toEqual([c.name, c.rank]);
      checked++;
    }
    expect(checked).toBeGreaterThan(30);
    const lora = cases.filter((c) => c.name.startsWith('merged-LoRA') && c.name.includes('f64'));
    expect(lora.map((c) => c.rank)).toEqual([2, 24, 64]);
  });

  test('the Jacobi reference (the SVD of the core before) agrees too, less closely (small cases)', () => {
    for (const c of cases.filter((x) => Math.max(x.m, x.n) <= 100 && !x.name.startsWith('scale'))) {
      const r = svd().singularValues(matrices.get(c.name)!, c.m, c.n, { method: 'jacobi' });
      expect(r.kernels).toBe('jacobi');
      // its rotations stop at |gamma| <= 1e-15 sqrt(alpha beta): up to about 1.3 n eps sigma_max
      expect([c.name, errorUnits(r.values, c.values) <= 8 + 2 * Math.max(c.m, c.n)]).toEqual([c.name, true]);
    }
  });
});

describe('singular values: threads, shapes, special input', () => {
  test('the same values bit for bit on 1, 2 and 3 threads', () => {
    for (const name of ['gaussian 256 x 256', 'merged-LoRA difference, rank 64, f32 storage, 256 x 256', 'gaussian 257 x 33', 'gaussian 60 x 200']) {
      const c = cases.find((x) => x.name === name)!;
      const a = matrices.get(name)!;
      const one = Array.from(svd().singularValues(a, c.m, c.n, { threads: 1 }).values);
      for (const threads of [2, 3]) expect(Array.from(svd().singularValues(a, c.m, c.n, { threads }).values)).toEqual(one);
    }
  });

  test('a matrix and its transpose have the same values', () => {
    const c = cases.find((x) => x.name === 'gaussian 200 x 60')!;
    const a = matrices.get(c.name)!;
    const t = new Float64Array(a.length);
    for (let i = 0; i < c.m; i++) for (let j = 0; j < c.n; j++) t[j * c.m + i] = a[i * c.n + j];
    const s = svd().singularValues(a, c.m, c.n).values, st = svd().singularValues(t, c.n, c.m).values;
    expect(errorUnits(st, Array.from(s))).toBeLessThanOrEqual(bound(c.m, c.n));
  });

  test('empty, NaN and infinite input', () => {
    expect(svd().singularValues(new Float64Array(0), 0, 5).values.length).toBe(0);
    const a = new Float64Array([1, 2, NaN, 4]);
    expect(Array.from(svd().singularValues(a, 2, 2).values).every(Number.isNaN)).toBe(true);
    a[2] = Infinity;
    expect(Array.from(svd().singularValues(a, 2, 2).values).every(Number.isNaN)).toBe(true);
    expect(() => svd().singularValues(new Float64Array(6), 2, 2)).toThrow(/m x n values/);
  });

  test('the bidiagonal QR stage keeps small values to high relative accuracy (Demmel-Kahan)', () => {
    // graded bidiagonal: d_i = 10^(-2i), e_i = 10^(-2i-1); values span 1 .. 1e-98, each
    // determined to a few ulps relative to itself by the entries (Demmel & Kahan 1990)
    const n = 50;
    const d = Float64Array.from({ length: n }, (_, i) => 10 ** (-2 * i));
    const e = Float64Array.from({ length: n - 1 }, (_, i) => 10 ** (-2 * i - 1));
    const s = svd().bidiagonalSingularValues(d, e);
    // the same matrix reversed (bulge chased from the other end) must agree to relative accuracy
    const dr = d.slice().reverse(), er = e.slice().reverse();
    // reversal of an upper bidiagonal is lower bidiagonal; its transpose is upper with the
    // same values: diagonal dr, superdiagonal er
    const sr = svd().bidiagonalSingularValues(dr, er);
    for (let i = 0; i < n; i++) {
      expect(Math.abs(s[i] - sr[i]) / s[i]).toBeLessThan(1e-12);
      // sigma_i ~ d_i (strong grading): within 1 %
      expect(Math.abs(s[i] - d[i]) / d[i]).toBeLessThan(0.01);
    }
    // a zero on the diagonal: one value is exactly zero, the others stay positive
    const z = svd().bidiagonalSingularValues(new Float64Array([3, 0, 2, 1]), new Float64Array([1, 1, 1]));
    expect(z[3]).toBe(0);
    expect(z[2]).toBeGreaterThan(0.1);
  });
});
