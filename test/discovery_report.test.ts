// What discovery used and what it skipped (issue 14.6): every format in a plain folder and in the
// Hugging Face cache (only .bin, only .gguf, only an adapter, onnx/ next to safetensors: the
// format read and what was set aside), mixed folders of bare files (GGUF next to safetensors
// next to .bin next to .onnx: four models of one set), a split GGUF set (one model), and the reason for each
// entry skipped (no weights, not a weight file, later splits, training state, dangling links,
// hidden and tool folders, loops, too deep, a folder inside a model); `recover -v` prints both.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { discoverHfCache, discoverModels, resolveModel } from '../lib';
import { DiscoverySkip } from '../lib/io/discovery';
import { KvSpec, writeGguf } from './helpers/gguf';
import { DT, onnxModel } from './helpers/onnx';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
const TORCH_BIN = path.join(__dirname, 'fixtures', 'pytorch', 'hf-bin', 'pytorch_model.bin');

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir('mother-discovery-report-');
});
afterAll(() => tmp.cleanup());

const values = (seed: number, n: number) => {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.normal());
};
const mkdirFor = (file: string) => fs.mkdirSync(path.dirname(file), { recursive: true });

function safetensors(file: string, seed: number): void {
  mkdirFor(file);
  writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [8, 8], data: encode('F32', values(seed, 64)) }]);
}

function torchBin(file: string): void {
  mkdirFor(file);
  fs.copyFileSync(TORCH_BIN, file);
}

const LLAMA: KvSpec[] = [{ key: 'general.architecture', value: { type: 'string', value: 'llama' } }];

function gguf(file: string, seed: number): void {
  mkdirFor(file);
  writeGguf(file, { kv: LLAMA, tensors: [{ name: 'blk.0.attn_v.weight', shape: [8, 8], type: 'F32', data: encode('F32', values(seed, 64)) }] });
}

/** A split set NAME-0000k-of-0000n.gguf of `n` files, one tensor each. */
function ggufSplits(dir: string, name: string, n: number, seed: number): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let k = 0; k < n; k++) {
    const file = path.join(dir, `${name}-${String(k + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.gguf`);
    const kv: KvSpec[] = [
      ...(k === 0 ? LLAMA : []),
      { key: 'split.no', value: { type: 'u16', value: k } },
      { key: 'split.count', value: { type: 'u16', value: n } },
      { key: 'split.tensors.count', value: { type: 'i32', value: n } },
    ];
    writeGguf(file, { kv, tensors: [{ name: `blk.${k}.attn_v.weight`, shape: [8, 8], type: 'F32', data: encode('F32', values(seed + k, 64)) }] });
    files.push(file);
  }
  return files;
}

function onnx(file: string, seed: number): void {
  mkdirFor(file);
  fs.writeFileSync(file, onnxModel({ initializers: [{ name: 'w', dataType: DT.FLOAT, dims: [8, 8], raw: encode('F32', values(seed, 64)) }] }));
}

function adapter(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'], base_model_name_or_path: 'org/base' }));
  const pre = 'base_model.model.model.layers.0.self_attn.q_proj';
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), [
    { name: `${pre}.lora_A.weight`, dtype: 'F32', shape: [2, 8], data: encode('F32', values(40, 16)) },
    { name: `${pre}.lora_B.weight`, dtype: 'F32', shape: [8, 2], data: encode('F32', values(41, 16)) },
  ]);
}

const text = (file: string, s = '{}') => {
  mkdirFor(file);
  fs.writeFileSync(file, s);
};

