// The relatedness test (lib/method/relatedness.ts) on synthetic weights with known answers; the
// sums are computed here from the values (test/helpers/relatedness.ts: the pass's contract).
import { decide, measureNull, pairStatistic, PairStatistic, RELATED_R0, RELATEDNESS_ALPHA, TensorSums, testPairs } from '../lib/method/relatedness';
import { Rng } from './helpers/reference';
import { tensorSums } from './helpers/relatedness';

type Model = Float64Array[];
const N = 32; // square tensors of N x N
const T = 6; // tensors per model

function randomModel(rng: Rng, scale = 1): Model {
  return Array.from({ length: T }, () => Float64Array.from({ length: N * N }, () => scale * rng.normal()));
}
/** A model whose tensors correlate with `base` at r = 1 / sqrt(1 + noise^2). */
function relative(rng: Rng, base: Model, noise: number): Model {
  return base.map((w) => w.map((x) => x + noise * rng.normal()));
}
function sums(a: Model, b: Model, rows = N, rowElems = N): TensorSums[] {
  return a.map((w, t) => tensorSums(`layer.${t}.weight`, w, b[t], rows, rowElems));
}
const stat = (a: Model, b: Model) => pairStatistic(sums(a, b));
function allPairs(models: Model[]): { stats: PairStatistic[]; pairs: [number, number][] } {
  const stats: PairStatistic[] = [], pairs: [number, number][] = [];
  for (let i = 0; i < models.length; i++) for (let j = i + 1; j < models.length; j++) { stats.push(stat(models[i], models[j])); pairs.push([i, j]); }
  return { stats, pairs };
}
const rms = (v: number[]) => Math.sqrt(v.reduce((a, b) => a + b * b, 0) / v.length);

