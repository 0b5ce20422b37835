// PEFT LoRA adapters (issue 14.3): the config and factors validated against each other, the
// difference dW = s B A to the base from r x r Gram products (against torch's dense float64
// dW: norms, singular values, ranks), the base found by name or by fit or reported absent, the
// adapter the child of its base with relation 'adapter', and `mother stats` on an adapter.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { adapterDifferences, planAdapter, readAdapterConfig, symmetricEigen } from '../lib/io/adapter';
import { discoverModels, resolveModel } from '../lib/io/discovery';
import { inspectResolved } from '../lib/io/inspect';
import { MotherError, recover } from '../lib';
import { encode, writeSafetensors } from './helpers/safetensors';
import { Schema, validate } from './helpers/schema';
import { tmpDir } from './helpers/tmp';

const PYTHON = '/usr/bin/python3';
const GENERATOR = path.join(__dirname, 'helpers', 'make_peft.py');
const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
const torchAvailable = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

async function planOf(dir: string) {
  const r = await resolveModel(dir);
  return planAdapter(r.adapter!, await inspectResolved(r));
}

/** A hand-written adapter: tensors [name, shape] with F32 values, and a config. */
function writeAdapter(dir: string, config: unknown, tensors: [string, number[]][]) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  writeSafetensors(
    path.join(dir, 'adapter_model.safetensors'),
    tensors.map(([name, shape]) => ({ name, dtype: 'F32', shape, data: encode('F32', Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + 1))) })),
  );
}

describe('symmetricEigen', () => {
  test('eigenvalues of a known symmetric matrix, and A V = V diag(values)', () => {
    // [[2, 1, 0], [1, 2, 1], [0, 1, 2]]: 2 - sqrt 2, 2, 2 + sqrt 2
    const a = Float64Array.from([2, 1, 0, 1, 2, 1, 0, 1, 2]);
    const { values, vectors } = symmetricEigen(a, 3);
    expect([...values].sort((x, y) => x - y).map((v) => v.toFixed(12))).toEqual([2 - Math.SQRT2, 2, 2 + Math.SQRT2].map((v) => v.toFixed(12)));
    for (let j = 0; j < 3; j++)
      for (let i = 0; i < 3; i++) {
        let av = 0;
        for (let k = 0; k < 3; k++) av += a[i * 3 + k] * vectors[k * 3 + j];
        expect(Math.abs(av - values[j] * vectors[i * 3 + j])).toBeLessThan(1e-12);
      }
  });
});

