import { minimumArborescenceMatrix } from '../lib/method/arborescence';
import {
  againstTrend, defaultKurtosisLayers, edgeCosts, KurtosisMode, LLAMA_KURTOSIS_PATTERN, meanOffDiagonal,
  recoverFamily, summedKurtosis, VIT_KURTOSIS_PATTERN,
} from '../lib/method/direction';
import { Rng } from './helpers/reference';
import { expectInvalid } from './helpers/errors';

// Global lookups are slow inside jest's VM context: alias them.
const { abs, sqrt, floor } = Math;


/**
 * A synthetic family shaped like a VTHR tree: root -> `children` children -> `grand` each.
 * Weights are random-walk vectors (child = parent + noise) in `dim` dimensions, so parent-child
 * distances are clearly shorter than sibling ones; kurtosis moves by `step` per generation
 * (negative: fine-tuning, positive: continued pre-training) plus a little jitter. Models are
 * listed in a shuffled order so that index order carries no information.
 */
function syntheticFamily(rng: Rng, opts: { children: number; grand: number; step: number; dim?: number }) {
  const dim = opts.dim ?? 64;
  const vecs: number[][] = [];
  const ku: number[] = [];
  const parentOf: number[] = [];
  const add = (p: number): number => {
    const v = new Array<number>(dim);
    for (let d = 0; d < dim; d++) v[d] = (p < 0 ? 10 * rng.normal() : vecs[p][d] + rng.normal());
    vecs.push(v);
    ku.push(p < 0 ? 5 : ku[p] + opts.step * (1 + 0.2 * rng.next()));
    parentOf.push(p);
    return vecs.length - 1;
  };
  const root = add(-1);
  for (let c = 0; c < opts.children; c++) {
    const child = add(root);
    for (let g = 0; g < opts.grand; g++) add(child);
  }
  const n = vecs.length;
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) { const j = floor(rng.next() * (i + 1)); [perm[i], perm[j]] = [perm[j], perm[i]]; }
  // perm[newIndex] = oldIndex
  const inv = new Array<number>(n);
  perm.forEach((old, i) => { inv[old] = i; });
  const D: number[][] = [];
  for (let i = 0; i < n; i++) {
    D.push([]);
    for (let j = 0; j < n; j++) {
      let s = 0;
      const a = vecs[perm[i]];
      const b = vecs[perm[j]];
      for (let d = 0; d < dim; d++) s += (a[d] - b[d]) ** 2;
      D[i].push(sqrt(s / dim));
    }
  }
  return {
    D,
    ku: perm.map((old) => ku[old]),
    parent: perm.map((old) => (parentOf[old] < 0 ? -1 : inv[parentOf[old]])),
    root: inv[root],
  };
}

