// The vocabulary only grows parent -> child (lib/method/vocabulary.ts): the order it imposes, the
// arborescence with forbidden edges and candidate roots, the clock choice among admissible roots,
// and recover() on a Llama-like family where the distances put a model with the base
// vocabulary under the model with the extended one.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { recover } from '../lib';
import { chooseClock } from '../lib/method/clocks';
import { recoverFamily } from '../lib/method/direction';
import { vocabularyOrder } from '../lib/method/vocabulary';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir('mother-vocab-');
});
afterAll(() => tmp.cleanup());

describe('vocabularyOrder', () => {
  test('no evidence: one member, a member without a token embedding, every size equal', () => {
    expect(vocabularyOrder([32000])).toBeNull();
    expect(vocabularyOrder([32000, null, 32016])).toBeNull();
    expect(vocabularyOrder([32000, 32000, 32000])).toBeNull();
    expect(vocabularyOrder([32000, NaN])).toBeNull();
  });

  test('the smallest vocabulary may root the family; an edge from more rows to fewer is forbidden', () => {
    const v = vocabularyOrder([32016, 32000, 32000, 32017])!;
    expect(v.admissible).toEqual([false, true, true, false]);
    expect([v.min, v.max]).toEqual([32000, 32017]);
    const f = (i: number, j: number) => v.forbidden[i * 4 + j];
    expect([f(0, 1), f(0, 2), f(3, 0), f(3, 1)]).toEqual([1, 1, 1, 1]);
    expect([f(1, 0), f(1, 2), f(2, 1), f(0, 3), f(1, 3), f(0, 0)]).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('recoverFamily with forbidden edges and candidate roots', () => {
  // a path 0 - 1 - 2 by distance: 1 is nearest both others
  const D = { n: 3, data: Float64Array.from([0, 1, 3, 1, 0, 1, 3, 1, 0]) };
  const flat = [0, 0, 0];

  test('without constraints the tree follows the distances', () => {
    const fr = recoverFamily(D, flat, { mode: 'finetune' });
    expect(fr.parent.filter((p) => p >= 0)).toHaveLength(2);
    const undirected = fr.edges.map((e) => [e.parent, e.child].sort().join('-')).sort();
    expect(undirected).toEqual(['0-1', '1-2']);
  });

  test('an edge 1 -> 2 forbidden and 0 the only root: 2 hangs under 0, at the larger distance', () => {
    const forbidden = new Uint8Array(9);
    forbidden[1 * 3 + 2] = 1;
    const fr = recoverFamily(D, flat, { mode: 'finetune', forbidden, candidateRoots: [0] });
    expect(fr.root).toBe(0);
    expect(fr.parent).toEqual([-1, 0, 0]);
    // the alternative parent of 2 is never a forbidden one
    const e2 = fr.edges.find((e) => e.child === 2)!;
    expect(e2.alternativeParent).toBeNull();
    // no other root is allowed: no margin to report
    expect(fr.rootMargin).toBeNull();
  });

  test('candidate roots alone: the best tree rooted at one of them; the margin against the other candidates', () => {
    const fr = recoverFamily(D, [0, 1, 2], { mode: 'finetune', candidateRoots: [1, 2] });
    expect([1, 2]).toContain(fr.root);
    expect(fr.rootMargin).not.toBeNull();
  });

  test('bad arguments are refused', () => {
    expect(() => recoverFamily(D, flat, { forbidden: new Uint8Array(4) })).toThrow(/forbidden must hold/);
    expect(() => recoverFamily(D, flat, { candidateRoots: [3] })).toThrow(/candidateRoots/);
  });
});

describe('chooseClock among admissible roots', () => {
  // a path 0 - 1 - 2 - 3; the clock rises from 3 to 0, so without constraint the best root is 3
  const parent = [-1, 0, 1, 2];
  const clock = [4, 3, 2, 1];
  test('the best root of a clock is searched among the admissible models only', () => {
    expect(chooseClock(parent, { norm: clock }).scores.find((s) => s.label === 'norm+')!.root).toBe(3);
    const c = chooseClock(parent, { norm: clock }, undefined, [true, true, false, false]);
    const s = c.scores.find((x) => x.label === 'norm+')!;
    expect([0, 1]).toContain(s.root);
    expect(s.agreement).toBeLessThan(1);
    // no admissible flag set: every model may be the root
    expect(chooseClock(parent, { norm: clock }, undefined, [false, false, false, false]).scores.find((x) => x.label === 'norm+')!.root).toBe(3);
    expect(() => chooseClock(parent, { norm: clock }, undefined, [true])).toThrow(/admissible/);
  });
});

describe('recover: a code fine-tune lies nearest the code fine-tune with the extended vocabulary', () => {
  // root (V rows) -> code, root -> code_ext (V + 8 rows: the added rows new), root -> docs.
  // code and code_ext share the code update; code_ext moved a little beyond it, code a lot, so
  // by distance code hangs under code_ext: root - code_ext - code.
  const H = 16, V = 48, EXTRA = 8, rng = new Rng(11);
  const SQUARE = [0, 1].flatMap((l) => ['q_proj', 'o_proj'].map((m) => `model.layers.${l}.self_attn.${m}.weight`));
  const EMB = 'model.embed_tokens.weight';
  type W = Record<string, Float64Array>;
  const gauss = (n: number, s: number) => Float64Array.from({ length: n }, () => s * rng.normal());
  const size = (k: string, rows: number) => (k === EMB ? rows * H : H * H);
  const root: W = Object.fromEntries([...SQUARE, EMB].map((k) => [k, gauss(size(k, V), 0.05)]));
  const codeDir: W = Object.fromEntries([...SQUARE, EMB].map((k) => [k, gauss(size(k, V), 0.01)]));
  const add = (w: W, d: W | null, noise: number): W => Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.map((x, i) => x + (d ? d[k][i] : 0) + noise * rng.normal())]));
  const code = add(root, codeDir, 0.004);
  const codeExt0 = add(root, codeDir, 0.0005);
  const codeExt: W = { ...codeExt0, [EMB]: Float64Array.from([...codeExt0[EMB], ...gauss(EXTRA * H, 0.05)]) };
  const docs = add(root, null, 0.012);
  const save = (id: string, w: W) => {
    const dir = path.join(tmp.dir, 'llm', id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
    writeSafetensors(path.join(dir, 'model.safetensors'), Object.entries(w).map(([name, v]) => ({ name, dtype: 'F32' as const, shape: name === EMB ? [v.length / H, H] : [H, H], data: encode('F32', v) })));
    return { id, path: dir };
  };
  let models: { id: string; path: string }[];
  beforeAll(() => { models = [save('code_ext', codeExt), save('code', code), save('root', root), save('docs', docs)]; });

  test("the paper's mode (no vocabulary rule) hangs code under code_ext; auto roots at the smallest vocabulary and never shrinks it", async () => {
    const paper = await recover(models, { direction: 'finetune' });
    expect(paper.families).toHaveLength(1);
    expect(paper.familyReports[0].vocabulary).toBeNull();
    const undirected = (g: typeof paper) => g.edges.map((e) => [e.parent, e.child].sort().join('-')).sort();
    // the premise: by distance code is nearest code_ext
    expect(undirected(paper)).toContain('code-code_ext');
    const auto = await recover(models);
    expect(auto.familyReports[0].vocabulary).toEqual({ tensor: EMB, minRows: V, maxRows: V + EXTRA });
    const rows: Record<string, number> = { root: V, code: V, docs: V, code_ext: V + EXTRA };
    expect(rows[auto.roots[0]]).toBe(V);
    for (const e of auto.edges) expect(rows[e.parent]).toBeLessThanOrEqual(rows[e.child]);
    const parentOf = (c: string) => auto.edges.find((e) => e.child === c)?.parent;
    expect(parentOf('code')).not.toBe('code_ext');
    expect(auto.edges).toHaveLength(3);
  });
});
