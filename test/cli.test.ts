// The real CLI as a child process (the compiled dist/, built by `npm test`'s pretest step).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const runEnv = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
const EMULATOR = path.resolve(__dirname, '..', 'build', 'Release', 'libmother_gpu_emulator.so');
let tmp: ReturnType<typeof tmpDir>;
let models: string[];

beforeAll(() => {
  tmp = tmpDir();
  const rng = new Rng(31);
  const base = Array.from({ length: 32 * 32 }, () => 0.02 * rng.normal());
  models = [0, 1, 2].map((m) => {
    const dir = path.join(tmp.dir, 'fam', `model-${m}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
    const w = base.map((x) => x + 0.002 * m * rng.normal());
    writeSafetensors(path.join(dir, 'model.safetensors'), [
      { name: 'model.layers.0.self_attn.o_proj.weight', dtype: 'F32', shape: [32, 32], data: encode('F32', w) },
      { name: 'model.norm.weight', dtype: 'BF16', shape: [32], data: encode('BF16', w.slice(0, 32)) },
      { name: 'ids', dtype: 'I64', shape: [2], data: new Uint8Array(16) },
    ]);
    return dir;
  });
});
afterAll(() => tmp.cleanup());

describe('mother CLI', () => {
  test('recover -v says when a family is built on identical embedding rows (the bundled Llama family)', () => {
    const llm = path.resolve(__dirname, '..', 'samples', 'zoo-small', 'llm');
    const r = run('recover', llm, '-v');
    expect(r.status).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/tree on identical model\.embed_tokens\.weight rows plus the distance: \d+ to \d+ rows differ/);
    // the paper's mode, set by hand: distances alone
    const paper = run('recover', llm, '-v', '--direction', 'finetune');
    expect(paper.status).toBe(0);
    expect(paper.stderr + paper.stdout).not.toMatch(/identical model\.embed_tokens/);
  });

  test('--help and per-command help exit 0 with examples', () => {
    const h = run('--help');
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/stats/);
    expect(h.stdout).toMatch(/recover/);
    for (const cmd of ['stats', 'distances', 'recover']) {
      const r = run(cmd, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Examples:/);
    }
  });

  test('stats --json has exactly the documented fields', () => {
    const r = run('stats', models[0], '--json');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc)).toEqual(['model', 'files', 'backend', 'tensors']);
    expect(doc.backend.used).toMatch(/^(cpu|cuda)$/);
    expect(doc.model).toBe(models[0]);
    expect(doc.files).toEqual([path.join(models[0], 'model.safetensors')]);
    expect(doc.tensors.map((t: { name: string }) => t.name)).toEqual(['model.layers.0.self_attn.o_proj.weight', 'model.norm.weight', 'ids']);
    for (const t of doc.tensors) {
      expect(Object.keys(t)).toEqual(['name', 'dtype', 'shape', 'count', 'mean', 'std', 'skewness', 'kurtosis', 'min', 'max', 'l2', 'absMean', 'nan', 'inf']);
    }
    expect(doc.tensors[2].kurtosis).toBeNull();
    expect(typeof doc.tensors[0].kurtosis).toBe('number');
  });

  test('stats prints a table with one row per tensor and a summary', () => {
    const r = run('stats', models[0]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^tensor\s+dtype\s+shape\s+mean/m);
    expect(r.stdout).toMatch(/model\.norm\.weight\s+BF16\s+\[32\]/);
    expect(r.stdout).toMatch(/3 tensors in 1 file\(s\)/);
  });

  test('usage errors exit 2, bad input exits 3, never a stack trace', () => {
    for (const args of [['stats'], ['stats', models[0], '--threads', 'x'], ['nope'], ['distances', models[0], '--metric', 'cosine'], ['recover', models[0], '--families', '0']]) {
      const r = run(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const missing = run('stats', path.join(tmp.dir, 'missing'));
    expect(missing.status).toBe(3);
    expect(missing.stderr).toMatch(/no such file or directory/);
  });

  test('distances: N x N matrix, JSON with per-layer matrices and bytes read once', () => {
    const r = run('distances', ...models, '--json');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.matrix).toHaveLength(3);
    expect(doc.matrix[0][0]).toBe(0);
    expect(doc.matrix[0][1]).toBeGreaterThan(0);
    expect(doc.matrix[0][1]).toBe(doc.matrix[1][0]);
    expect(doc.layers.map((l: { name: string }) => l.name)).toEqual(['model.layers.0.self_attn.o_proj.weight', 'model.norm.weight']);
    const sizes = models.map(() => 32 * 32 * 4 + 32 * 2);
    expect(doc.bytesRead).toEqual(sizes);
    const text = run('distances', ...models, '--metric', 'l1');
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^l1\s+\[0\]\s+\[1\]\s+\[2\]/m);
  });

  test('recover: a tree on screen, versioned JSON, and the evaluation against a truth file', () => {
    const root = path.join(tmp.dir, 'fam');
    const r = run('recover', root);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/family 1 \(3 models/);
    const j = run('recover', root, '--json');
    const g = JSON.parse(j.stdout);
    expect(g.version).toBe(4);
    expect(g.models.map((m: { id: string }) => m.id)).toEqual(['model-0', 'model-1', 'model-2']);
    expect(g.edges).toHaveLength(2);
    for (const e of g.edges) {
      expect(Object.keys(e).sort()).toEqual(['child', 'confidence', 'distance', 'margin', 'parent', 'relation', 'uncertain']);
      // the bootstrap support: a fraction of the 100 replicates
      expect(e.confidence).toBeGreaterThanOrEqual(0);
      expect(e.confidence).toBeLessThanOrEqual(1);
      expect(Math.abs(e.confidence * 100 - Math.round(e.confidence * 100))).toBeLessThan(1e-9);
    }
    const truthFile = path.join(tmp.dir, 'truth.json');
    fs.writeFileSync(truthFile, JSON.stringify({ edges: g.edges.map((e: { parent: string; child: string }) => [e.parent, e.child]) }));
    const ev = run('recover', root, '--truth', truthFile, '-q');
    expect(ev.stderr).toMatch(/directed edge accuracy 100\.0%/);
    const bad = run('recover', root, '--truth', path.join(tmp.dir, 'nope.json'));
    expect(bad.status).toBe(3);
  });

  test('--backend: cpu always works; cuda without a usable GPU fails with the reason; the emulated device gives the same tree', () => {
    const missing = path.join(tmp.dir, 'no', 'libmother_cuda.so');
    const cpu = runEnv({ MOTHER_CUDA_LIBRARY: missing }, 'recover', ...models, '--backend', 'cpu', '--json');
    expect(cpu.status).toBe(0);
    expect(JSON.parse(cpu.stdout).backend).toEqual({ requested: 'cpu', used: 'cpu' });
    const cuda = runEnv({ MOTHER_CUDA_LIBRARY: missing }, 'stats', models[0], '--backend', 'cuda');
    expect(cuda.status).toBe(1);
    expect(cuda.stderr).toMatch(/^mother: MOTHER_CUDA_LIBRARY names .*which does not exist/);
    expect(cuda.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const auto = runEnv({ MOTHER_CUDA_LIBRARY: missing }, 'recover', ...models, '-v');
    expect(auto.status).toBe(0);
    expect(auto.stderr).toMatch(/read on CPU \(MOTHER_CUDA_LIBRARY names/);
    expect(auto.stdout).toMatch(/read once in .* on CPU/);
    const emu = runEnv({ MOTHER_CUDA_LIBRARY: EMULATOR }, 'recover', ...models, '--backend', 'cuda', '--json');
    expect(emu.status).toBe(0);
    const g = JSON.parse(emu.stdout), c = JSON.parse(cpu.stdout);
    expect(g.backend).toMatchObject({ requested: 'cuda', used: 'cuda', device: 'CPU emulation of the CUDA kernels' });
    expect(g.edges.map((e: { parent: string; child: string }) => [e.parent, e.child])).toEqual(c.edges.map((e: { parent: string; child: string }) => [e.parent, e.child]));
    const bad = runEnv({ MOTHER_BACKEND: 'tpu' }, 'stats', models[0]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/MOTHER_BACKEND must be auto, cpu or cuda, got "tpu"/);
    expect(run('stats', models[0], '--backend', 'tpu').status).toBe(2);
  });
});