describe('edgeCosts', () => {
  const D = [
    [0, 1, 2],
    [1, 0, 3],
    [2, 3, 0],
  ];
  const ku = [3, 2, 1];
  const mean = (1 + 2 + 3) / 3; // off-diagonal mean (symmetric)

  test('fine-tuning penalises edges towards higher kurtosis', () => {
    const M = edgeCosts(D, ku, { mode: 'finetune' });
    const p = 0.3 * mean;
    expect(meanOffDiagonal(D)).toBe(mean);
    const expected = [
      [Infinity, 1, 2],
      [1 + p, Infinity, 3],
      [2 + p, 3 + p, Infinity],
    ];
    expect(M.map((r) => Array.from(r))).toEqual(expected);
  });

  test('pre-training penalises the opposite edges; lambda scales the penalty', () => {
    const M = edgeCosts(D, ku, { mode: 'pretrain', lambda: 1 });
    expect(M.map((r) => Array.from(r))).toEqual([
      [Infinity, 1 + mean, 2 + mean],
      [1, Infinity, 3 + mean],
      [2, 3, Infinity],
    ]);
    const zero = edgeCosts(D, ku, { mode: 'pretrain', lambda: 0 });
    expect(zero[1][2]).toBe(3);
  });

  test('equal kurtosis is never against the trend; asymmetric D is used as given', () => {
    expect(againstTrend(1, 1, 'finetune')).toBe(false);
    expect(againstTrend(1, 1, 'pretrain')).toBe(false);
    expect(againstTrend(1, 2, 'finetune')).toBe(true);
    expect(againstTrend(2, 1, 'pretrain')).toBe(true);
    const M = edgeCosts({ n: 2, data: [0, 1, 3, 0] }, [0, 0], { mode: 'finetune' });
    expect(Array.from(M[0])).toEqual([Infinity, 1]);
    expect(Array.from(M[1])).toEqual([3, Infinity]);
  });

  test('bad input is rejected', () => {
    expectInvalid(() => edgeCosts([[0, 1], [1]], [0, 0], { mode: 'finetune' }), /square/);
    expectInvalid(() => edgeCosts([[0, NaN], [1, 0]], [0, 0], { mode: 'finetune' }), /NaN/);
    expectInvalid(() => edgeCosts([[0, -1], [1, 0]], [0, 0], { mode: 'finetune' }), /non-negative/);
    expectInvalid(() => edgeCosts([[0, Infinity], [1, 0]], [0, 0], { mode: 'finetune' }), /finite/);
    expectInvalid(() => edgeCosts(D, [1, 2], { mode: 'finetune' }), /kurtosis has 2 entries/);
    expectInvalid(() => edgeCosts(D, [1, 2, NaN], { mode: 'finetune' }), /finite/);
    expectInvalid(() => edgeCosts(D, ku, { mode: 'auto' as KurtosisMode }), /mode/);
    expectInvalid(() => edgeCosts(D, ku, { mode: 'finetune', lambda: -1 }), /lambda/);
    expectInvalid(() => edgeCosts(D, ku, { mode: 'finetune', lambda: NaN }), /lambda/);
    expectInvalid(() => edgeCosts([], [], { mode: 'finetune' }), /empty/);
  });
});

