// Families, metric and kurtosis layers chosen by `recover` with its defaults, and `related`,
// on generated tiny models whose relations are known: a chain with a sibling and an exact copy,
// an independent run of the same architecture with a child, an independent singleton, a LoRA
// family (adapters on q and v only), conv nets without any square tensor, a model sharing no
// tensor with the others, and tensors that cannot enter the statistic (constant, all NaN).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { evaluate, ModelGraph, recover, related } from '../lib';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
let tmp: ReturnType<typeof tmpDir>;
const rng = new Rng(12);
const H = 32;
const SQUARE = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].flatMap((m) => [0, 1].map((l) => `model.layers.${l}.self_attn.${m}.weight`));
type Weights = Record<string, Float64Array>;

const gaussian = (n: number, s: number) => Float64Array.from({ length: n }, () => s * rng.normal());
function llama(): Weights {
  const w: Weights = {};
  for (const name of SQUARE) w[name] = gaussian(H * H, 0.05);
  w['model.layers.0.mlp.up_proj.weight'] = gaussian(2 * H * H, 0.05);
  w['model.norm.weight'] = Float64Array.from({ length: H }, () => 1 + 0.01 * rng.normal());
  return w;
}
/** Full fine-tuning: every tensor moves a little. */
const finetune = (w: Weights, s = 0.02): Weights => Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.map((x) => x + s * rng.normal())]));
/** A merged rank-2 adapter on q and v only. */
function lora(w: Weights): Weights {
  const out: Weights = { ...w };
  for (const name of SQUARE.filter((n) => /q_proj|v_proj/.test(n))) {
    const a = gaussian(2 * H, 0.1), b = gaussian(2 * H, 0.1);
    out[name] = w[name].map((x, k) => x + b[Math.floor(k / H) * 2] * a[k % H] + b[Math.floor(k / H) * 2 + 1] * a[H + (k % H)]);
  }
  return out;
}
function save(dir: string, w: Weights, arch = 'LlamaForCausalLM', shapes: Record<string, number[]> = {}): string {
  const full = path.join(tmp.dir, 'zoo', dir);
  fs.mkdirSync(full, { recursive: true });
  fs.writeFileSync(path.join(full, 'config.json'), JSON.stringify({ architectures: [arch] }));
  const shape = (k: string, v: Float64Array) => shapes[k] ?? (v.length === H * H ? [H, H] : v.length === H ? [H] : [2 * H, H]);
  writeSafetensors(path.join(full, 'model.safetensors'), Object.entries(w).map(([name, v]) => ({ name, dtype: 'F32' as const, shape: shape(name, v), data: encode('F32', v) })));
  return full;
}

const truthFamilies = [
  ['a/root', 'a/child', 'a/grandchild', 'a/sibling', 'a/copy', 'a/bad'],
  ['b/root', 'b/child'],
  ['c/single'],
  ['lora/root', 'lora/c1', 'lora/c2', 'lora/c3'],
  ['conv/root', 'conv/child'],
  ['conv/other'],
  ['odd/one'],
];
let g: ModelGraph;

