// The choice of an adapter's base among unrelated models by the alignment of dW with their
// weights (lib/method/adapter_base.ts): q against a float64 reference, its mean 1 on models
// independent of dW, the decision rule, and recover() on really trained models and adapters
// (test/helpers/make_trained_peft.py).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { recover } from '../lib';
import { BASE_Q_ACCEPT, BASE_Q_RATIO, chooseByAlignment, inputAlignment } from '../lib/method/adapter_base';
import { renderTree } from '../lib/output/tree';
import { Schema, validate } from './helpers/schema';
import { tmpDir } from './helpers/tmp';

const PYTHON = '/usr/bin/python3';
const torchAvailable = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

/** A seeded normal generator (Box-Muller on a 32-bit LCG). */
function normals(seed: number) {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

const sq = (a: Float64Array) => a.reduce((t, x) => t + x * x, 0);

/** ||D X^T||_F^2 the plain way, D and X [rows, cols]. */
function alignedEnergy(D: Float64Array, X: Float64Array, rows: number, cols: number): number {
  let t = 0;
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < rows; j++) {
      let m = 0;
      for (let c = 0; c < cols; c++) m += D[i * cols + c] * X[j * cols + c];
      t += m * m;
    }
  return t;
}

/** dW = B A of rank r, [rows, cols]. */
function lowRank(g: () => number, rows: number, cols: number, r: number): Float64Array {
  const A = Array.from({ length: r * cols }, () => g()), B = Array.from({ length: rows * r }, () => g());
  const dW = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) for (let k = 0; k < r; k++) dW[i * cols + j] += B[i * r + k] * A[k * cols + j];
  return dW;
}

describe('inputAlignment', () => {
  test('equals the float64 formula pooled over modules; modules not read (null, NaN) are left out', () => {
    const g = normals(1);
    const mods = [[16, 12], [8, 20], [1, 1]].map(([rows, cols]) => ({ rows, cols, D: lowRank(g, rows, cols, 2), X: Float64Array.from({ length: rows * cols }, () => 3 * g()) }));
    const num = mods.reduce((t, m) => t + alignedEnergy(m.D, m.X, m.rows, m.cols), 0);
    const den = mods.reduce((t, m) => t + (sq(m.D) * sq(m.X)) / m.cols, 0);
    const got = inputAlignment([
      ...mods.map((m) => ({ inputAlignment: alignedEnergy(m.D, m.X, m.rows, m.cols), sumSq: sq(m.X), frob2: sq(m.D), inputs: m.cols })),
      { inputAlignment: null, sumSq: null, frob2: 1, inputs: 4 },
      { inputAlignment: NaN, sumSq: NaN, frob2: 1, inputs: 4 },
    ]);
    expect(got.modules).toBe(3);
    expect(Math.abs(got.q - num / den)).toBeLessThan(1e-12 * (num / den));
    expect(inputAlignment([]).q).toBeNaN();
    expect(inputAlignment([{ inputAlignment: 0, sumSq: 0, frob2: 0, inputs: 4 }]).q).toBeNaN();
  });

  test('about 1 for X independent of dW (Gaussian and heavy-tailed X, rank-2 dW): mean within 0.05 over 200 draws, never >= BASE_Q_ACCEPT', () => {
    const g = normals(2);
    const rows = 24, cols = 20;
    for (const tail of [false, true]) {
      const qs: number[] = [];
      for (let t = 0; t < 200; t++) {
        const D = lowRank(g, rows, cols, 2);
        const X = Float64Array.from({ length: rows * cols }, () => (tail ? g() / Math.max(0.2, Math.abs(g())) : g()));
        qs.push(inputAlignment([{ inputAlignment: alignedEnergy(D, X, rows, cols), sumSq: sq(X), frob2: sq(D), inputs: cols }]).q);
      }
      const mean = qs.reduce((a, b) => a + b, 0) / qs.length;
      expect(Math.abs(mean - 1)).toBeLessThan(0.05);
      expect(Math.max(...qs)).toBeLessThan(BASE_Q_ACCEPT);
    }
  });

  test('above 1 when dW\'s rows lie in X\'s top row space', () => {
    const g = normals(3);
    const rows = 16, cols = 16;
    // X heavy on its first 4 input directions; dW with rows in those directions
    const X = Float64Array.from({ length: rows * cols }, (_, e) => g() * (e % cols < 4 ? 5 : 0.5));
    const D = Float64Array.from({ length: rows * cols }, (_, e) => (e % cols < 4 ? g() : 0));
    expect(inputAlignment([{ inputAlignment: alignedEnergy(D, X, rows, cols), sumSq: sq(X), frob2: sq(D), inputs: cols }]).q).toBeGreaterThan(3);
  });
});