describe('recoverFamily', () => {
  test('hand-checked chain: tree, costs, margins, root margin', () => {
    // 0 -> 1 -> 2, kurtosis decreasing. mean = 4/3, penalty p = 0.4.
    const D = [
      [0, 1, 2],
      [1, 0, 1],
      [2, 1, 0],
    ];
    const res = recoverFamily(D, [3, 2, 1], { mode: 'finetune' });
    expect(res.parent).toEqual([-1, 0, 1]);
    expect(res.root).toBe(0);
    expect(res.cost).toBe(2);
    expect(res.mode).toBe('finetune');
    expect(res.costs).toEqual({ finetune: 2 });
    // Best tree with another root: 1 -> 0 (1.4) and 1 -> 2 (1).
    expect(res.rootMargin!).toBeCloseTo(0.4, 14);
    expect(res.edges).toHaveLength(2);
    const [e1, e2] = res.edges;
    expect(e1).toMatchObject({ parent: 0, child: 1, distance: 1, cost: 1, against: false, alternativeParent: 2 });
    expect(e1.alternativeCost!).toBeCloseTo(1.4, 14);
    expect(e1.margin!).toBeCloseTo(0.4, 14);
    expect(e1.relativeMargin!).toBeCloseTo(0.3, 14);
    expect(e2).toMatchObject({ parent: 1, child: 2, alternativeParent: 0, alternativeCost: 2, margin: 1 });
    expect(e2.relativeMargin!).toBeCloseTo(0.75, 14);
    expect(res.diagnostics).toEqual({
      size: 3, meanDistance: 4 / 3, minDistance: 1, maxDistance: 2, spread: 2,
      againstEdges: 0, kurtosisAgreement: 1, kurtosisConsistent: true,
    });
  });

  test('auto picks the cheaper orientation and reports both costs', () => {
    // A star 0 -> {1, 2}: with kurtosis [3, 2, 2] only fine-tuning orients it without penalty
    // (any pre-training orientation has a parent with higher kurtosis than one child).
    const star = [
      [0, 1, 1],
      [1, 0, 2],
      [1, 2, 0],
    ];
    const ft = recoverFamily(star, [3, 2, 2]);
    expect(ft.mode).toBe('finetune');
    expect(ft.parent).toEqual([-1, 0, 0]);
    expect(ft.costs.finetune).toBe(2);
    const p = 0.3 * (4 / 3);
    expect(ft.costs.pretrain!).toBeCloseTo(2 + p, 14);
    const pt = recoverFamily(star, [1, 2, 2]);
    expect(pt.mode).toBe('pretrain');
    expect(pt.parent).toEqual([-1, 0, 0]);
    expect(pt.costs.finetune!).toBeCloseTo(2 + p, 14);
    // A chain is ambiguous: reversed, it follows the opposite trend at the same cost, so
    // 'auto' ties and keeps 'finetune' (the paper's default).
    const chain = [
      [0, 1, 2],
      [1, 0, 1],
      [2, 1, 0],
    ];
    const amb = recoverFamily(chain, [1, 2, 3]);
    expect(amb.costs.finetune).toBe(amb.costs.pretrain);
    expect(amb.mode).toBe('finetune');
    expect(amb.parent).toEqual([1, 2, -1]);
    const forced = recoverFamily(chain, [1, 2, 3], { mode: 'pretrain' });
    expect(forced.parent).toEqual([-1, 0, 1]);
    // Equal kurtosis: both orientations cost the same; ties go to 'finetune'.
    const tie = recoverFamily(star, [1, 1, 1]);
    expect(tie.mode).toBe('finetune');
    expect(tie.costs.finetune).toBe(tie.costs.pretrain);
  });

  test('a negative margin marks a locally cheaper parent rejected by the tree constraint', () => {
    // Cheapest in-edges form the 2-cycle 1 <-> 2; entering 0 costs 100, so 0 is the root,
    // and the cycle is entered at 2 from 0 (5) although 1 -> 2 costs only 1.
    const D = [
      [0, 10, 5],
      [100, 0, 1],
      [100, 1, 0],
    ];
    const res = recoverFamily(D, [0, 0, 0], { mode: 'finetune', lambda: 0 });
    expect(res.parent).toEqual([-1, 2, 0]);
    const e2 = res.edges.find((e) => e.child === 2)!;
    expect(e2.alternativeParent).toBe(1);
    expect(e2.margin).toBe(1 - 5);
    expect(res.edges.find((e) => e.child === 1)!.margin).toBe(10 - 1);
  });

  test('fixed root, single model, two models', () => {
    const D = [
      [0, 1, 2],
      [1, 0, 1],
      [2, 1, 0],
    ];
    const res = recoverFamily(D, [3, 2, 1], { root: 2, mode: 'finetune' });
    expect(res.root).toBe(2);
    expect(res.parent).toEqual([1, 2, -1]);
    expect(res.rootMargin).toBeNull();
    expect(res.diagnostics.againstEdges).toBe(2);
    expect(res.diagnostics.kurtosisConsistent).toBe(false);
    expect(res.diagnostics.kurtosisAgreement).toBe(0);

    const one = recoverFamily([[0]], [1.5]);
    expect(one).toMatchObject({ parent: [-1], root: 0, cost: 0, rootMargin: null, edges: [] });
    expect(one.diagnostics).toMatchObject({ size: 1, meanDistance: null, spread: null, kurtosisAgreement: 1 });

    const two = recoverFamily([[0, 2], [2, 0]], [1, 0]);
    expect(two.parent).toEqual([-1, 0]);
    expect(two.edges[0].alternativeParent).toBeNull();
    expect(two.edges[0].margin).toBeNull();
    expect(two.rootMargin!).toBeCloseTo(0.3 * 2, 14);

    expectInvalid(() => recoverFamily(D, [1, 2, 3], { root: 3 }), /root must be/);
    expectInvalid(() => recoverFamily(D, [1, 2, 3], { mode: 'sideways' as KurtosisMode }), /mode/);
    expectInvalid(() => recoverFamily(D, [1, 2]), /kurtosis has 2/);
  });

  test('synthetic VTHR-like families: exact recovery and mode detection', () => {
    const rng = new Rng(31);
    for (let t = 0; t < 6; t++) {
      const step = t % 2 === 0 ? -0.5 : 0.5;
      const fam = syntheticFamily(rng, { children: 4, grand: 4, step });
      const res = recoverFamily(fam.D, fam.ku);
      expect(res.mode).toBe(step < 0 ? 'finetune' : 'pretrain');
      expect(res.root).toBe(fam.root);
      expect(res.parent).toEqual(fam.parent);
      expect(res.diagnostics.kurtosisConsistent).toBe(true);
      expect(res.diagnostics.size).toBe(21);
      expect(res.rootMargin!).toBeGreaterThan(0);
      expect(res.edges.every((e) => e.margin! > 0)).toBe(true);
      // The chosen cost is the arborescence optimum of the chosen mode's edge costs.
      const M = edgeCosts(fam.D, fam.ku, { mode: res.mode });
      expect(abs(minimumArborescenceMatrix(M).cost - res.cost)).toBeLessThan(1e-12);
      const other: KurtosisMode = res.mode === 'finetune' ? 'pretrain' : 'finetune';
      expect(res.costs[other]!).toBeGreaterThan(res.cost);
    }
  });

  test('without the kurtosis term the direction is lost (the penalty matters)', () => {
    const rng = new Rng(32);
    const fam = syntheticFamily(rng, { children: 4, grand: 4, step: -0.5 });
    const noKu = recoverFamily(fam.D, fam.ku, { mode: 'finetune', lambda: 0 });
    // Undirected structure from distances alone is still the true tree (symmetric D), but the
    // root is wherever the tie-break puts it, not necessarily the base model.
    const und = (p: number[]) => p.map((q, c) => (q < 0 ? '' : [q, c].sort((a, b) => a - b).join('-'))).filter((s) => s).sort();
    expect(und(noKu.parent)).toEqual(und(fam.parent));
    const withKu = recoverFamily(fam.D, fam.ku, { mode: 'finetune' });
    expect(withKu.parent).toEqual(fam.parent);
  });
});