beforeAll(async () => {
  tmp = tmpDir();
  const a = llama();
  const a1 = finetune(a), a2 = finetune(a1), a3 = finetune(a);
  save('a/root', a); save('a/child', a1); save('a/grandchild', a2); save('a/sibling', a3);
  fs.mkdirSync(path.join(tmp.dir, 'zoo', 'a', 'copy'), { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(tmp.dir, 'zoo', 'a', 'child', f), path.join(tmp.dir, 'zoo', 'a', 'copy', f));
  // a relative with a constant and an all-NaN tensor
  const bad = finetune(a);
  bad[SQUARE[0]] = new Float64Array(H * H).fill(0.25);
  bad[SQUARE[1]] = new Float64Array(H * H).fill(NaN);
  save('a/bad', bad);
  const b = llama();
  save('b/root', b); save('b/child', finetune(b));
  save('c/single', llama());
  const l = llama();
  const c1 = lora(l);
  save('lora/root', l); save('lora/c1', c1); save('lora/c2', lora(l)); save('lora/c3', lora(c1));
  // conv nets: no square 2-D tensor
  const convShapes = { 'conv1.weight': [16, 3, 3, 3], 'conv2.weight': [32, 16, 3, 3], 'fc.weight': [10, 32] };
  const conv = (): Weights => ({ 'conv1.weight': gaussian(16 * 27, 0.1), 'conv2.weight': gaussian(32 * 144, 0.1), 'fc.weight': gaussian(320, 0.1) });
  const cr = conv();
  save('conv/root', cr, 'ConvNet', convShapes); save('conv/child', finetune(cr, 0.05), 'ConvNet', convShapes); save('conv/other', conv(), 'ConvNet', convShapes);
  save('odd/one', { 'something.else': gaussian(64, 1) }, 'Odd', { 'something.else': [8, 8] });
  const ids = truthFamilies.flat();
  g = await recover(ids.map((id) => ({ id, path: path.join(tmp.dir, 'zoo', id) })), { pairs: true });
}, 120_000);
afterAll(() => tmp.cleanup());

const sorted = (f: string[][]) => f.map((x) => [...x].sort()).sort((x, y) => (x[0] < y[0] ? -1 : 1));

describe('recover with its defaults: families from the relatedness test', () => {
  test('exact families: chains kept, independent runs apart, copies inside, incomparable models alone', () => {
    expect(sorted(g.families)).toEqual(sorted(truthFamilies));
    // written in the same second: the first in input order is the source
    expect(g.duplicates).toEqual([{ members: ['a/child', 'a/copy'], sameDtypes: true, source: 'a/child', sourceBy: 'order' }]);
    const ev = evaluate(g, { edges: [] });
    expect(ev.familyAgreement.adjustedRand).toBeLessThanOrEqual(1);
  });

  test('the measured null per comparability group, and the verdict counts', () => {
    const groups = g.relatedness.groups.map((x) => [...x.members].sort());
    expect(groups).toContainEqual(['conv/child', 'conv/other', 'conv/root']);
    expect(groups.flat()).not.toContain('odd/one');
    for (const grp of g.relatedness.groups) {
      expect(grp.null.kappa).toBeGreaterThanOrEqual(1);
      expect(grp.null.draws).toBeGreaterThan(0);
    }
    expect(g.relatedness.alpha).toBe(0.01);
    expect(g.relatedness.r0).toBe(0.1);
  });

  test('evidence: weakest link inside, nearest outsider, and why a singleton has no relative', () => {
    const fam = g.familyReports.find((f) => f.members.includes('a/root'))!;
    expect(fam.evidence.weakestLink!.verdict).toBe('related');
    expect(fam.evidence.nearestOutsider!.verdict).toBe('unrelated');
    expect(Math.abs(fam.evidence.nearestOutsider!.r!)).toBeLessThan(0.1);
    const single = g.familyReports.find((f) => f.members[0] === 'c/single')!;
    expect(single.evidence.nearestOutsider!.verdict).toBe('unrelated');
    const odd = g.familyReports.find((f) => f.members[0] === 'odd/one')!;
    expect(odd.evidence.nearestOutsider).toBeNull();
  });

  test('pairs: every pair with its verdict; left-out tensors with their reasons; never NaN', () => {
    const n = truthFamilies.flat().length;
    expect(g.pairs).toHaveLength((n * (n - 1)) / 2);
    const bad = g.pairs!.find((p) => p.a === 'a/root' && p.b === 'a/bad')!;
    expect(bad.verdict).toBe('related');
    const reasons = bad.leftOut.map((l) => l.reason).join('; ');
    expect(reasons).toMatch(/constant values/);
    expect(reasons).toMatch(/no finite values/);
    const odd = g.pairs!.filter((p) => p.a === 'odd/one' || p.b === 'odd/one');
    expect(odd.every((p) => p.verdict === 'not comparable' && p.z === null)).toBe(true);
    const nonFinite: string[] = [];
    const walk = (v: unknown, at: string): void => {
      if (typeof v === 'number' && !Number.isFinite(v)) nonFinite.push(at);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
    };
    walk(g, '$');
    expect(nonFinite.filter((at) => !/diagnostics\.spread$/.test(at))).toEqual([]);
  });

  test('metric auto: rank for the LoRA family, RMS for full fine-tuning; kurtosis layers that vary', () => {
    const lo = g.familyReports.find((f) => f.members.includes('lora/root'))!;
    expect(lo.metric).toMatchObject({ used: 'rank', chosen: true });
    // the Llama default (o_proj) is untouched by the adapters: the layers that vary instead
    expect(lo.kurtosisLayers.rule).toBe('varying');
    expect(lo.kurtosisLayers.layers.every((n) => /q_proj|v_proj/.test(n))).toBe(true);
    const kus = lo.members.map((id) => g.models.find((m) => m.id === id)!.kurtosis);
    expect(new Set(kus).size).toBe(lo.members.length); // not a constant
    const full = g.familyReports.find((f) => f.members.includes('b/root'))!;
    expect(full.metric).toMatchObject({ used: 'rms', chosen: true });
    expect(full.kurtosisLayers).toMatchObject({ rule: 'default', layers: ['model.layers.0.self_attn.o_proj.weight', 'model.layers.1.self_attn.o_proj.weight'] });
  });

  test('the text says why a model is a singleton', async () => {
    const r = run('recover', path.join(tmp.dir, 'zoo'), '-q');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/c\/single: no relative: strongest r = -?0\.\d+, z = -?[\d.]+ \(unrelated\) with /);
    expect(r.stdout).toMatch(/odd\/one: not comparable with any other model/);
    expect(r.stdout).toMatch(/held together by links of/);
    const v = run('recover', path.join(tmp.dir, 'zoo'), '-q', '-v');
    expect(v.stderr).toMatch(/metric rank: pairwise differences are low-rank/);
    expect(v.stderr).toMatch(/null variance/);
  });

  test('--truth with a version-2 truth (a merge: two parents): families from every edge, edges scored on tree_edges; --pairs prints the table', () => {
    const truth = {
      version: 2,
      edges: [['a/root', 'a/child'], ['a/child', 'a/grandchild'], ['a/root', 'a/sibling'], ['a/child', 'a/copy'], ['a/root', 'a/bad'], ['a/sibling', 'a/bad'], ['b/root', 'b/child'],
        ['lora/root', 'lora/c1'], ['lora/root', 'lora/c2'], ['lora/c1', 'lora/c3'], ['conv/root', 'conv/child']],
      tree_edges: [['a/root', 'a/child'], ['a/child', 'a/grandchild'], ['a/root', 'a/sibling'], ['a/child', 'a/copy'], ['a/root', 'a/bad'], ['b/root', 'b/child'],
        ['lora/root', 'lora/c1'], ['lora/root', 'lora/c2'], ['lora/c1', 'lora/c3'], ['conv/root', 'conv/child']],
    };
    const file = path.join(tmp.dir, 'truth.json');
    fs.writeFileSync(file, JSON.stringify(truth));
    const r = run('recover', path.join(tmp.dir, 'zoo'), '--truth', file, '-q', '--pairs');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/families: 7 of 7 exact \(7 recovered\), adjusted Rand index 1\.000; edges scored on tree_edges/);
    expect(r.stdout).toMatch(/^model\s+model\s+verdict\s+r\s+z\s+p\s+tensors$/m);
    expect(r.stdout).toMatch(/a\/child\s+a\/root\s+related/);
  });

  test('--families K still runs the paper\'s Ward protocol', async () => {
    const ids = ['b/root', 'b/child', 'c/single'];
    const k = await recover(ids.map((id) => ({ id, path: path.join(tmp.dir, 'zoo', id) })), { families: 2, metric: 'rms' });
    expect(sorted(k.families)).toEqual([['b/child', 'b/root'], ['c/single']]);
    expect(k.options.families).toBe(2);
  });
});