describe('relatedness: the pooled statistic and its measured null', () => {
  test('independent models: every pair unrelated, the calibrated z is N(0, 1)', () => {
    const rng = new Rng(1);
    const models = Array.from({ length: 12 }, () => randomModel(rng, 0.02));
    const { stats } = allPairs(models);
    const t = testPairs(stats);
    expect(t.tested).toBe(66);
    expect(t.decisions.every((d) => d.verdict === 'unrelated')).toBe(true);
    const z = t.decisions.map((d) => d.z!);
    expect(rms(z)).toBeGreaterThan(0.7);
    expect(rms(z)).toBeLessThan(1.4);
    expect(Math.max(...z.map(Math.abs))).toBeLessThan(4);
    expect(t.null.measured).toBeGreaterThan(0.7);
    expect(t.null.measured).toBeLessThan(1.4);
    expect(t.null.draws).toBe(66 * T);
    for (const d of t.decisions) {
      expect(Math.abs(d.r!)).toBeLessThan(0.03);
      expect(d.excessHigh!).toBeLessThan(RELATED_R0);
      expect(d.p!).toBeGreaterThan(RELATEDNESS_ALPHA / 66);
    }
  });

  test('relatives: related, with the pooled r of the construction (1 / sqrt(1 + s^2))', () => {
    const rng = new Rng(2);
    const base = randomModel(rng);
    for (const s of [0.1, 1, 4.9]) {
      const st = stat(base, relative(rng, base, s));
      const d = testPairs([st]).decisions[0];
      expect(d.verdict).toBe('related');
      expect(Math.abs(d.r! - 1 / Math.sqrt(1 + s * s))).toBeLessThan(0.03);
      expect(d.excessLow!).toBeGreaterThan(0);
      expect(d.identical).toBe(false);
    }
  });

  test('a chain stays related link by link although its ends drift apart', () => {
    const rng = new Rng(3);
    const chain: Model[] = [randomModel(rng)];
    for (let k = 1; k < 8; k++) chain.push(relative(rng, chain[k - 1], 1));
    const { stats, pairs } = allPairs(chain);
    const t = testPairs(stats);
    pairs.forEach(([i, j], k) => { if (j === i + 1) expect(t.decisions[k].verdict).toBe('related'); });
    const ends = t.decisions[pairs.findIndex(([i, j]) => i === 0 && j === 7)];
    expect(ends.r!).toBeLessThan(0.45); // 1 / sqrt(8): far less than neighbours
    expect(ends.verdict).toBe('related');
  });

  test('exact copies: identical values, related, finite statistics', () => {
    const rng = new Rng(4);
    const a = randomModel(rng);
    const st = stat(a, a.map((w) => Float64Array.from(w)));
    expect(st.identical).toBe(true);
    expect(st.tensors.every((t) => t.identical && t.used)).toBe(true);
    const d = testPairs([st]).decisions[0];
    expect(d.verdict).toBe('related');
    expect(d.identical).toBe(true);
    expect(Number.isFinite(d.z!)).toBe(true);
    expect(d.r!).toBeCloseTo(1, 12);
    // one differing value breaks the identity, not the relation
    const b = a.map((w) => Float64Array.from(w));
    b[2][17] += 1e-9;
    const st2 = stat(a, b);
    expect(st2.identical).toBe(false);
    expect(testPairs([st2]).decisions[0].verdict).toBe('related');
  });

  test('structure shared by every row pairing (a common column pattern) is subtracted: independent models stay unrelated', () => {
    const rng = new Rng(5);
    const pattern = Array.from({ length: T }, () => Float64Array.from({ length: N }, () => rng.normal()));
    const model = () => pattern.map((c) => Float64Array.from({ length: N * N }, (_, k) => c[k % N] + rng.normal()));
    const models = Array.from({ length: 6 }, model);
    const { stats } = allPairs(models);
    for (const s of stats) expect(s.r).toBeGreaterThan(0.3); // the raw correlation is large
    const t = testPairs(stats);
    for (const d of t.decisions) {
      expect(d.verdict).toBe('unrelated');
      expect(Math.abs(d.excess!)).toBeLessThan(0.05);
    }
    // a relative of one of them is still found
    const rel = pairStatistic(sums(models[0], relative(rng, models[0], 1)));
    expect(testPairs([...stats, rel]).decisions[stats.length].verdict).toBe('related');
  });

  test('a null wider than i.i.d. theory (shared heavy columns) is measured, and z is calibrated by it', () => {
    const rng = new Rng(6);
    // a few columns carry most of the variance in every model: r of independent models varies
    // far more than 1/sqrt(n) predicts
    const scale = Float64Array.from({ length: N }, (_, c) => (c < 2 ? 12 : 1));
    const model = () => Array.from({ length: T }, () => Float64Array.from({ length: N * N }, (_, k) => scale[k % N] * rng.normal()));
    const models = Array.from({ length: 14 }, model);
    const { stats } = allPairs(models);
    const raw = stats.map((s) => s.rawZ);
    expect(rms(raw)).toBeGreaterThan(2); // uncalibrated, independent pairs would look related
    const t = testPairs(stats);
    expect(t.null.kappa).toBeGreaterThan(4);
    const z = t.decisions.map((d) => d.z!);
    expect(rms(z)).toBeGreaterThan(0.6);
    expect(rms(z)).toBeLessThan(1.5);
    expect(t.decisions.filter((d) => d.verdict === 'related')).toHaveLength(0);
  });

  test('the null is measured without the related pairs (their shifted rows still correlate)', () => {
    const rng = new Rng(7);
    // rows correlate with their neighbours within a model (a smooth row profile), so the
    // shifted comparison of two relatives is no null draw
    const smooth = (): Model => Array.from({ length: T }, () => {
      const w = new Float64Array(N * N);
      for (let c = 0; c < N; c++) {
        let x = rng.normal();
        for (let r = 0; r < N; r++) { x = 0.9 * x + 0.44 * rng.normal(); w[r * N + c] = x; }
      }
      return w;
    });
    const roots = Array.from({ length: 4 }, smooth);
    const models = roots.flatMap((m) => [m, relative(rng, m, 0.3), relative(rng, m, 0.3)]);
    const { stats, pairs } = allPairs(models);
    const all = measureNull(stats);
    const t = testPairs(stats);
    expect(t.null.excludedRelated).toBe(12);
    expect(t.null.measured).toBeLessThan(all.measured);
    pairs.forEach(([i, j], k) => expect(t.decisions[k].verdict).toBe(Math.floor(i / 3) === Math.floor(j / 3) ? 'related' : 'unrelated'));
  });

  test('undecided: too little data to tell', () => {
    const rng = new Rng(8);
    const small = (): Float64Array => Float64Array.from({ length: 25 }, () => rng.normal());
    const a = [small(), small()];
    const b = a.map((w) => w.map((x) => x + 2.5 * rng.normal()));
    const st = pairStatistic(a.map((w, t) => tensorSums(`t${t}`, w, b[t], 5, 5)));
    expect(st.comparable).toBe(true);
    const d = testPairs([st]).decisions[0];
    expect(d.verdict).toBe('undecided');
    expect(d.excessHigh!).toBeGreaterThan(RELATED_R0);
  });

  test('Bonferroni: the same evidence is weaker among more pairs', () => {
    const rng = new Rng(9);
    const base = randomModel(rng);
    const st = stat(base, relative(rng, base, 14)); // r ~ 0.07: z about 6
    const nul = measureNull([st]);
    const one = decide(st, { ...nul, kappa: 1, draws: 1e6 }, 1, { r0: 0.03 });
    const many = decide(st, { ...nul, kappa: 1, draws: 1e6 }, 1e12, { r0: 0.03 });
    expect(one.z!).toBeGreaterThan(4);
    expect(one.z!).toBeLessThan(9);
    expect(one.verdict).toBe('related');
    expect(many.verdict).not.toBe('related');
    expect(many.p).toBe(one.p);
  });

  test('significant but weaker than r0 is no relation: shared structure in large tensors', () => {
    const rng = new Rng(13);
    // 16 tensors of 128 x 128 with a tiny common component (r = 0.02): z about 11
    const big = () => Array.from({ length: 16 }, () => Float64Array.from({ length: 128 * 128 }, () => rng.normal()));
    const a = big();
    const b = a.map((w) => w.map((x) => 0.02 * x + rng.normal()));
    const st = pairStatistic(a.map((w, t) => tensorSums(`t${t}`, w, b[t], 128, 128)));
    const d = testPairs([st]).decisions[0];
    expect(d.z!).toBeGreaterThan(4);
    expect(d.p!).toBeLessThan(RELATEDNESS_ALPHA);
    expect(d.excess!).toBeLessThan(RELATED_R0);
    expect(d.verdict).toBe('unrelated'); // a relation of r0 or more is excluded
  });

  test('anti-correlated weights are not called related (the test is one-sided)', () => {
    const rng = new Rng(10);
    const a = randomModel(rng);
    const d = testPairs([stat(a, a.map((w) => w.map((x) => -x)))]).decisions[0];
    expect(d.verdict).not.toBe('related');
    expect(d.z!).toBeLessThan(-100);
  });
});

