// The spectral entropy of 2-D tensors (native/stats/spectrum.h, lib/io/spectra.ts) against numpy:
// H = -sum p log p, p = s^2 / sum s^2 over numpy.linalg.svd's singular values (LAPACK) of the
// stored values in float64, on the whole matrix or on its evenly strided sub-block (rows
// i * R // b, columns likewise), for every float dtype, heavy tails, tiny and huge scales,
// 1 x 1 and thin matrices; NaN/Inf and all-zero blocks give NaN; what is no 2-D tensor gives null.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { resolveModel } from '../lib';
import { spectralEntropies } from '../lib/io/spectra';
import { Rng } from './helpers/reference';
import { decode, encode, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir('mother-spectra-');
});
afterAll(() => tmp.cleanup());

interface Case { name: string; dtype: FloatDtype; shape: [number, number]; values: number[] }
const rng = new Rng(23);
const gauss = (n: number, s = 1) => Array.from({ length: n }, () => s * rng.normal());
const heavy = (n: number) => Array.from({ length: n }, () => rng.normal() / Math.max(1e-3, Math.abs(rng.normal())) ** 1.5);
const lowRankPlusNoise = (r: number, c: number) => {
  const u = gauss(r), v = gauss(c);
  return Array.from({ length: r * c }, (_, k) => 5 * u[Math.floor(k / c)] * v[k % c] + 0.01 * rng.normal());
};
const CASES: Case[] = [
  { name: 'f32.square', dtype: 'F32', shape: [24, 24], values: gauss(576, 0.02) },
  { name: 'f32.heavy', dtype: 'F32', shape: [20, 33], values: heavy(660) },
  { name: 'f32.lowrank', dtype: 'F32', shape: [30, 18], values: lowRankPlusNoise(30, 18) },
  { name: 'f32.tiny', dtype: 'F32', shape: [12, 12], values: gauss(144, 1e-30) },
  { name: 'f32.huge', dtype: 'F32', shape: [12, 12], values: gauss(144, 1e30) },
  { name: 'bf16.strided', dtype: 'BF16', shape: [53, 41], values: gauss(53 * 41, 0.05) },
  { name: 'f16.strided', dtype: 'F16', shape: [17, 70], values: gauss(17 * 70, 0.3) },
  { name: 'f64.square', dtype: 'F64', shape: [19, 19], values: gauss(361, 0.1) },
  { name: 'f8.strided', dtype: 'F8_E4M3', shape: [22, 31], values: gauss(22 * 31, 0.5) },
  { name: 'f32.one', dtype: 'F32', shape: [1, 1], values: [0.7] },
  { name: 'f32.row', dtype: 'F32', shape: [1, 9], values: gauss(9) },
];
const MAX_DIM = 16;

let file: string;
let refs: Record<string, { full: number; block: number }>;
beforeAll(() => {
  const stored = CASES.map((c) => ({ ...c, values: Array.from(decode(c.dtype, encode(c.dtype, c.values))) }));
  file = path.join(tmp.dir, 'm', 'model.safetensors');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeSafetensors(file, [
    ...stored.map((c) => ({ name: c.name, dtype: c.dtype, shape: c.shape, data: encode(c.dtype, c.values) })),
    { name: 'nan', dtype: 'F32' as const, shape: [4, 4], data: encode('F32', gauss(16).map((x, i) => (i === 5 ? NaN : x))) },
    { name: 'inf', dtype: 'F32' as const, shape: [4, 4], data: encode('F32', gauss(16).map((x, i) => (i === 0 ? Infinity : x))) },
    { name: 'zeros', dtype: 'F32' as const, shape: [4, 4], data: encode('F32', new Array(16).fill(0)) },
    { name: 'vector', dtype: 'F32' as const, shape: [8], data: encode('F32', gauss(8)) },
  ]);
  const json = path.join(tmp.dir, 'cases.json');
  fs.writeFileSync(json, JSON.stringify({ maxDim: MAX_DIM, cases: stored }));
  const script = [
    'import json, sys', 'import numpy as np',
    'd = json.load(open(sys.argv[1]))',
    'def h(a):',
    '    s = np.linalg.svd(a, compute_uv=False)',
    '    p = s ** 2 / (s ** 2).sum()',
    '    p = p[p > 0]',
    '    return float(-(p * np.log(p)).sum())',
    'out = {}',
    'for c in d["cases"]:',
    '    R, C = c["shape"]',
    '    a = np.array(c["values"], dtype=np.float64).reshape(R, C)',
    '    br, bc = min(R, d["maxDim"]), min(C, d["maxDim"])',
    '    rows = [i * R // br for i in range(br)]',
    '    cols = [j * C // bc for j in range(bc)]',
    '    out[c["name"]] = {"full": h(a), "block": h(a[np.ix_(rows, cols)])}',
    'print(json.dumps(out))',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script, json], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`numpy reference failed (is python3-numpy installed?): ${r.stderr}`);
  refs = JSON.parse(r.stdout);
});

