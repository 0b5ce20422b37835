// Families from related pairs (connected components), the weakest link, the per-family metric
// and kurtosis-layer choices, and the family agreement scores of the benchmark.
import { relatedFamilies, weakestLink } from '../lib/method/clustering';
import { adapterLike, chooseKurtosisLayers, chooseMetric, pairRankEvidence } from '../lib/method/choices';
import { familyAgreement } from '../lib/method/evaluation';
import { pairIndex } from '../lib/method/matrix';

/** A pair predicate from a list of pairs. */
const pairsOf = (n: number, list: [number, number][]) => {
  const set = new Set(list.map(([i, j]) => pairIndex(n, i, j)));
  return (p: number) => set.has(p);
};

describe('relatedFamilies', () => {
  test('a chain of any length is one family; independent runs are never joined', () => {
    const n = 12;
    // 0-1-2-...-7 a chain (only neighbours related), 8-9 a pair, 10 and 11 singletons
    const chain: [number, number][] = Array.from({ length: 7 }, (_, k) => [k, k + 1]);
    const r = relatedFamilies(n, () => true, pairsOf(n, [...chain, [8, 9]]));
    expect(r.families).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [8, 9], [10], [11]]);
    expect(r.groups).toEqual([Array.from({ length: n }, (_, i) => i)]);
    expect(r.duplicates).toEqual([]);
  });

  test('copies join their family and are listed as duplicates; incomparable models are their own group', () => {
    const n = 5;
    // 0-1 related, 2 an exact copy of 0, 3 unrelated, 4 comparable with nothing
    const comparable = pairsOf(n, [[0, 1], [0, 2], [1, 2], [0, 3], [1, 3], [2, 3]]);
    const r = relatedFamilies(n, comparable, pairsOf(n, [[0, 1], [0, 2], [1, 2]]), pairsOf(n, [[0, 2]]));
    expect(r.families).toEqual([[0, 1, 2], [3], [4]]);
    expect(r.groups).toEqual([[0, 1, 2, 3], [4]]);
    expect(r.duplicates).toEqual([[0, 2]]);
    expect(() => relatedFamilies(2, () => false, () => true)).toThrow(/related but not comparable/);
    expect(relatedFamilies(0, () => true, () => true).families).toEqual([]);
  });
});

describe('weakestLink', () => {
  test('the bottleneck of the strongest spanning tree: what holds the family together', () => {
    // 0-1 strong, 1-2 strong, 0-2 weak, 2-3 the only link of 3 (medium)
    const s: Record<string, number> = { '0,1': 100, '1,2': 90, '0,2': 5, '2,3': 40, '0,3': 1, '1,3': 2 };
    const strength = (i: number, j: number) => s[`${Math.min(i, j)},${Math.max(i, j)}`] ?? -1;
    const all = () => true;
    expect(weakestLink([0, 1, 2, 3], strength, all)).toEqual({ i: 2, j: 3, strength: 40 });
    expect(weakestLink([0, 1, 2], strength, all)).toEqual({ i: 1, j: 2, strength: 90 });
    expect(weakestLink([0], strength, all)).toBeNull();
    // not connected by accepted links
    expect(weakestLink([0, 1, 3], strength, (i, j) => i + j === 1)).toBeNull();
  });
});