describe('relatedness: what is left out, and why', () => {
  const rng = new Rng(11);
  const w = () => Float64Array.from({ length: N * N }, () => rng.normal());

  test('constant, all-NaN and one-row tensors are left out with a reason; the rest still counts', () => {
    const a = w();
    const terms = pairStatistic([
      tensorSums('constant', new Float64Array(N * N).fill(0.5), w(), N, N),
      tensorSums('nan', new Float64Array(N * N).fill(NaN), w(), N, N),
      tensorSums('one_row', a.subarray(0, N), a.subarray(0, N), 1, N),
      tensorSums('good', a, a.map((x) => x + rng.normal()), N, N),
      ...[0, 1].map((k) => { const x = w(); return tensorSums(`good${k}`, x, x.map((v) => v + rng.normal()), N, N); }),
    ]);
    const reason = (name: string) => terms.tensors.find((t) => t.name === name)!.reason;
    expect(reason('constant')).toMatch(/constant values in the first model/);
    expect(reason('nan')).toMatch(/no finite values compared/);
    expect(reason('one_row')).toMatch(/no shifted null/);
    expect(reason('good')).toBeUndefined();
    expect(terms.used).toBe(3);
    expect(terms.comparable).toBe(true);
    expect(testPairs([terms]).decisions[0].verdict).toBe('related');
  });

  test('one tensor gives one null draw: Student t with 1 degree of freedom, so only strong evidence is related', () => {
    const a = w();
    const strong = testPairs([pairStatistic([tensorSums('x', a, a.map((x) => x + 0.1 * rng.normal()), N, N)])]);
    expect(strong.null.draws).toBe(1);
    expect(strong.decisions[0].verdict).toBe('related');
    const weaker = testPairs([pairStatistic([tensorSums('x', a, a.map((x) => x + 2 * rng.normal()), N, N)])]);
    expect(weaker.decisions[0].verdict).toBe('undecided');
    expect(weaker.decisions[0].z!).toBeGreaterThan(10);
  });

  test('NaN positions are skipped and counted; the statistic uses the finite ones', () => {
    const a = w();
    const b = a.map((x) => x + 0.5 * rng.normal());
    for (let k = 0; k < 100; k++) b[k * 7] = NaN;
    const s = tensorSums('x', a, b, N, N);
    expect(s.skipped).toBe(100);
    expect(s.count).toBe(N * N - 100);
    expect(pairStatistic([s]).tensors[0].used).toBe(true);
  });

  test('a pair with nothing comparable is "not comparable": no NaN anywhere', () => {
    const st = pairStatistic([tensorSums('constant', new Float64Array(64).fill(1), new Float64Array(64).fill(1), 8, 8)]);
    expect(st.comparable).toBe(false);
    const none = pairStatistic([]);
    const t = testPairs([st, none]);
    expect(t.tested).toBe(0);
    for (const d of t.decisions) {
      expect(d.verdict).toBe('not comparable');
      expect(d.z).toBeNull();
      expect(d.p).toBeNull();
      expect(JSON.stringify(d)).not.toMatch(/NaN/);
    }
  });

  test('options are checked', () => {
    expect(() => testPairs([], { alpha: 0 })).toThrow(/alpha/);
    expect(() => testPairs([], { r0: 1 })).toThrow(/r0/);
  });
});