/** One folder per case, written under `dir` (a plain root, or a cache snapshot's folders). */
const CASES: Record<string, (dir: string) => void> = {
  'bin-only': (d) => {
    text(path.join(d, 'config.json'), '{"model_type": "tiny"}');
    torchBin(path.join(d, 'pytorch_model.bin'));
  },
  'gguf-only': (d) => gguf(path.join(d, 'tiny-Q8_0.gguf'), 2),
  'adapter-only': (d) => adapter(d),
  'onnx-next-to-safetensors': (d) => {
    text(path.join(d, 'config.json'));
    safetensors(path.join(d, 'model.safetensors'), 3);
    torchBin(path.join(d, 'pytorch_model.bin'));
    onnx(path.join(d, 'onnx', 'model.onnx'), 4);
    onnx(path.join(d, 'onnx', 'model_quantized.onnx'), 5);
    text(path.join(d, 'tokenizer.json'));
  },
  'onnx-only': (d) => {
    onnx(path.join(d, 'onnx', 'model.onnx'), 6);
    onnx(path.join(d, 'onnx', 'model_fp16.onnx'), 7);
  },
  'split-only': (d) => void ggufSplits(d, 'tiny-Q4_0', 3, 8),
  mixed: (d) => {
    safetensors(path.join(d, 'tiny.safetensors'), 11);
    gguf(path.join(d, 'tiny-Q8_0.gguf'), 12);
    torchBin(path.join(d, 'tiny.bin'));
    onnx(path.join(d, 'tiny.onnx'), 14);
    text(path.join(d, 'tiny.onnx_data'), 'external data');
    ggufSplits(d, 'tiny-F16', 2, 13);
    text(path.join(d, 'notes.txt'), 'not weights');
    torchBin(path.join(d, 'training_args.bin'));
  },
  'no-weights': (d) => {
    text(path.join(d, 'config.json'));
    text(path.join(d, 'tokenizer.json'));
  },
};

const MODEL_IDS = ['adapter-only', 'bin-only', 'gguf-only', 'mixed/tiny-F16-00001-of-00002.gguf', 'mixed/tiny-Q8_0.gguf', 'mixed/tiny.bin', 'mixed/tiny.onnx', 'mixed/tiny.safetensors', 'onnx-next-to-safetensors', 'onnx-only', 'split-only'];

/** The formats, splits and set-aside files every layout must give for the cases. */
function expectCases(found: { id: string; format: string; splits?: number; setAside?: { file: string; format: string }[] }[], prefix: string) {
  const by = new Map(found.map((m) => [m.id.slice(prefix.length), m]));
  expect([...by.keys()].filter((id) => !id.startsWith('deep/')).sort()).toEqual(MODEL_IDS);
  expect(by.get('bin-only')).toMatchObject({ format: 'pytorch' });
  expect(by.get('gguf-only')).toMatchObject({ format: 'gguf', splits: 1 });
  expect(by.get('adapter-only')).toMatchObject({ format: 'peft-adapter' });
  expect(by.get('split-only')).toMatchObject({ format: 'gguf', splits: 3 });
  expect(by.get('onnx-next-to-safetensors')).toMatchObject({
    format: 'safetensors',
    setAside: [{ file: 'pytorch_model.bin', format: 'pytorch' }, { file: 'onnx/model.onnx', format: 'onnx' }, { file: 'onnx/model_quantized.onnx', format: 'onnx' }],
  });
  expect(by.get('onnx-only')).toMatchObject({ format: 'onnx', setAside: [{ file: 'onnx/model_fp16.onnx', format: 'onnx' }] });
  expect(by.get('mixed/tiny.safetensors')).toMatchObject({ format: 'safetensors' });
  expect(by.get('mixed/tiny-Q8_0.gguf')).toMatchObject({ format: 'gguf', splits: 1 });
  expect(by.get('mixed/tiny.bin')).toMatchObject({ format: 'pytorch' });
  expect(by.get('mixed/tiny.onnx')).toMatchObject({ format: 'onnx' });
  expect(by.get('mixed/tiny-F16-00001-of-00002.gguf')).toMatchObject({ format: 'gguf', splits: 2 });
  for (const id of ['bin-only', 'gguf-only', 'adapter-only', 'split-only', 'mixed/tiny.safetensors', 'mixed/tiny.bin']) expect(by.get(id)!.setAside).toBeUndefined();
}

/** The skipped entries every layout must give for the cases: [id, kind, reason pattern]. */
function expectCaseSkips(skipped: DiscoverySkip[], prefix: string) {
  const got = skipped.filter((s) => s.id.startsWith(prefix)).map((s) => [s.id.slice(prefix.length), s.kind, s.reason] as const);
  const want: [string, string, RegExp][] = [
    ['mixed/notes.txt', 'not-a-model-file', /not a weight file/],
    ['mixed/tiny-F16-00002-of-00002.gguf', 'gguf-split', /split 2 of 2.*read with tiny-F16-00001-of-00002\.gguf/],
    ['mixed/training_args.bin', 'training-state', /training state/],
    ['mixed/tiny.onnx_data', 'onnx-data', /ONNX external data/],
    ['no-weights', 'no-weights', /no weights/],
  ];
  for (const [id, kind, reason] of want) expect(got).toContainEqual([id, kind, expect.stringMatching(reason)]);
  // the files of a folder without weights are summed up in its one line, not listed each
  expect(got.map((g) => g[0])).not.toContain('no-weights/config.json');
}