describe('adapter config and factors: validation', () => {
  const tmp = tmpDir('mother-adapter-');
  afterAll(() => tmp.cleanup());
  const ok = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] };
  const A = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
  const B = 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight';

  test('a valid adapter: one linear module, scaling alpha / r; rank_pattern and alpha_pattern per module', async () => {
    const d = path.join(tmp.dir, 'ok');
    writeAdapter(d, { ...ok, rank_pattern: { 'layers.1.self_attn.q_proj': 3 }, alpha_pattern: { q_proj: 6 } }, [
      [A, [2, 8]], [B, [5, 2]],
      ['base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight', [3, 8]], ['base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight', [5, 3]],
      ['base_model.model.score.weight', [2, 5]],
    ]);
    const plan = await planOf(d);
    expect(plan.modules.map((m) => [m.target, m.shape, m.r, m.alpha, m.scaling])).toEqual([
      ['model.layers.0.self_attn.q_proj.weight', [5, 8], 2, 6, 3],
      ['model.layers.1.self_attn.q_proj.weight', [5, 8], 3, 6, 2],
    ]);
    expect(plan.others).toEqual(['base_model.model.score.weight']);
  });

  const cases: [string, unknown, [string, number[]][], string, RegExp, string | undefined][] = [
    ['lora_B missing', ok, [[A, [2, 8]]], 'ERR_ADAPTER_TENSOR', /lora_B of module model\.layers\.0\.self_attn\.q_proj is missing/, A],
    ['B columns differ from r', ok, [[A, [2, 8]], [B, [5, 3]]], 'ERR_ADAPTER_TENSOR', /3 columns, but r in adapter_config.json is 2/, B],
    ['A rows differ from r', ok, [[A, [4, 8]], [B, [5, 2]]], 'ERR_ADAPTER_TENSOR', /4 rows, but r in adapter_config.json is 2/, A],
    ['a 1-D factor', ok, [[A, [16]], [B, [5, 2]]], 'ERR_ADAPTER_TENSOR', /a LoRA factor is 2-D/, A],
    ['a conv factor', ok, [[A, [2, 8, 1, 1]], [B, [5, 2, 1, 1]]], 'ERR_ADAPTER_TENSOR', /LoRA on convolutions is not read/, A],
    ['module outside target_modules', { ...ok, target_modules: ['v_proj'] }, [[A, [2, 8]], [B, [5, 2]]], 'ERR_ADAPTER_TENSOR', /not in target_modules \(v_proj\)/, A],
    ['a LoRA name without base_model.model.', ok, [['model.q_proj.lora_A.weight', [2, 8]]], 'ERR_ADAPTER_TENSOR', /not named as PEFT names them/, 'model.q_proj.lora_A.weight'],
    ['no LoRA tensor', ok, [['base_model.model.score.weight', [2, 5]]], 'ERR_ADAPTER_TENSOR', /no LoRA tensors/, undefined],
    ['config not JSON', '{r: 2', [[A, [2, 8]], [B, [5, 2]]], 'ERR_ADAPTER_CONFIG', /not valid JSON/, undefined],
    ['r not a positive integer', { ...ok, r: 0 }, [[A, [2, 8]], [B, [5, 2]]], 'ERR_ADAPTER_CONFIG', /r must be a positive integer, got 0/, undefined],
    ['no r', { peft_type: 'LORA' }, [[A, [2, 8]], [B, [5, 2]]], 'ERR_ADAPTER_CONFIG', /no r \(the LoRA rank\)/, undefined],
    ['another PEFT type', { ...ok, peft_type: 'IA3' }, [[A, [2, 8]], [B, [5, 2]]], 'ERR_ADAPTER_CONFIG', /peft_type IA3: only LoRA/, undefined],
    ['DoRA', { ...ok, use_dora: true }, [[A, [2, 8]], [B, [5, 2]]], 'ERR_ADAPTER_CONFIG', /DoRA/, undefined],
    ['rank_pattern not an object', { ...ok, rank_pattern: [1] }, [[A, [2, 8]], [B, [5, 2]]], 'ERR_ADAPTER_CONFIG', /rank_pattern must be an object/, undefined],
  ];
  test.each(cases)('%s', async (name, config, tensors, code, message, tensor) => {
    const d = path.join(tmp.dir, name.replace(/\W+/g, '-'));
    writeAdapter(d, config, tensors);
    let err: unknown;
    try {
      await planOf(d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MotherError);
    const e = err as MotherError;
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.file).toBe(code === 'ERR_ADAPTER_CONFIG' ? path.join(d, 'adapter_config.json') : path.join(d, 'adapter_model.safetensors'));
    expect(e.tensor).toBe(tensor);
  });

  test('adapter_config.json without weights is no model (discovery passes over it)', async () => {
    const d = path.join(tmp.dir, 'empty-adapter');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'adapter_config.json'), JSON.stringify(ok));
    await expect(resolveModel(d)).rejects.toMatchObject({ code: 'ERR_NOT_A_MODEL', message: expect.stringMatching(/no adapter_model.safetensors or adapter_model.bin/) });
    expect(await readAdapterConfig(path.join(d, 'adapter_config.json'))).toMatchObject({ r: 2, loraAlpha: 4, useRslora: false, baseModel: null });
  });
});