describe('metric auto', () => {
  // per pair: ranks of its ranked layers (capacity 64 each)
  const ev = (ranks: number[]) => pairRankEvidence(ranks, ranks.map(() => 64));
  test('pair evidence: uniformity over the layers that differ, the modal rank, near the top, untouched layers, saturation', () => {
    const lora = ev([0, 8, 8, 0, 0, 8, 8, 0]);
    expect(lora).toEqual({ rankFraction: 32 / 512, uniformity: 1, modalRank: 8, nearTop: 1, untouched: 0.5, saturated: false });
    expect(adapterLike(lora)).toBe(true);
    // measured on the medium zoo: an SGD fine-tune, low-rank but not uniformly so
    const sgd = ev([11, 9, 18, 20, 6, 6, 11, 11, 3, 3, 10, 7, 2, 2, 7, 4]);
    expect(sgd.rankFraction).toBeLessThan(0.25);
    expect(sgd.uniformity).toBeCloseTo(3 / 16, 12); // 11 three times
    expect(sgd.modalRank).toBe(11);
    expect(sgd.untouched).toBe(0);
    expect(adapterLike(sgd)).toBe(false);
    // an AdamW fine-tune: every layer near the top, but none untouched and no common rank
    const adamw = ev([16, 15, 18, 22, 18, 21, 21, 24, 21, 21, 24, 23, 25, 23, 25, 22]);
    expect(adamw.nearTop).toBe(1);
    expect(adapterLike(adamw)).toBe(false);
    // rank 8 and rank 16 adapters on a BF16 parent (medium zoo): some singular values hidden
    expect(adapterLike(ev([0, 8, 7, 0, 0, 7, 8, 0, 0, 6, 8, 0, 0, 7, 8, 0]))).toBe(true);
    expect(adapterLike(ev([0, 12, 15, 0, 0, 11, 15, 0, 0, 12, 16, 0, 0, 10, 14, 0]))).toBe(true);
    // ... but a spread below 0.6 of the top is not one
    expect(adapterLike(ev([0, 16, 9, 0, 0, 16, 9, 0]))).toBe(false);
    // ties of the mode go to the lower rank
    expect(ev([4, 4, 9, 9]).modalRank).toBe(4);
    // quantisation noise: full rank everywhere, uniform but saturated
    const quant = ev([64, 64, 64, 64]);
    expect(quant.saturated).toBe(true);
    expect(adapterLike(quant)).toBe(false);
    // an exact copy: nothing differs
    expect(ev([0, 0, 0])).toMatchObject({ rankFraction: 0, modalRank: 0, untouched: 0, saturated: false });
    expect(Number.isNaN(ev([0, 0]).uniformity)).toBe(true);
    expect(adapterLike(ev([0, 0]))).toBe(false);
    expect(Number.isNaN(ev([]).rankFraction)).toBe(true);
    // NaN layers (not compared) are left out
    expect(ev([NaN, 4, 4])).toMatchObject({ uniformity: 1, modalRank: 4, rankFraction: 8 / 128 });
    // a uniform rank above half the capacity is no adapter we can tell from a fine-tune
    expect(adapterLike(ev([40, 40, 40]))).toBe(false);
    // one layer in five at another rank still passes (0.8)
    expect(adapterLike(ev([8, 8, 8, 8, 3]))).toBe(true);
    expect(adapterLike(ev([8, 8, 8, 3, 3]))).toBe(false);
  });

  test('adapter-like pairs (merged LoRAs) use the rank; unsaturated low ranks too; saturated or full-rank ones RMS', () => {
    const lora = chooseMetric([ev([0, 8, 8, 0]), ev([0, 16, 16, 0]), ev([0, 8, 8, 0]), ev([64, 64, 64, 64]), ev([0, 0, 0, 0])]);
    expect(lora).toMatchObject({ metric: 'rank', differing: 4, adapterLike: 3, pairs: 5 });
    expect(lora.rankFraction).toBeCloseTo(16 / 256, 12); // median of 0, 1/16, 1/16, 1/8, 1
    expect(lora.why).toMatch(/low-rank adapters: 3 of 4/);
    // Llama-like fine-tunes: not adapters, but low-rank and far from the capacity: rank
    const llm = chooseMetric([ev([19, 32, 18, 28]), ev([8, 12, 9, 10]), ev([16, 21, 15, 20]), ev([40, 45, 38, 50])]);
    expect(llm).toMatchObject({ metric: 'rank', adapterLike: 0 });
    expect(llm.why).toMatch(/unsaturated/);
    // SGD ViTs: a low median, but the far pairs reach the capacity: RMS
    const sgd = chooseMetric([ev([11, 9, 18, 20]), ev([2, 3, 7, 4]), ev([6, 6, 3, 3]), ev([62, 61, 62, 62])]);
    expect(sgd.metric).toBe('rms');
    expect(sgd.rankFraction!).toBeLessThan(0.5);
    expect(sgd.why).toMatch(/saturates/);
    const full = chooseMetric([ev([60, 50, 55, 58]), ev([40, 45, 50, 35]), ev([20, 22, 30, 25])]);
    expect(full.metric).toBe('rms');
    expect(full.why).toMatch(/full-rank/);
    // half the differing pairs adapter-like: rank
    expect(chooseMetric([ev([4, 4]), ev([3, 60])]).metric).toBe('rank');
    expect(chooseMetric([ev([0, 0]), ev([0, 0])])).toMatchObject({ metric: 'rank', differing: 0 }); // copies only: rank 0 is a distance too
    expect(chooseMetric([]).why).toMatch(/single model/);
    expect(chooseMetric([ev([]), ev([])])).toMatchObject({ metric: 'rms', rankFraction: null });
  });
});

