// PyTorch checkpoints written by torch itself (test/fixtures/pytorch, made by
// make-pytorch-fixtures.py with Debian's python3-torch): every layout (zip, legacy, pickle
// protocol 4, an nn.Module's state dict, Parameters, nested training checkpoints, shared
// storages and views, sharded .bin with an index), read by mother and checked against torch's
// own description of each tensor and its statistics in float64 (scipy's skewness and excess
// kurtosis). When torch is importable, the generator also runs into a temporary folder and the
// fresh files are checked the same way.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { discoverHfCache, discoverModels, inspectModel, pairwiseStats, resolveModel, scanModel, TensorStats } from '../lib';
import { tmpDir } from './helpers/tmp';

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'pytorch');
const GENERATOR = path.join(__dirname, 'fixtures', 'make-pytorch-fixtures.py');
const CLI = path.join(ROOT, 'bin', 'mother.js');
const PYTHON = '/usr/bin/python3';

type Stats = Record<'mean' | 'std' | 'skewness' | 'kurtosis' | 'min' | 'max' | 'l2' | 'absMean', number | null> & { nan: number; inf: number };
interface ExpectedTensor {
  name: string;
  dtype: string;
  shape: number[];
  count: number;
  contiguous: boolean;
  stats: Stats | null;
}
interface Case {
  name: string;
  input: string;
  layout: 'zip' | 'legacy';
  tensors: ExpectedTensor[];
}
interface Expected {
  torch: string;
  cases: Case[];
}

const ITEMSIZE: Record<string, number> = { F64: 8, I64: 8, C64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const load = (dir: string): Expected => JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));

/** a equals b to 1e-9 relative (of `scale` where b is near 0), or both null. */
function close(a: number | null, b: number | null, scale: number, what: string): void {
  if (b === null) {
    expect({ what, a }).toEqual({ what, a: null });
    return;
  }
  expect({ what, isNumber: typeof a === 'number' }).toEqual({ what, isNumber: true });
  const tol = 1e-9 * Math.max(Math.abs(b), scale);
  if (!(Math.abs(a! - b) <= tol)) throw new Error(`${what}: mother ${a}, torch ${b} (tolerance ${tol})`);
}

function checkStats(got: TensorStats, want: ExpectedTensor, where: string): void {
  const at = `${where} ${want.name}`;
  const readable = want.contiguous || want.count === 0;
  if (!readable) {
    expect({ at, unreadable: got.unreadable }).toEqual({ at, unreadable: expect.stringMatching(/^not contiguous in its storage/) });
    expect({ at, mean: got.mean, kurtosis: got.kurtosis, nan: got.nan }).toEqual({ at, mean: null, kurtosis: null, nan: null });
    return;
  }
  expect({ at, unreadable: got.unreadable }).toEqual({ at, unreadable: undefined });
  const s = want.stats;
  if (s === null) {
    expect({ at, mean: got.mean, nan: got.nan }).toEqual({ at, mean: null, nan: null });
    return;
  }
  expect({ at, nan: got.nan, inf: got.inf }).toEqual({ at, nan: s.nan, inf: s.inf });
  const spread = Math.max(s.std ?? 0, 1e-300);
  close(got.mean, s.mean, spread, `${at} mean`);
  close(got.std, s.std, 0, `${at} std`);
  close(got.min, s.min, 0, `${at} min`);
  close(got.max, s.max, 0, `${at} max`);
  close(got.l2, s.l2, 0, `${at} l2`);
  close(got.absMean, s.absMean, 0, `${at} absMean`);
  close(got.skewness, s.skewness, 1, `${at} skewness`);
  close(got.kurtosis, s.kurtosis, 1, `${at} kurtosis`);
}