describe('a plain folder of every case', () => {
  let root: string;
  beforeAll(() => {
    root = path.join(tmp.dir, 'plain');
    for (const [name, make] of Object.entries(CASES)) make(path.join(root, name));
    text(path.join(root, 'README.md'), '# models');
    fs.mkdirSync(path.join(root, 'node_modules', 'x'), { recursive: true });
    safetensors(path.join(root, 'node_modules', 'x', 'model.safetensors'), 20);
    safetensors(path.join(root, '.hidden', 'model.safetensors'), 21);
    fs.symlinkSync(path.join(root, 'gone.safetensors'), path.join(root, 'dangling.safetensors'));
    fs.symlinkSync(root, path.join(root, 'loop'));
    fs.symlinkSync(path.join(root, 'bin-only'), path.join(root, 'z-alias'));
    safetensors(path.join(root, 'onnx-next-to-safetensors', 'checkpoint-10', 'model.safetensors'), 22);
    safetensors(path.join(root, 'deep', 'a', 'b', 'model.safetensors'), 23);
  });

  test('each model with the format read and what was set aside; each skipped entry with its reason', async () => {
    const skipped: DiscoverySkip[] = [];
    const found = await discoverModels(root, 8, { onSkipped: (s) => skipped.push(s) });
    expectCases(found, '');
    expect(found.map((m) => m.id)).toEqual([...MODEL_IDS, 'deep/a/b'].sort());
    expectCaseSkips(skipped, '');
    const reasons = new Map(skipped.map((s) => [s.id, s]));
    expect(reasons.get('README.md')).toMatchObject({ kind: 'not-a-model-file', path: path.join(root, 'README.md') });
    expect(reasons.get('node_modules')).toMatchObject({ kind: 'skipped-folder' });
    expect(reasons.get('.hidden')).toMatchObject({ kind: 'hidden' });
    expect(reasons.get('dangling.safetensors')).toMatchObject({ kind: 'dangling-link', reason: expect.stringMatching(/gone\.safetensors/) });
    expect(reasons.get('loop')).toMatchObject({ kind: 'already-walked' });
    expect(reasons.get('z-alias')).toMatchObject({ kind: 'duplicate', reason: expect.stringMatching(/bin-only/) });
    expect(reasons.get('onnx-next-to-safetensors/checkpoint-10')).toMatchObject({ kind: 'inside-model', reason: expect.stringMatching(/a safetensors model in a subfolder of a model folder/) });
    // a reason for every entry, and nothing listed both as a model and as skipped
    for (const s of skipped) expect(s.reason.length).toBeGreaterThan(0);
    const ids = new Set(found.map((m) => m.id));
    for (const s of skipped) expect(ids.has(s.id)).toBe(false);
    // the return value is what it was: the same models with or without the callback
    expect((await discoverModels(root)).map((m) => m.id)).toEqual(found.map((m) => m.id));
  });

  test('too deep: the folder not walked is named, with maxDepth', async () => {
    const skipped: DiscoverySkip[] = [];
    await expect(discoverModels(path.join(root, 'deep'), { maxDepth: 0, onSkipped: (s) => skipped.push(s) })).rejects.toMatchObject({ code: 'ERR_NOT_A_MODEL' });
    // the one reason is the depth: no 'no weights' line for the root on top of it
    expect(skipped).toEqual([expect.objectContaining({ id: 'a', kind: 'too-deep', reason: expect.stringMatching(/maxDepth 0/) })]);
    expect((await discoverModels(path.join(root, 'deep'), { maxDepth: 1 })).map((m) => m.id)).toEqual(['a/b']);
  });

  test('resolveModel says which file and format it read and what it set aside', async () => {
    const r = await resolveModel(path.join(root, 'onnx-next-to-safetensors'));
    expect(r).toMatchObject({ format: 'safetensors', files: [path.join(root, 'onnx-next-to-safetensors', 'model.safetensors')] });
    expect(r.note).toBe('read model.safetensors; also present: pytorch_model.bin, onnx/model.onnx, onnx/model_quantized.onnx: not read, safetensors preferred');
    const o = await resolveModel(path.join(root, 'onnx-only'));
    expect(o.note).toBe('read onnx/model.onnx; also present: onnx/model_fp16.onnx: not read, onnx/model.onnx preferred');
    expect(await resolveModel(path.join(root, 'mixed', 'tiny.bin'))).toMatchObject({ format: 'pytorch', files: [path.join(root, 'mixed', 'tiny.bin')] });
    expect(await resolveModel(path.join(root, 'split-only'))).toMatchObject({ format: 'gguf', splits: 3 });
    // Hugging Face names with a variant are the folder's own too; shards are read through their index, never set aside
    const variant = path.join(tmp.dir, 'variants', 'unet');
    safetensors(path.join(variant, 'diffusion_pytorch_model.fp16.safetensors'), 50);
    torchBin(path.join(variant, 'diffusion_pytorch_model.fp16.bin'));
    expect(await resolveModel(variant)).toMatchObject({ format: 'safetensors', setAside: [{ file: 'diffusion_pytorch_model.fp16.bin', format: 'pytorch' }] });
    const mistral = path.join(tmp.dir, 'variants', 'mistral');
    text(path.join(mistral, 'model.safetensors.index.json'), '{"weight_map": {}}');
    safetensors(path.join(mistral, 'model-00001-of-00002.safetensors'), 51);
    safetensors(path.join(mistral, 'model-00002-of-00002.safetensors'), 52);
    safetensors(path.join(mistral, 'consolidated.safetensors'), 53);
    expect(await resolveModel(mistral)).toMatchObject({
      format: 'safetensors-index', index: path.join(mistral, 'model.safetensors.index.json'), setAside: [{ file: 'consolidated.safetensors', format: 'safetensors' }],
    });
    expect((await resolveModel(mistral)).note).toBe('read model.safetensors.index.json; also present: consolidated.safetensors: not read, model.safetensors.index.json preferred');
    // several weight files, none under a Hugging Face name: no one model, point at one of them
    await expect(resolveModel(path.join(root, 'mixed'))).rejects.toMatchObject({ code: 'ERR_NOT_A_MODEL', message: expect.stringMatching(/several weight files \(tiny-F16-00001-of-00002\.gguf, tiny-Q8_0\.gguf, tiny\.bin, tiny\.onnx, \.\.\.\) and none under a Hugging Face name/) });
  });

  test('recover -v: one line per model with its format and what was set aside, one per skipped entry; nothing new without -v', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'recover', root, '-q', '--json', ...args], { encoding: 'utf8' });
    const v = run('-v');
    expect(v.stderr).not.toMatch(/internal error/);
    expect(v.status).toBe(0);
    // one set: every model of the folder, the four formats of mixed/ side by side (the adapter is listed last)
    expect(JSON.parse(v.stdout).models.map((m: { id: string }) => m.id).sort()).toEqual([...MODEL_IDS, 'deep/a/b'].sort());
    const lines = v.stderr.split('\n');
    const modelLine = (id: string) => lines.find((l) => l.startsWith(`  ${id}  `)) ?? '';
    expect(modelLine('mixed/tiny.bin')).toMatch(/ pytorch$/);
    expect(modelLine('mixed/tiny-F16-00001-of-00002.gguf')).toMatch(/ gguf, 2 splits$/);
    expect(modelLine('adapter-only')).toMatch(/ peft-adapter: PEFT LoRA adapter/);
    expect(modelLine('onnx-next-to-safetensors')).toMatch(/ safetensors: read model\.safetensors; also present: pytorch_model\.bin, onnx\/model\.onnx, onnx\/model_quantized\.onnx: not read, safetensors preferred$/);
    expect(lines).toContain(`skipped ${path.join(root, 'no-weights')}: no weights (config.json, tokenizer.json)`);
    expect(lines.some((l) => l.startsWith(`skipped ${path.join(root, 'mixed', 'training_args.bin')}: training state`))).toBe(true);
    expect(lines.some((l) => l.startsWith(`skipped ${path.join(root, 'z-alias')}: the same model as bin-only`))).toBe(true);
    const quiet = run();
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).toBe('');
  }, 60_000);
});