describe('related: the authorship question', () => {
  const m = (id: string) => path.join(tmp.dir, 'zoo', id);

  test('library: verdict, r, z, p and the per-layer table', async () => {
    const r = await related(m('a/root'), m('a/grandchild'));
    expect(r.verdict).toBe('related');
    expect(r.r!).toBeGreaterThan(0.5);
    expect(r.p!).toBeLessThan(1e-6);
    expect(r.layers.length).toBe(SQUARE.length);
    expect(r.layers.every((l) => l.used && l.z! > 5)).toBe(true);
    const many = await related(m('a/root'), [m('b/root'), m('a/copy')]);
    expect(many.map((x) => x.verdict)).toEqual(['unrelated', 'related']);
    expect(many[0].tested).toBe(2);
    expect(many[1].identical).toBe(false); // a/copy is a copy of a/child, not of a/root
  });

  test('CLI exit codes: 0 related, 1 unrelated, 4 undecided or not comparable, 2 usage, 3 input', () => {
    const yes = run('related', m('a/root'), m('a/child'), '-q');
    expect(yes.status).toBe(0);
    expect(yes.stdout).toMatch(/related to/);
    expect(yes.stdout).toMatch(/r \(shift 1\)/);
    const no = run('related', m('a/root'), m('b/root'), '-q');
    expect(no.status).toBe(1);
    expect(no.stdout).toMatch(/unrelated to/);
    const odd = run('related', m('a/root'), m('odd/one'), '-q');
    expect(odd.status).toBe(4);
    expect(odd.stdout).toMatch(/not comparable/);
    const mixed = run('related', m('a/root'), m('a/child'), m('b/root'), '-q', '--json');
    expect(mixed.status).toBe(1);
    const doc = JSON.parse(mixed.stdout);
    expect(doc.results.map((x: { verdict: string }) => x.verdict)).toEqual(['related', 'unrelated']);
    expect(doc.exitCode).toBe(1);
    expect(run('related', m('a/root')).status).toBe(2);
    expect(run('related', m('a/root'), path.join(tmp.dir, 'missing')).status).toBe(3);
  });

  test('undecided: a weak correlation in tiny tensors', () => {
    const x = gaussian(36, 1);
    const y = x.map((v) => v + 2.5 * rng.normal());
    const shapes = { w: [6, 6] };
    const pa = save('tiny/a', { w: x }, 'Tiny', shapes), pb = save('tiny/b', { w: y }, 'Tiny', shapes);
    const r = run('related', pa, pb, '-q');
    expect(r.stdout).toMatch(/undecided/);
    expect(r.status).toBe(4);
  });
});