describe('kurtosis layers', () => {
  const layer = (name: string, isDefault: boolean, changed: number, compared = 10) => ({ name, isDefault, changed, compared });
  test('the defaults that vary; when none varies, every varying square layer; when nothing varies, the defaults', () => {
    const full = chooseKurtosisLayers([layer('l0.out', true, 10), layer('l1.out', true, 9), layer('l0.q', false, 10)], 'ViT output', 5);
    expect(full).toMatchObject({ layers: ['l0.out', 'l1.out'], rule: 'default' });
    const partly = chooseKurtosisLayers([layer('l0.out', true, 10), layer('l1.out', true, 2)], 'ViT output', 5);
    expect(partly.layers).toEqual(['l0.out']);
    expect(partly.why).toMatch(/1 unchanged left out/);
    // a LoRA family: the adapters change query and value only
    const lora = chooseKurtosisLayers([layer('l0.out', true, 0), layer('l0.q', false, 10), layer('l0.v', false, 10), layer('l0.k', false, 0)], 'ViT output', 5);
    expect(lora).toMatchObject({ layers: ['l0.q', 'l0.v'], rule: 'varying' });
    expect(lora.why).toMatch(/unchanged/);
    const copies = chooseKurtosisLayers([layer('l0.out', true, 0), layer('l0.q', false, 0)], 'ViT output', 3);
    expect(copies).toMatchObject({ layers: ['l0.out'], rule: 'default-constant' });
    expect(chooseKurtosisLayers([layer('l0.out', true, 0, 0)], 'ViT output', 1).rule).toBe('default');
  });
});

describe('familyAgreement', () => {
  test('exact families and the adjusted Rand index', () => {
    const truth = [['a', 'b', 'c'], ['d', 'e'], ['f']];
    const same = familyAgreement([['c', 'b', 'a'], ['e', 'd'], ['f']], truth);
    expect(same).toMatchObject({ exact: 3, truthFamilies: 3, exactFraction: 1, adjustedRand: 1, wrong: [] });
    // merge {d, e} with {f}: a known ARI
    const merged = familyAgreement([['a', 'b', 'c'], ['d', 'e', 'f']], truth);
    expect(merged.exact).toBe(1);
    // contingency: [3,0],[0,2],[0,1]: sum C(nij,2) = 3 + 1 = 4; rows 3 + 1 + 0 = 4; cols 3 + 3 = 6; C(6,2) = 15
    // ARI = (4 - 4 * 6 / 15) / ((4 + 6) / 2 - 4 * 6 / 15) = 2.4 / 3.4
    expect(merged.adjustedRand).toBeCloseTo(2.4 / 3.4, 12);
    expect(merged.wrong).toEqual([{ truth: ['d', 'e'], predicted: [['d', 'e', 'f']] }, { truth: ['f'], predicted: [['d', 'e', 'f']] }]);
    // models missing from the prediction are singletons
    expect(familyAgreement([['a', 'b', 'c'], ['d', 'e']], truth).exact).toBe(3);
    expect(() => familyAgreement([['a'], ['a']], truth)).toThrow(/two predicted families/);
  });
});
