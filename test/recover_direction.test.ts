// The direction stage of `recover` with its defaults on generated tiny models whose history is
// known: a root with two fine-tuned children and a grandchild, an exact copy, an F16 conversion,
// a blockwise int8 (Q8_0-like) round trip stored as F32, a 4-bit (Q4_0-like) one stored as F16
// (its rounding noise, about 0.1 of the weights' spread, is as large as a fine-tune's: only its
// grid tells it), and a weighted merge of two children.
// Every edge gets its relation; copies are leaves under their source; the merge has two parents
// with their weights; the clock and every candidate's agreement are reported per family.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { evaluate, ModelGraph, recover } from '../lib';
import { treeEdges } from '../lib/recover';
import { Rng } from './helpers/reference';
import { decode, encode, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

let tmp: ReturnType<typeof tmpDir>;
const rng = new Rng(31);
const H = 32;
const SQUARE = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].flatMap((m) => [0, 1].map((l) => `model.layers.${l}.self_attn.${m}.weight`));
type Weights = Record<string, Float64Array>;
const gaussian = (n: number, s: number) => Float64Array.from({ length: n }, () => s * rng.normal());
const base = (): Weights => Object.fromEntries(SQUARE.map((k) => [k, gaussian(H * H, 0.05)]));
const finetune = (w: Weights): Weights => Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.map((x) => x + 0.02 * rng.normal())]));
/** Blockwise int8 round trip (blocks of 32: scale = max |x| / 127, round to the nearest multiple). */
const q8 = (w: Weights): Weights => Object.fromEntries(Object.entries(w).map(([k, v]) => {
  const out = new Float64Array(v.length);
  for (let b = 0; b < v.length; b += 32) {
    let m = 0;
    for (let i = b; i < b + 32; i++) m = Math.max(m, Math.abs(v[i]));
    const d = m / 127;
    for (let i = b; i < b + 32; i++) out[i] = d > 0 ? Math.round(v[i] / d) * d : 0;
  }
  return [k, out];
}));
/** Blockwise 4-bit round trip (blocks of 32: d = the value of largest magnitude / -8, q in [-8, 7]). */
const q4 = (w: Weights): Weights => Object.fromEntries(Object.entries(w).map(([k, v]) => {
  const out = new Float64Array(v.length);
  for (let b = 0; b < v.length; b += 32) {
    let m = 0;
    for (let i = b; i < b + 32; i++) if (Math.abs(v[i]) > Math.abs(m)) m = v[i];
    const d = m / -8;
    for (let i = b; i < b + 32; i++) out[i] = d !== 0 ? Math.max(-8, Math.min(7, Math.round(v[i] / d))) * d : 0;
  }
  return [k, out];
}));
function save(id: string, w: Weights, dtype: FloatDtype = 'F32', shapes: Record<string, number[]> = {}): void {
  const full = path.join(tmp.dir, 'zoo', id);
  fs.mkdirSync(full, { recursive: true });
  fs.writeFileSync(path.join(full, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
  writeSafetensors(path.join(full, 'model.safetensors'), Object.entries(w).map(([name, v]) => ({ name, dtype, shape: shapes[name] ?? [H, H], data: encode(dtype, v) })));
}
/** The values as stored in F32 (so that the merge is computed from what the files hold). */
const f32 = (w: Weights): Weights => Object.fromEntries(Object.entries(w).map(([k, v]) => [k, decode('F32', encode('F32', v))]));

let g: ModelGraph;
const truth: [string, string][] = [['root', 'a'], ['root', 'b'], ['a', 'c'], ['a', 'a_dup'], ['c', 'c_f16'], ['b', 'b_q8'], ['c', 'c_q4'], ['b', 'merge']];

beforeAll(async () => {
  tmp = tmpDir();
  const r = f32(base()), a = f32(finetune(r)), b = f32(finetune(r)), c = f32(finetune(a));
  save('root', r); save('a', a); save('b', b); save('c', c); save('a_dup', a); save('c_f16', c, 'F16'); save('b_q8', f32(q8(b))); save('c_q4', q4(c), 'F16');
  save('merge', Object.fromEntries(SQUARE.map((k) => [k, a[k].map((x, i) => 0.3 * x + 0.7 * b[k][i])])));
  const ids = ['a', 'a_dup', 'b', 'b_q8', 'c', 'c_f16', 'c_q4', 'merge', 'root'];
  g = await recover(ids.map((id) => ({ id, path: path.join(tmp.dir, 'zoo', id) })));
}, 60000);
afterAll(() => tmp.cleanup());

test('one family; the tree edges and their directions are right with no flags', () => {
  expect(g.families).toHaveLength(1);
  expect(g.roots).toEqual(['root']);
  const ev = evaluate(g, { edges: truth.map(([p, c]) => [p, c]) });
  expect(ev.directedAccuracy).toBe(1);
});

test('relations: duplicate, converted and quantized copies are leaves under their source; the merge has both parents with their weights', () => {
  const rel = Object.fromEntries(g.edges.filter((e) => e.relation !== 'merge').map((e) => [e.child, [e.parent, e.relation]]));
  expect(rel).toEqual({ a: ['root', 'finetune'], b: ['root', 'finetune'], c: ['a', 'finetune'], a_dup: ['a', 'duplicate'], c_f16: ['c', 'converted'], b_q8: ['b', 'quantized'], c_q4: ['c', 'quantized'] });
  const merge = g.edges.filter((e) => e.relation === 'merge').map((e) => [e.parent, e.weight!]).sort();
  expect(merge.map((m) => m[0])).toEqual(['a', 'b']);
  expect(merge[0][1] as number).toBeCloseTo(0.3, 3);
  expect(merge[1][1] as number).toBeCloseTo(0.7, 3);
  for (const e of g.edges) if (e.relation !== 'finetune') expect(g.edges.some((x) => x.parent === e.child)).toBe(false);
  // the forest view keeps the merge under its heavier parent only
  expect(treeEdges(g.edges).filter((e) => e.child === 'merge').map((e) => e.parent)).toEqual(['b']);
  expect(g.familyReports[0].copies).toEqual({ copies: 4, merges: 1 });
});

test('a merge of equal weights is scored under whichever of its parents the truth names', () => {
  const h: ModelGraph = { ...g, edges: g.edges.map((e) => (e.relation === 'merge' ? { ...e, weight: e.parent === 'a' ? 0.51 : 0.49 } : e)) };
  expect(treeEdges(h.edges).filter((e) => e.child === 'merge').map((e) => e.parent)).toEqual(['a']);
  expect(evaluate(h, { edges: truth }).directedAccuracy).toBe(1);
  const far: ModelGraph = { ...g, edges: g.edges.map((e) => (e.relation === 'merge' ? { ...e, weight: e.parent === 'a' ? 0.8 : 0.2 } : e)) };
  expect(evaluate(far, { edges: truth }).directedAccuracy).toBeCloseTo(7 / 8, 10) // 8 truth edges, the merge under the wrong parent;
});

test('the family reports the clock used (chosen) and every candidate agreement on the distance tree', () => {
  const clock = g.familyReports[0].clock;
  expect(clock.chosen).toBe(true);
  expect(clock.scores.length).toBeGreaterThanOrEqual(4);
  const best = Math.max(...clock.scores.map((s) => s.agreement));
  expect(clock.agreement).toBe(best);
  expect(clock.scores.find((s) => s.clock === clock.used)!.agreement).toBe(best);
  // the fine-tunes add independent noise: the squared norm grows along every path
  expect(clock.scores.find((s) => s.clock === 'norm+')!.agreement).toBe(1);
});

test("--direction finetune keeps the paper's kurtosis mode (reported as given)", async () => {
  const ids = ['a', 'b', 'c', 'root'];
  const h = await recover(ids.map((id) => ({ id, path: path.join(tmp.dir, 'zoo', id) })), { direction: 'finetune' });
  expect(h.familyReports[0].clock).toMatchObject({ used: 'kurtosis-', chosen: false });
  expect(h.options.direction).toBe('finetune');
  // the paper's method: distances alone, no difference shapes
  expect(h.familyReports[0].differences).toBeNull();
});

test('the shape of the differences: measured (direction auto) and reported, the margin wider without a token embedding', async () => {
  // these models have no token embedding: the wider margin
  expect(g.familyReports[0].differences).toMatchObject({ window: 1.4, margin: 0.3 });
  // the same four with a token embedding each (fine-tuned like the rest)
  const r = f32(base()), a = f32(finetune(r)), b = f32(finetune(r)), c = f32(finetune(a));
  const emb = gaussian(64 * H, 0.05);
  const ids = ['lm_root', 'lm_a', 'lm_b', 'lm_c'];
  [r, a, b, c].forEach((w, k) => save(ids[k], { ...w, 'model.embed_tokens.weight': k === 0 ? emb : emb.map((x) => x + 0.02 * rng.normal()) }, 'F32', { 'model.embed_tokens.weight': [64, H] }));
  const h = await recover(ids.map((id) => ({ id, path: path.join(tmp.dir, 'zoo', id) })));
  const d = h.familyReports[0].differences!;
  expect(d).toMatchObject({ window: 1.4, margin: 0.2 });
  expect(d.tensors).toBe(SQUARE.length);
  expect(d.sampledRows).toBe(SQUARE.length * H);
  // Gaussian increments: every difference has excess kurtosis near 0, so no pair reads as two runs apart
  expect(d.penalised).toEqual([]);
});

describe('the source of identical models: the one written first, else the first in input order', () => {
  // copies of root, a (and its duplicate), b and c, with the weight files' times set by hand
  const setUp = (name: string, times: Record<string, number>) => {
    const dir = path.join(tmp.dir, name);
    for (const id of ['root', 'a', 'a_dup', 'b', 'c']) {
      fs.cpSync(path.join(tmp.dir, 'zoo', id), path.join(dir, id), { recursive: true });
      const t = new Date(times[id] ?? 1.7e12);
      fs.utimesSync(path.join(dir, id, 'model.safetensors'), t, t);
    }
    return ['a', 'a_dup', 'b', 'c', 'root'].map((id) => ({ id, path: path.join(dir, id) }));
  };
  const parents = (h: ModelGraph) => Object.fromEntries(h.edges.map((e) => [e.child, [e.parent, e.relation]]));

  test('a_dup written 10 s before a: a_dup is the source, a its duplicate and c hangs off a_dup', async () => {
    const h = await recover(setUp('dup-older', { a: 1.7e12 + 10_000, a_dup: 1.7e12 }));
    expect(h.duplicates).toEqual([{ members: ['a', 'a_dup'], sameDtypes: true, source: 'a_dup', sourceBy: 'written' }]);
    expect(parents(h)).toEqual({ a_dup: ['root', 'finetune'], a: ['a_dup', 'duplicate'], b: ['root', 'finetune'], c: ['a_dup', 'finetune'] });
  });

  test('written within 2 s of each other: a tie, the first in input order', async () => {
    const h = await recover(setUp('dup-tie', { a: 1.7e12 + 1500, a_dup: 1.7e12 }));
    expect(h.duplicates).toEqual([{ members: ['a', 'a_dup'], sameDtypes: true, source: 'a', sourceBy: 'order' }]);
    expect(parents(h)).toEqual({ a: ['root', 'finetune'], a_dup: ['a', 'duplicate'], b: ['root', 'finetune'], c: ['a', 'finetune'] });
  });
});