describe('chooseByAlignment', () => {
  const s = (q: number, model = 'm') => ({ model, family: 0, q, modules: 4 });
  test('takes the largest q at the threshold and the ratio over the next', () => {
    expect(chooseByAlignment([s(1.2, 'a'), s(3.1, 'b'), s(0.9, 'c')]).pick).toBe(1);
    expect(chooseByAlignment([s(BASE_Q_ACCEPT, 'a'), s(1 + (BASE_Q_ACCEPT - 1) / BASE_Q_RATIO, 'b')]).pick).toBe(0);
    expect(chooseByAlignment([s(2.5, 'a')]).pick).toBe(0);
    expect(chooseByAlignment([s(2.5, 'a'), s(0.4, 'b')]).why).toMatch(/dW's rows lie along a's weights \(input alignment q: a 2\.50, b 0\.40/);
  });
  test('no pick below the threshold, within the ratio, or with nothing read; the reason lists every q', () => {
    const low = chooseByAlignment([s(1.9, 'a'), s(1.0, 'b')]);
    expect(low.pick).toBe(-1);
    expect(low.why).toMatch(/does not decide \(input alignment q: a 1\.90, b 1\.00/);
    expect(chooseByAlignment([s(3, 'a'), s(2.1, 'b')]).pick).toBe(-1);
    expect(chooseByAlignment([s(NaN, 'a'), s(NaN, 'b')]).pick).toBe(-1);
    expect(chooseByAlignment([s(NaN, 'a'), s(3, 'b')]).pick).toBe(1);
  });
});

(torchAvailable ? describe : describe.skip)('recover: the base of an adapter among unrelated models, on trained models (make_trained_peft.py)', () => {
  const tmp = tmpDir('mother-trained-peft-');
  const at = (id: string) => ({ id, path: path.join(tmp.dir, id) });
  beforeAll(() => {
    const r = spawnSync(PYTHON, [path.join(__dirname, 'helpers', 'make_trained_peft.py'), tmp.dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make_trained_peft.py failed: ${r.stderr}`);
  }, 600_000);
  afterAll(() => tmp.cleanup());

  test('three pre-training runs fit; each adapter (base_model_name_or_path in no set) is hung under the run it was trained on', async () => {
    const events: { stage: string; adapter?: string; basesDone?: number; basesTotal?: number }[] = [];
    const g = await recover(['alpha', 'alpha-ft', 'beta', 'gamma', 'lora-on-alpha', 'lora-on-beta'].map(at), { threads: 2, onProgress: (p) => events.push(p) });
    // progress: stage 'bases', one step per family scored, before the adapters are compared
    const bases = events.filter((e) => e.stage === 'bases');
    expect(bases.map((e) => `${e.adapter} ${e.basesDone}/${e.basesTotal}`)).toEqual([0, 1, 2, 3].map((k) => `lora-on-alpha ${k}/3`).concat([0, 1, 2, 3].map((k) => `lora-on-beta ${k}/3`)));
    expect(events.findIndex((e) => e.stage === 'adapters')).toBeGreaterThan(events.lastIndexOf(bases[bases.length - 1] as never));
    expect(g.families.filter((f) => f.includes('alpha')).flat().sort()).toEqual(['alpha', 'alpha-ft', 'lora-on-alpha']);
    for (const [id, base] of [['lora-on-alpha', 'alpha'], ['lora-on-beta', 'beta']]) {
      const a = g.adapters!.find((x) => x.id === id)!;
      const familyRoot = g.roots.find((r) => g.families.find((f) => f.includes(r))!.includes(base))!;
      expect(a).toMatchObject({ base: familyRoot, resolvedBy: 'weights' });
      expect(a.why).toMatch(/is not in the set; models of 3 families hold every target tensor .*; dW's rows lie along/);
      expect(a.alignment!).toHaveLength(3);
      for (const s of a.alignment!) {
        expect(s.modules).toBe(4);
        const own = g.families.find((f) => f.includes(s.model))!.includes(base);
        if (own) expect(s.q!).toBeGreaterThanOrEqual(BASE_Q_ACCEPT);
        else expect(s.q!).toBeLessThan(1.5);
      }
      expect(g.edges.find((e) => e.child === id)).toMatchObject({ parent: familyRoot, relation: 'adapter' });
      // q_proj and v_proj are square: both among the distance layers
      expect(a.outsideDistance).toEqual([]);
    }
  });

  test('mother recover -v says which base it chose and how', () => {
    const r = spawnSync(process.execPath, [path.resolve(__dirname, '..', 'bin', 'mother.js'), 'recover', tmp.dir, '-v'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/choosing the base of lora-on-alpha among 3 families by the alignment of dW with their weights/);
    expect(r.stderr).toMatch(/adapter lora-on-alpha: base alpha \(by weights\): .*dW's rows lie along alpha's weights \(input alignment q: alpha \d\.\d\d, (beta|gamma) [01]\.\d\d, (beta|gamma) [01]\.\d\d/);
    expect(r.stdout).toMatch(/lora-on-alpha {2}\(PEFT LoRA adapter, .*base by the alignment of dW with its weights\)/);
  });

  test('its base absent from the set (the other runs fit): ambiguous, compared with nothing', async () => {
    const g = await recover(['alpha', 'alpha-ft', 'gamma', 'lora-on-beta'].map(at), { threads: 2 });
    const a = g.adapters![0];
    expect(a).toMatchObject({ id: 'lora-on-beta', base: null, resolvedBy: null });
    expect(a.why).toMatch(/base ambiguous: the alignment of dW with each family's weights does not decide/);
    for (const s of a.alignment!) expect(s.q!).toBeLessThan(1.5);
    expect(g.families).toContainEqual(['lora-on-beta']);
  });
});

(torchAvailable ? describe : describe.skip)('recover: the base of a fan_in_fan_out adapter (GPT-2 Conv1D, dW stored transposed) among unrelated models, on trained models (make_trained_gpt2_peft.py)', () => {
  const tmp = tmpDir('mother-trained-gpt2-peft-');
  const at = (id: string) => ({ id, path: path.join(tmp.dir, id) });
  beforeAll(() => {
    const r = spawnSync(PYTHON, [path.join(__dirname, 'helpers', 'make_trained_gpt2_peft.py'), tmp.dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make_trained_gpt2_peft.py failed: ${r.stderr}`);
  }, 600_000);
  afterAll(() => tmp.cleanup());

  test('q is read in dW\'s orientation from the [in, out] tensors: each adapter is hung under the run it was trained on', async () => {
    const g = await recover(['alpha', 'alpha-ft', 'beta', 'gamma', 'lora-on-alpha', 'lora-on-beta'].map(at), { threads: 2 });
    for (const [id, base] of [['lora-on-alpha', 'alpha'], ['lora-on-beta', 'beta']]) {
      const a = g.adapters!.find((x) => x.id === id)!;
      const familyRoot = g.roots.find((r) => g.families.find((f) => f.includes(r))!.includes(base))!;
      expect(a).toMatchObject({ base: familyRoot, resolvedBy: 'weights' });
      expect(a.alignment!).toHaveLength(3);
      for (const s of a.alignment!) {
        // both c_attn modules (one per layer) enter q
        expect(s.modules).toBe(2);
        const own = g.families.find((f) => f.includes(s.model))!.includes(base);
        if (own) expect(s.q!).toBeGreaterThanOrEqual(BASE_Q_ACCEPT);
        else expect(s.q!).toBeLessThan(1.8);
      }
      expect(g.edges.find((e) => e.child === id)).toMatchObject({ parent: familyRoot, relation: 'adapter' });
      // c_attn ([64, 192]) is not square: outside the distance layers, so the edge's distance is 0, and the graph says why
      expect(a.outsideDistance).toEqual(['transformer.h.0.attn.c_attn.weight', 'transformer.h.1.attn.c_attn.weight']);
      expect(a.distance).toBe(0);
    }
    const schema = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'docs', 'model-graph.schema.json'), 'utf8')) as Schema;
    const doc = JSON.parse(JSON.stringify(g));
    expect(validate(doc, schema)).toEqual([]);
    expect(validate({ ...doc, adapters: [{ ...doc.adapters[0], outsideDistance: [3] }] }, schema)).not.toEqual([]);
    expect(renderTree(g)).toMatch(/lora-on-alpha {2}\(PEFT LoRA adapter, rms distance 0 \(every target tensor is outside the distance layers, the square 2-D tensors: e\.g\. transformer\.h\.0\.attn\.c_attn\.weight\), rank 8 over 2 modules/);
  });
});