(torchAvailable ? describe : describe.skip)('adapters written with torch, against the dense float64 dW', () => {
  const tmp = tmpDir('mother-peft-');
  let ref: Record<string, { modules: Record<string, { frobenius: number; rank: number; rms: number; sv: number[] }>; squareRms: number; squareRank: number; frobenius: number }>;
  const at = (id: string) => path.join(tmp.dir, id);
  beforeAll(() => {
    const r = spawnSync(PYTHON, [GENERATOR, tmp.dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make_peft.py failed: ${r.stderr}`);
    ref = JSON.parse(fs.readFileSync(path.join(tmp.dir, 'reference.json'), 'utf8'));
  }, 120_000);
  afterAll(() => tmp.cleanup());

  test.each(['lora-named', 'lora-rslora', 'lora-wide'])('%s: ||dW||_F, singular values and rank per module from the Gram products', async (id) => {
    const diffs = await adapterDifferences(await planOf(at(id)));
    const want = ref[id].modules;
    expect(diffs.map((d) => d.target).sort()).toEqual(Object.keys(want).sort());
    for (const d of diffs) {
      const w = want[d.target];
      expect(relErr(d.frobenius, w.frobenius)).toBeLessThan(1e-12);
      expect(relErr(d.rms, w.rms)).toBeLessThan(1e-12);
      expect(d.rank).toBe(w.rank);
      expect(d.singularValues.length).toBe(w.sv.length);
      d.singularValues.forEach((s, i) => expect(relErr(s, w.sv[i])).toBeLessThan(1e-9));
    }
  });

  test('discovery: adapter folders are models; mother stats lists the LoRA factors and says it is an adapter', () => {
    return discoverModels(tmp.dir).then((found) => {
      expect(found.map((m) => m.id)).toEqual(['base', 'ft', 'indep', 'lora-named', 'lora-rslora', 'lora-wide']);
      const r = spawnSync(process.execPath, [BIN, 'stats', at('lora-rslora')], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(/PEFT LoRA adapter \(r 3, lora_alpha 6, rslora, base "someone\/not-here"\): read adapter_model.bin/);
      expect(r.stdout).toContain('base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight');
      const j = JSON.parse(spawnSync(process.execPath, [BIN, 'stats', at('lora-named'), '--json'], { encoding: 'utf8' }).stdout);
      expect(j.tensors.map((t: { name: string }) => t.name).filter((n: string) => /lora_[AB]\.weight$/.test(n))).toHaveLength(12);
    });
  });

  test('recover: each adapter the child of its base (by name), ambiguous when independent models fit too, absent when nothing fits', async () => {
    const ids = ['base', 'ft', 'indep', 'lora-named', 'lora-rslora', 'lora-wide'];
    const g = await recover(ids.map((id) => ({ id, path: at(id) })), { threads: 1 });
    const named = g.adapters!.find((a) => a.id === 'lora-named')!;
    expect(named).toMatchObject({ base: 'base', resolvedBy: 'name', declaredBase: 'org/base', r: 4, loraAlpha: 8, useRslora: false, candidates: ['base', 'ft', 'indep'] });
    const edge = g.edges.find((e) => e.child === 'lora-named')!;
    expect(edge).toMatchObject({ parent: 'base', relation: 'adapter', confidence: null });
    const fam = g.families.find((f) => f.includes('base'))!;
    expect(fam.sort()).toEqual(['base', 'ft', 'lora-named']);
    const report = g.familyReports.find((f) => f.members.includes('base'))!;
    expect(report.members).toContain('lora-named');
    // the family's metric between base and base + dW, against the dense reference over the square tensors
    expect(named.metric).toBe(report.metric.used);
    if (named.metric === 'rms') expect(relErr(edge.distance, ref['lora-named'].squareRms)).toBeLessThan(1e-12);
    else expect(edge.distance).toBe(ref['lora-named'].squareRank);
    expect(relErr(named.frobenius, ref['lora-named'].frobenius)).toBeLessThan(1e-12);
    expect(named.rank).toBe(2 * 4 + 2 * 4 + 2 * 2);

    const rs = g.adapters!.find((a) => a.id === 'lora-rslora')!;
    expect(rs).toMatchObject({ base: null, resolvedBy: null, candidates: ['base', 'ft', 'indep'], distance: null });
    // random factors are independent of every model: the alignment does not decide
    expect(rs.why).toMatch(/"someone\/not-here" is not in the set; models of 2 families hold every target tensor in dW's shape \(base, ft, indep\); base ambiguous: the alignment of dW with each family's weights does not decide/);
    expect(rs.alignment!.map((x) => x.model)).toEqual(['base', 'indep']);
    for (const x of rs.alignment!) expect(x.q!).toBeLessThan(1.5);
    const wide = g.adapters!.find((a) => a.id === 'lora-wide')!;
    expect(wide).toMatchObject({ base: null, candidates: [] });
    expect(wide.why).toMatch(/base absent: no model holds every target tensor in dW's shape \(e\.g\. base: model\.layers\.0\.self_attn\.q_proj\.weight is \[32,32\], dW is \[48,48\]\)/);
    expect(g.families).toEqual(expect.arrayContaining([['lora-rslora'], ['lora-wide']]));
    expect(g.edges.filter((e) => e.relation === 'adapter')).toHaveLength(1);
    expect(g.models.map((m) => m.id)).toEqual(ids);
    const schema = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'docs', 'model-graph.schema.json'), 'utf8')) as Schema;
    const doc = JSON.parse(JSON.stringify(g));
    expect(validate(doc, schema)).toEqual([]);
    expect(validate({ ...doc, adapters: [{ ...doc.adapters[0], resolvedBy: 'guess' }] }, schema)).not.toEqual([]);
  });

  test('recover: a base not named is found by fit within the one family that fits (its root); rslora scaling on the edge', async () => {
    const ids = ['base', 'ft', 'lora-rslora'];
    const g = await recover(ids.map((id) => ({ id, path: at(id) })), { threads: 1, metric: 'rank' });
    const rs = g.adapters!.find((a) => a.id === 'lora-rslora')!;
    const root = g.roots.find((r) => r === 'base' || r === 'ft')!;
    expect(rs).toMatchObject({ base: root, resolvedBy: 'fit', metric: 'rank', distance: ref['lora-rslora'].squareRank });
    expect(rs.why).toMatch(/2 models of one family hold every target tensor .*: the family root/);
    expect(g.edges.find((e) => e.child === 'lora-rslora')).toMatchObject({ parent: root, relation: 'adapter', distance: ref['lora-rslora'].squareRank });
    expect(relErr(rs.frobenius, ref['lora-rslora'].frobenius)).toBeLessThan(1e-12);
  });

  test('recover: base_model_name_or_path equal to a model id (a hub id, as in the HF cache) names it exactly; a declared base whose tensors do not fit is not taken', async () => {
    const g = await recover([{ id: 'org/base', path: at('base') }, { id: 'x/lora', path: at('lora-named') }], { threads: 1 });
    expect(g.adapters![0]).toMatchObject({ base: 'org/base', resolvedBy: 'name', why: 'base_model_name_or_path "org/base" names org/base' });
    const h = await recover([{ id: 'org/wide', path: at('base') }, { id: 'w', path: at('lora-wide') }], { threads: 1 });
    expect(h.adapters![0]).toMatchObject({ base: null, resolvedBy: null });
    expect(h.adapters![0].why).toMatch(/^base_model_name_or_path "org\/wide" names org\/wide, whose tensors do not fit \(model\.layers\.0\.self_attn\.q_proj\.weight is \[32,32\], dW is \[48,48\]\); base absent/);
  });

  test('mother recover prints the adapter under its base and why the others have none', () => {
    const r = spawnSync(process.execPath, [BIN, 'recover', tmp.dir], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    // its MLP targets (down_proj, not square) are outside the distance layers, and the line says so
    expect(r.stdout).toMatch(/lora-named {2}\(PEFT LoRA adapter, (rms|rank) distance [^ ,]+ \(2 of 6 target tensors outside the distance layers, e\.g\. model\.layers\.0\.mlp\.down_proj\.weight\), rank 20 over 6 modules, \|\|dW\|\|_F [^;]+; base named in adapter_config.json\)/);
    expect(r.stdout).toMatch(/lora-wide: PEFT LoRA adapter \(r 2, .*base absent/);
    const j = JSON.parse(spawnSync(process.execPath, [BIN, 'recover', tmp.dir, '--json'], { encoding: 'utf8' }).stdout);
    expect(j.adapters.map((a: { id: string; base: string | null }) => [a.id, a.base])).toEqual([['lora-named', 'base'], ['lora-rslora', null], ['lora-wide', null]]);
  });
});