describe('the Hugging Face cache: the same cases as repos', () => {
  let cache: string;
  const snap = (repo: string, commit: string) => path.join(cache, `models--org--${repo}`, 'snapshots', commit);
  /** Writes the case into blobs/ and links each file from the snapshot, as huggingface_hub does. */
  function repo(name: string, make: (d: string) => void, ref: string | null = 'a'.repeat(40)) {
    const base = path.join(cache, `models--org--${name}`);
    const staging = path.join(tmp.dir, 'staging', name);
    make(staging);
    fs.mkdirSync(path.join(base, 'refs'), { recursive: true });
    fs.mkdirSync(path.join(base, 'blobs'), { recursive: true });
    if (ref !== null) fs.writeFileSync(path.join(base, 'refs', 'main'), ref);
    const walk = (dir: string, rel: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const r = path.join(rel, e.name);
        if (e.isDirectory()) walk(path.join(dir, e.name), r);
        else {
          const blob = path.join(base, 'blobs', r.split(path.sep).join('_'));
          fs.copyFileSync(path.join(dir, e.name), blob);
          const link = path.join(snap(name, 'a'.repeat(40)), r);
          fs.mkdirSync(path.dirname(link), { recursive: true });
          fs.symlinkSync(path.relative(path.dirname(link), blob), link);
        }
      }
    };
    walk(staging, '');
  }
  beforeAll(() => {
    cache = path.join(tmp.dir, 'hub');
    for (const [name, make] of Object.entries(CASES)) repo(name, make);
    repo('not-downloaded', (d) => safetensors(path.join(d, 'model.safetensors'), 30), null);
    repo('bad-ref', (d) => safetensors(path.join(d, 'model.safetensors'), 31), 'not a hash');
    fs.mkdirSync(path.join(cache, 'datasets--org--data', 'snapshots'), { recursive: true });
    fs.mkdirSync(path.join(cache, '.locks'), { recursive: true });
  });

  test('formats and set-aside files per repo; skipped repos and files with their reasons; broken entries stay warnings', async () => {
    const skipped: DiscoverySkip[] = [];
    const warnings: string[] = [];
    const found = await discoverHfCache(cache, { onSkipped: (s) => skipped.push(s), onWarning: (m) => warnings.push(m) });
    expectCases(found, 'org/');
    expectCaseSkips(skipped, 'org/');
    const reasons = new Map(skipped.map((s) => [s.id, s]));
    expect(reasons.get('org/not-downloaded')).toMatchObject({ kind: 'no-revision', reason: expect.stringMatching(/no revision main/) });
    expect(reasons.get('org/bad-ref')).toMatchObject({ kind: 'broken-cache-entry', reason: expect.stringMatching(/not a commit hash/) });
    expect(reasons.get('datasets--org--data')).toMatchObject({ kind: 'not-a-model-repo' });
    expect(reasons.get('org/no-weights')).toMatchObject({ kind: 'no-weights', path: snap('no-weights', 'a'.repeat(40)) });
    expect(reasons.has('.locks')).toBe(false);
    expect(warnings).toEqual([expect.stringMatching(/org\/bad-ref: skipped: .*not a commit hash/)]);
    // without the callback: the same models, the warning as before
    const again: string[] = [];
    expect((await discoverHfCache(cache, { onWarning: (m) => again.push(m) })).map((m) => m.id)).toEqual(found.map((m) => m.id));
    expect(again).toEqual(warnings);
  });

  test('recover --hf-cache -v: the repos with their formats, the skipped ones with their reasons (a broken entry once, as the warning)', () => {
    const r = spawnSync(process.execPath, [BIN, 'recover', '--hf-cache', cache, '-q', '--json', '-v'], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n');
    expect(lines.find((l) => l.startsWith('  org/onnx-next-to-safetensors  '))).toMatch(/ safetensors: read model\.safetensors; also present: .*onnx\/model\.onnx.*: not read, safetensors preferred$/);
    expect(lines.find((l) => l.startsWith('  org/split-only  '))).toMatch(/ gguf, 3 splits$/);
    expect(lines).toContain('skipped org/not-downloaded: no revision main (refs/main)');
    expect(lines).toContain('skipped org/no-weights: no weights (config.json, tokenizer.json)');
    expect(lines.filter((l) => /bad-ref/.test(l))).toEqual([expect.stringMatching(/^mother: warning: org\/bad-ref: skipped/)]);
  }, 60_000);
});