const names = CASES.map((c) => c.name);

test('whole matrices (max side above every shape): equal to numpy within 1e-10 relative', async () => {
  const m = await resolveModel(path.dirname(file));
  const got = await spectralEntropies(m, names, { maxDim: 4096 });
  got.forEach((g, k) => {
    const c = CASES[k];
    expect(g).not.toBeNull();
    expect([g!.rows, g!.cols, g!.blockRows, g!.blockCols]).toEqual([c.shape[0], c.shape[1], c.shape[0], c.shape[1]]);
    const ref = refs[c.name].full;
    expect(Math.abs(g!.entropy - ref)).toBeLessThanOrEqual(1e-10 * Math.max(1, Math.abs(ref)));
  });
  // one singular value: all the mass in one direction
  expect(got[names.indexOf('f32.one')]!.entropy).toBe(0);
  expect(got[names.indexOf('f32.row')]!.entropy).toBe(0);
});

test('strided sub-blocks of at most maxDim x maxDim: the same elements numpy takes, the same entropy', async () => {
  const m = await resolveModel(path.dirname(file));
  const got = await spectralEntropies(m, names, { maxDim: MAX_DIM });
  got.forEach((g, k) => {
    const c = CASES[k];
    expect([g!.blockRows, g!.blockCols]).toEqual([Math.min(MAX_DIM, c.shape[0]), Math.min(MAX_DIM, c.shape[1])]);
    const ref = refs[c.name].block;
    expect(Math.abs(g!.entropy - ref)).toBeLessThanOrEqual(1e-10 * Math.max(1, Math.abs(ref)));
  });
  // the sub-block differs from the whole where the matrix is larger
  const s = got[names.indexOf('bf16.strided')]!;
  expect(Math.abs(s.entropy - refs['bf16.strided'].full)).toBeGreaterThan(1e-3);
});

test('NaN, Inf and all-zero blocks: NaN; a 1-D tensor and a missing name: null; bad maxDim refused', async () => {
  const m = await resolveModel(path.dirname(file));
  const got = await spectralEntropies(m, ['nan', 'inf', 'zeros', 'vector', 'absent']);
  expect(got[0]!.entropy).toBeNaN();
  expect(got[1]!.entropy).toBeNaN();
  expect(got[2]!.entropy).toBeNaN();
  expect(got[3]).toBeNull();
  expect(got[4]).toBeNull();
  for (const maxDim of [0, 1.5, 70000, NaN]) await expect(spectralEntropies(m, ['nan'], { maxDim })).rejects.toThrow(/maxDim/);
  const ac = new AbortController();
  ac.abort();
  await expect(spectralEntropies(m, ['nan'], { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
  await expect(spectralEntropies({ files: [path.join(tmp.dir, 'cases.json')], index: '' }, ['nan'])).rejects.toThrow();
});

test('recover: the spectral clock is measured after the read (progress stage "spectra"), scored with the others, and not with a mode given', async () => {
  const { recover } = await import('../lib');
  const r = new Rng(7);
  const base = Array.from({ length: 24 * 24 }, () => 0.05 * r.normal());
  const models = [0, 1, 2].map((k) => {
    const w = base.map((x) => x + (k === 0 ? 0 : 0.01 * r.normal()));
    const f = path.join(tmp.dir, 'fam', `m${k}.safetensors`);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    writeSafetensors(f, ['a', 'b'].map((nm) => ({ name: `layers.0.${nm}.weight`, dtype: 'F32' as const, shape: [24, 24], data: encode('F32', w.map((x) => (nm === 'a' ? x : -x))) })));
    return { id: `m${k}`, path: f };
  });
  const events: { stage: string; spectraDone?: number; spectraTotal?: number }[] = [];
  const g = await recover(models, { onProgress: (p) => events.push(p) });
  expect(g.families).toHaveLength(1);
  const spectra = events.filter((e) => e.stage === 'spectra');
  expect(spectra[0]).toMatchObject({ spectraDone: 0, spectraTotal: 3 });
  expect(spectra[spectra.length - 1]).toMatchObject({ spectraDone: 3, spectraTotal: 3 });
  // after the read: no read event follows the first spectra event (the difference shapes, read per family, come after)
  const after = events.slice(events.indexOf(spectra[0])).map((e) => e.stage);
  expect(after.every((s) => s === 'spectra' || s === 'differences')).toBe(true);
  expect(after.lastIndexOf('spectra')).toBeLessThan(after.indexOf('differences'));
  expect(g.familyReports[0].clock.scores.map((s) => s.clock)).toEqual(expect.arrayContaining(['spectral+', 'spectral-']));
  const paper: string[] = [];
  const p = await recover(models, { direction: 'finetune', onProgress: (e) => paper.push(e.stage) });
  expect(paper).not.toContain('spectra');
  expect(paper).not.toContain('differences');
  expect(p.familyReports[0].clock.scores.map((s) => s.clock)).not.toContain('spectral+');
});