function checkSet(label: string, dir: () => string, expected: () => Expected): void {
  describe(label, () => {
    const names = load(FIXTURES).cases.map((c) => c.name);
    test.each(names)('%s: tensors, dtypes, shapes and layout as torch wrote them', async (name) => {
      const c = expected().cases.find((x) => x.name === name)!;
      const h = await inspectModel(path.join(dir(), c.input));
      const byName = new Map(h.tensors.map((t) => [t.name, t]));
      expect([...byName.keys()].sort()).toEqual(c.tensors.map((t) => t.name).sort());
      for (const t of c.tensors) {
        const got = byName.get(t.name)!;
        expect({ name: t.name, dtype: got.dtype, shape: got.shape }).toEqual({ name: t.name, dtype: t.dtype, shape: t.shape });
        expect({ name: t.name, unreadable: got.unreadable !== undefined }).toEqual({ name: t.name, unreadable: !(t.contiguous || t.count === 0) });
        if (t.contiguous) expect({ name: t.name, bytes: got.bytes }).toEqual({ name: t.name, bytes: t.count * ITEMSIZE[t.dtype] });
      }
      for (const f of h.files) expect(f.metadata['torch.layout']).toBe(c.layout);
      // tensors are listed in file order (then object order)
      const offsets = h.tensors.filter((t) => t.file === h.tensors[0].file).map((t) => t.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    });

    test.each(names)('%s: statistics equal torch\'s in float64 (scipy skewness and kurtosis)', async (name) => {
      const c = expected().cases.find((x) => x.name === name)!;
      const s = await scanModel(path.join(dir(), c.input), { threads: 2, backend: 'cpu' });
      const byName = new Map(s.tensors.map((t) => [t.name, t]));
      for (const t of c.tensors) checkStats(byName.get(t.name)!, t, name);
      // the same with one thread and 4 KiB jobs: a tensor split across many jobs
      const small = await scanModel(path.join(dir(), c.input), { threads: 1, chunkBytes: 4096, backend: 'cpu' });
      for (const t of c.tensors) checkStats(small.tensors.find((x) => x.name === t.name)!, t, `${name} (4 KiB jobs)`);
    });
  });
}

checkSet(`committed fixtures (${load(FIXTURES).torch})`, () => FIXTURES, () => load(FIXTURES));

// Fresh files from the installed torch, when there is one.
const torchAvailable = spawnSync(PYTHON, ['-c', 'import torch, scipy'], { encoding: 'utf8' }).status === 0;
if (torchAvailable) {
  const fresh = tmpDir('mother-pytorch-');
  afterAll(() => fresh.cleanup());
  let generated: Expected | undefined;
  const generate = (): Expected => {
    if (!generated) {
      const r = spawnSync(PYTHON, [GENERATOR, fresh.dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`make-pytorch-fixtures.py failed: ${r.stderr}`);
      generated = load(fresh.dir);
    }
    return generated;
  };
  checkSet('files written now by the installed torch', () => (generate(), fresh.dir), generate);
} else {
  test.skip('files written now by the installed torch (no torch: /usr/bin/python3 -c "import torch, scipy" failed)', () => undefined);
}

describe('PyTorch checkpoints in the rest of mother', () => {
  test('the zip, legacy and protocol-4 copies of one state dict are the same model (distance 0)', async () => {
    const files = ['zip-dtypes.pt', 'legacy-dtypes.pt', 'zip-protocol-4.pt', 'legacy-protocol-4.pt'].map((f) => path.join(FIXTURES, f));
    const d = await pairwiseStats(files, { metrics: ['rms', 'maxdiff'], threads: 2, backend: 'cpu' });
    expect(Array.from(d.aggregates.meanRms).every((v) => v === 0)).toBe(true);
    expect(d.layers.map((l) => l.name).sort()).toEqual(['bf16', 'empty', 'empty_2d', 'f16', 'f32', 'f64', 'nonfinite', 'scalar', 'scalar_f64']);
  });

  test('views of one storage: offsets into the shared bytes; non-contiguous ones are skipped in comparisons with the reason', async () => {
    const h = await inspectModel(path.join(FIXTURES, 'shared-views.pt'));
    const t = Object.fromEntries(h.tensors.map((x) => [x.name, x]));
    expect(t.tied.offset).toBe(t.base.offset);
    expect(t.row.offset).toBe(t.base.offset + 2 * 8 * 4);
    expect(t.rows.offset).toBe(t.base.offset + 8 * 4);
    expect(t.flat_tail.offset).toBe(t.base.offset + 10 * 4);
    expect(t.last.offset).toBe(t.base.offset + 47 * 4);
    expect(t.other_tail.offset).toBe(t.other.offset + 2 * 2);
    expect(t.transposed.unreadable).toMatch(/shape \[8, 6\], strides \[1, 8\]/);
    expect(t.expanded.unreadable).toMatch(/strides \[0, 1\]/);
    const d = await pairwiseStats([path.join(FIXTURES, 'shared-views.pt'), path.join(FIXTURES, 'shared-views-legacy.pt')], { threads: 2, backend: 'cpu' });
    expect(Array.from(d.aggregates.meanRms)).toEqual([0, 0, 0, 0]);
    const skipped = d.skipped.filter((s) => s.name === 'transposed');
    expect(skipped.map((s) => s.model).sort()).toEqual([0, 1]);
    expect(skipped[0].reason).toMatch(/^not read: not contiguous/);
    expect(d.layers.map((l) => l.name)).toEqual(expect.arrayContaining(['base', 'tied', 'row', 'rows', 'flat_tail', 'other_tail']));
    expect(d.layers.map((l) => l.name)).not.toContain('column');
  });

  test('a nested training checkpoint: tensors named by their dotted path, other values ignored', async () => {
    const h = await inspectModel(path.join(FIXTURES, 'nested.ckpt'));
    expect(h.tensors.map((t) => t.name).sort()).toEqual(
      ['history.0', 'history.1', 'optimizer.state.0.exp_avg', 'optimizer.state.0.step', 'state_dict.encoder.bias', 'state_dict.encoder.weight'],
    );
  });

  test('discovery: a folder with pytorch_model.bin only, with both formats (safetensors preferred), a sharded .bin with its index', async () => {
    expect(await resolveModel(path.join(FIXTURES, 'hf-bin'))).toMatchObject({ files: [path.join(FIXTURES, 'hf-bin', 'pytorch_model.bin')], index: '', config: { model_type: 'tiny' } });
    expect(await resolveModel(path.join(FIXTURES, 'hf-both'))).toMatchObject({ files: [path.join(FIXTURES, 'hf-both', 'model.safetensors')] });
    expect(await resolveModel(path.join(FIXTURES, 'sharded'))).toMatchObject({ files: [], index: path.join(FIXTURES, 'sharded', 'pytorch_model.bin.index.json') });
    expect(await resolveModel(path.join(FIXTURES, 'sharded', 'pytorch_model.bin.index.json'))).toMatchObject({ index: path.join(FIXTURES, 'sharded', 'pytorch_model.bin.index.json') });
    const h = await inspectModel(path.join(FIXTURES, 'sharded'));
    expect(h.files.map((f) => path.basename(f.path))).toEqual(['pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin']);
    expect(h.tensors.map((t) => t.name).sort()).toEqual(['a.bias', 'a.weight', 'b.bias', 'b.weight']);
    const both = await scanModel(path.join(FIXTURES, 'hf-both'));
    expect(both.tensors.map((t) => t.name)).toEqual(['from_safetensors']);
    const found = (await discoverModels(FIXTURES)).map((m) => m.id);
    expect(found).toEqual(expect.arrayContaining(['hf-bin', 'hf-both', 'sharded']));
  });

  test('the Hugging Face cache: a repo with only pytorch_model.bin is a model', async () => {
    const cache = tmpDir('mother-hf-');
    try {
      const repo = path.join(cache.dir, 'models--org--bin-only');
      const commit = 'a'.repeat(40);
      fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
      fs.mkdirSync(path.join(repo, 'blobs'));
      fs.mkdirSync(path.join(repo, 'snapshots', commit), { recursive: true });
      fs.writeFileSync(path.join(repo, 'refs', 'main'), commit);
      fs.copyFileSync(path.join(FIXTURES, 'hf-bin', 'pytorch_model.bin'), path.join(repo, 'blobs', 'b1'));
      fs.symlinkSync('../../blobs/b1', path.join(repo, 'snapshots', commit, 'pytorch_model.bin'));
      const found = await discoverHfCache(cache.dir);
      expect(found.map((m) => m.id)).toEqual(['org/bin-only']);
      const s = await scanModel(found[0].path);
      expect(s.tensors.map((t) => t.name).sort()).toEqual(['model.embed.weight', 'model.head.weight']);
    } finally {
      cache.cleanup();
    }
  });

  test('`mother stats pytorch_model.bin` (text and --json), and the reasons for tensors not read', () => {
    const file = path.join(FIXTURES, 'hf-bin', 'pytorch_model.bin');
    const r = spawnSync(process.execPath, [CLI, 'stats', file, '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.tensors.map((t: { name: string }) => t.name).sort()).toEqual(['model.embed.weight', 'model.head.weight']);
    const text = spawnSync(process.execPath, [CLI, 'stats', path.join(FIXTURES, 'shared-views.pt')], { encoding: 'utf8' });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/not read: transposed: not contiguous in its storage/);
    const json = JSON.parse(spawnSync(process.execPath, [CLI, 'stats', path.join(FIXTURES, 'shared-views.pt'), '--json'], { encoding: 'utf8' }).stdout);
    expect(json.tensors.find((t: { name: string }) => t.name === 'cols').unreadable).toMatch(/not contiguous/);
  });
});