describe('kurtosis layer filters', () => {
  test('ViT: attention output projection only, square 2-D', () => {
    for (const arch of ['ViTForImageClassification', 'vit', 'google/vit-base-patch16-224', 'ViTModel']) {
      const f = defaultKurtosisLayers(arch);
      expect(f.pattern).toBe(VIT_KURTOSIS_PATTERN);
      expect(f('vit.encoder.layer.0.attention.output.dense.weight', [768, 768])).toBe(true);
      expect(f('vit.encoder.layer.0.attention.output.dense.bias', [768])).toBe(false);
      expect(f('vit.encoder.layer.0.output.dense.weight', [768, 3072])).toBe(false);
      expect(f('vit.encoder.layer.0.attention.attention.value.weight', [768, 768])).toBe(false);
      expect(f.description).toMatch(/ViT/);
    }
  });

  test('Llama: self_attn.o_proj', () => {
    for (const arch of ['LlamaForCausalLM', 'llama', 'codellama/CodeLlama-7b-hf']) {
      const f = defaultKurtosisLayers(arch);
      expect(f.pattern).toBe(LLAMA_KURTOSIS_PATTERN);
      expect(f('model.layers.3.self_attn.o_proj.weight', [4096, 4096])).toBe(true);
      expect(f('model.layers.3.self_attn.q_proj.weight', [4096, 4096])).toBe(false);
      expect(f('lm_head.weight', [32000, 4096])).toBe(false);
    }
  });

  test('other architectures (and look-alikes): every square 2-D tensor', () => {
    for (const arch of ['UNet2DConditionModel', 'MobileViTForImageClassification', 'levit', '']) {
      const f = defaultKurtosisLayers(arch);
      expect(f.pattern).toBeNull();
      expect(f('down_blocks.0.attentions.0.proj_in.weight', [320, 320])).toBe(true);
      expect(f('conv.weight', [320, 320, 3, 3])).toBe(false);
      expect(f('x.weight', [320, 640])).toBe(false);
      expect(f('x.bias', [320])).toBe(false);
    }
    expectInvalid(() => defaultKurtosisLayers(undefined as unknown as string), /string/);
  });

  test('summedKurtosis sums the selected layers and skips undefined kurtosis', () => {
    const f = defaultKurtosisLayers('vit');
    const res = summedKurtosis([
      { name: 'a.attention.output.dense.weight', shape: [4, 4], kurtosis: 1.5 },
      { name: 'b.attention.output.dense.weight', shape: [4, 4], kurtosis: -0.25 },
      { name: 'c.attention.output.dense.weight', shape: [4, 4], kurtosis: null },
      { name: 'd.attention.output.dense.bias', shape: [4], kurtosis: 100 },
      { name: 'e.output.dense.weight', shape: [4, 4], kurtosis: 100 },
    ], f);
    expect(res.value).toBe(1.25);
    expect(res.layers).toEqual(['a.attention.output.dense.weight', 'b.attention.output.dense.weight']);
    expect(res.skipped).toEqual(['c.attention.output.dense.weight']);
  });
});
