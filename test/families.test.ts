// Families from related pairs (connected components), the weakest link, the per-family metric
// and kurtosis-layer choices, and the family agreement scores of the benchmark.
import { relatedFamilies, weakestLink } from '../lib/method/clustering';
import { chooseKurtosisLayers, chooseMetric } from '../lib/method/choices';
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
  test('low-rank differences (merged adapters) use the rank; full-rank ones RMS; the median decides', () => {
    const lora = chooseMetric([0.12, 0.25, 0.2, 0.06, 1, 0]); // a quantised copy (1) and an exact copy (0) among them
    expect(lora.metric).toBe('rank');
    expect(lora.rankFraction).toBeCloseTo(0.16, 10);
    expect(lora.why).toMatch(/low-rank/);
    const full = chooseMetric([1, 1, 0.97, 0, 1]);
    expect(full.metric).toBe('rms');
    expect(full.why).toMatch(/full-rank/);
    expect(chooseMetric([]).why).toMatch(/single model/);
    expect(chooseMetric([NaN, NaN])).toMatchObject({ metric: 'rms', rankFraction: null });
    expect(chooseMetric([0.5]).metric).toBe('rank');
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
