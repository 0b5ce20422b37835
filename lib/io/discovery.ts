// Stage 1 of the pipeline (read): model discovery, from a path the user gives to the weight
// files of one model.
// Accepted: a Hugging Face model directory (config.json + model.safetensors, or shards with
// model.safetensors.index.json; else pytorch_model.bin or its shards with
// pytorch_model.bin.index.json: safetensors are preferred when both are there), a diffusers
// component directory (diffusion_pytorch_model.*), a weight file of a format the addon reads
// (.safetensors, PyTorch .bin/.pt/.pth/.ckpt, .gguf: a GGUF split set NAME-0000N-of-0000M.gguf
// is one model, all its files; .onnx), or a *.safetensors.index.json / *.bin.index.json file;
// a directory whose only weights are one GGUF model; and a directory holding model.onnx,
// onnx/model.onnx (the Hugging Face layout of ONNX exports) or one .onnx file, where it has no
// safetensors or PyTorch weights; a PEFT adapter folder (adapter_config.json with
// adapter_model.safetensors or .bin: `adapter` holds its config). When other weight files are
// there too, the ModelFiles note says which file was read.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { native } from '../core/binding';
import { MotherError } from '../core/errors';
import { check, invalid } from '../core/validate';
import { AdapterConfig, adapterIn } from './adapter';

export interface ModelFiles {
  /** The path as given, resolved to an absolute path. */
  path: string;
  /** safetensors files; for a sharded checkpoint, filled in by the native reader from the index. */
  files: string[];
  /** The shard index (empty string when the model is a single file). */
  index: string;
  /** Parsed config.json next to the weights, when there is one. */
  config?: Record<string, unknown>;
  /** Which file was chosen when the directory holds weights in more than one file or format
   *  (safetensors next to onnx/, several .onnx variants), and which were not read. */
  note?: string;
  /** A PEFT adapter folder (adapter_config.json + adapter_model.safetensors or .bin): its config; `files` is its weight file. */
  adapter?: AdapterConfig;
}

const SINGLE_NAMES = ['model.safetensors', 'diffusion_pytorch_model.safetensors'];
const INDEX_NAMES = ['model.safetensors.index.json', 'diffusion_pytorch_model.safetensors.index.json'];
/** PyTorch checkpoints, used only where a directory holds no safetensors weights. */
const TORCH_NAMES = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'diffusion_pytorch_model.bin', 'diffusion_pytorch_model.bin.index.json'];
const isIndex = (p: string) => p.endsWith('.safetensors.index.json') || p.endsWith('.bin.index.json');

/** NAME-0000N-of-0000M.gguf: [NAME, N, M], else null. */
function ggufSplit(file: string): [string, number, number] | null {
  const m = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/.exec(file);
  return m ? [m[1], Number(m[2]), Number(m[3])] : null;
}

/** The files of the GGUF model at `file`: itself, or every split of its set that exists, in
 *  order (the reader reports a missing one from split.count). */
async function ggufFiles(file: string): Promise<string[]> {
  const split = ggufSplit(path.basename(file));
  if (!split) return [file];
  const [name, , count] = split;
  const out: string[] = [];
  for (let k = 1; k <= count; k++) {
    const p = path.join(path.dirname(file), `${name}-${String(k).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.gguf`);
    if ((await statOrNull(p))?.isFile()) out.push(p);
  }
  return out.length ? out : [file];
}

/** A .gguf file that is a model by itself or the first of its split set. */
const isGgufModelFile = (name: string) => name.endsWith('.gguf') && (ggufSplit(name)?.[1] ?? 1) === 1;

async function statOrNull(p: string) {
  try {
    return await fs.stat(p);
  } catch {
    return null;
  }
}

async function readConfig(dir: string): Promise<Record<string, unknown> | undefined> {
  const p = path.join(dir, 'config.json');
  let text: string;
  try {
    text = await fs.readFile(p, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch (e) {
    throw new MotherError('ERR_NOT_A_MODEL', `${p}: config.json is not valid JSON: ${(e as Error).message}`, { file: p });
  }
}

/** Finds the weight files of the model at `input`. Throws MotherError(ERR_NOT_FOUND | ERR_NOT_A_MODEL). */
export async function resolveModel(input: string): Promise<ModelFiles> {
  check.path(input, 'path');
  const abs = path.resolve(input);
  const st = await statOrNull(abs);
  if (!st) throw new MotherError('ERR_NOT_FOUND', `${input}: no such file or directory`, { file: abs });
  if (st.isFile()) {
    if (isIndex(abs)) {
      return { path: abs, files: [], index: abs, config: await readConfig(path.dirname(abs)) };
    }
    if (native().formatOf(abs) === 'gguf') return { path: abs, files: await ggufFiles(abs), index: '' };
    if (native().formatOf(abs) !== null) return { path: abs, files: [abs], index: '' };
    throw new MotherError('ERR_NOT_A_MODEL', `${input}: not a weight file of a format mother reads (.safetensors, PyTorch .bin/.pt, .gguf, .onnx) or a shard index`, { file: abs });
  }
  if (!st.isDirectory()) throw new MotherError('ERR_NOT_A_MODEL', `${input}: not a file or directory`, { file: abs });

  const config = await readConfig(abs);
  const adapter = await adapterIn(abs);
  if (adapter) {
    const c = adapter.config;
    return {
      path: abs, files: [adapter.weights], index: '', config, adapter: c,
      note: `PEFT LoRA adapter (r ${c.r}, lora_alpha ${c.loraAlpha}${c.useRslora ? ', rslora' : ''}, base ${c.baseModel === null ? 'not named' : JSON.stringify(c.baseModel)}): read ${path.basename(adapter.weights)}, its own tensors`,
    };
  }
  const onnx = await onnxFiles(abs);
  const found = await safetensorsIn(abs, input, config);
  const several = (names: string[]) => `${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''}`;
  if (found) {
    if (onnx.length) found.note = `read ${path.relative(abs, found.files[0] ?? found.index)}; not read: ${several(onnx)}`;
    return found;
  }
  const chosen = ['model.onnx', 'onnx/model.onnx'].find((n) => onnx.includes(n)) ?? (onnx.length === 1 ? onnx[0] : undefined);
  if (chosen) {
    const others = onnx.filter((n) => n !== chosen);
    return { path: abs, files: [path.join(abs, chosen)], index: '', config, ...(others.length ? { note: `read ${chosen}; not read: ${several(others)}` } : {}) };
  }
  if (onnx.length > 1) {
    throw new MotherError('ERR_NOT_A_MODEL', `${input}: several ONNX files (${several(onnx)}) and no model.onnx: point at one of them`, { file: abs });
  }
  throw new MotherError('ERR_NOT_A_MODEL', `${input}: no weights (model.safetensors, pytorch_model.bin or a shard index, a .gguf file, model.onnx or onnx/model.onnx) in this directory`, {
    file: abs,
  });
}

/** The safetensors weights of the directory `abs`, else its PyTorch checkpoint, or null when it has neither. */
async function safetensorsIn(abs: string, input: string, config: Record<string, unknown> | undefined): Promise<ModelFiles | null> {
  for (const name of SINGLE_NAMES) {
    const p = path.join(abs, name);
    if ((await statOrNull(p))?.isFile()) return { path: abs, files: [p], index: '', config };
  }
  for (const name of INDEX_NAMES) {
    const p = path.join(abs, name);
    if ((await statOrNull(p))?.isFile()) return { path: abs, files: [], index: p, config };
  }
  const entries = (await fs.readdir(abs)).sort();
  const indexes = entries.filter((e) => e.endsWith('.safetensors.index.json'));
  if (indexes.length === 1) return { path: abs, files: [], index: path.join(abs, indexes[0]), config };
  const singles = entries.filter((e) => e.endsWith('.safetensors'));
  if (indexes.length === 0 && singles.length === 1) {
    return { path: abs, files: [path.join(abs, singles[0])], index: '', config };
  }
  if (indexes.length === 0 && singles.length === 0) {
    for (const name of TORCH_NAMES) {
      const p = path.join(abs, name);
      if ((await statOrNull(p))?.isFile()) return name.endsWith('.json') ? { path: abs, files: [], index: p, config } : { path: abs, files: [p], index: '', config };
    }
  }
  const ggufs = entries.filter(isGgufModelFile);
  if (indexes.length === 0 && singles.length === 0 && ggufs.length === 1) {
    return { path: abs, files: await ggufFiles(path.join(abs, ggufs[0])), index: '', config };
  }
  if (indexes.length > 1 || singles.length > 1 || (indexes.length + singles.length === 0 && ggufs.length > 1)) {
    throw new MotherError(
      'ERR_NOT_A_MODEL',
      `${input}: several weight files (${[...indexes, ...singles, ...ggufs].slice(0, 4).join(', ')}${indexes.length + singles.length + ggufs.length > 4 ? ', ...' : ''}) and no model.safetensors or index: point at one of them`,
      { file: abs },
    );
  }
  return null;
}

/** The .onnx files of the directory `abs` and of its onnx/ subfolder, relative to `abs`, sorted. */
async function onnxFiles(abs: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['', 'onnx']) {
    const dir = path.join(abs, sub);
    let entries: string[];
    try {
      entries = (await fs.readdir(dir)).sort();
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.endsWith('.onnx')) continue;
      if ((await statOrNull(path.join(dir, e)))?.isFile()) out.push(sub ? `${sub}/${e}` : e);
    }
  }
  return out;
}

export interface DiscoveredModel {
  /** Path relative to the root it was found under (POSIX separators); the root's own name when the root is a model. */
  id: string;
  path: string;
}

const SKIP_DIRS = new Set(['node_modules', '.git', '.cache']);

/**
 * Finds the models under `root`: the root itself when it is a model (a model directory, a
 * .safetensors, .gguf or .onnx file or a shard index), else every model directory below it, and
 * bare .safetensors, .gguf (the first of a split set) and .onnx files in folders that are not
 * model directories themselves. Sorted by id.
 */
export async function discoverModels(root: string, maxDepth = 8): Promise<DiscoveredModel[]> {
  check.path(root, 'root');
  if (!(Number.isInteger(maxDepth) && maxDepth >= 0) && maxDepth !== Infinity) throw invalid('an integer >= 0 or Infinity', 'maxDepth', maxDepth);
  const absRoot = path.resolve(root);
  const st = await statOrNull(absRoot);
  if (!st) throw new MotherError('ERR_NOT_FOUND', `${root}: no such file or directory`, { file: absRoot });
  const asModel = async (p: string) => {
    try {
      return await resolveModel(p);
    } catch (e) {
      if (e instanceof MotherError && e.code === 'ERR_NOT_A_MODEL' && !/not valid JSON/.test(e.message)) return null;
      throw e;
    }
  };
  if (st.isFile() || (await asModel(absRoot))) {
    if (st.isFile() && !(await asModel(absRoot))) {
      throw new MotherError('ERR_NOT_A_MODEL', `${root}: not a weight file of a format mother reads (.safetensors, PyTorch .bin/.pt, .gguf, .onnx) or a shard index`, { file: absRoot });
    }
    return [{ id: path.basename(absRoot), path: absRoot }];
  }
  const out: DiscoveredModel[] = [];
  const rel = (p: string) => path.relative(absRoot, p).split(path.sep).join('/');
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.name.startsWith('.') || SKIP_DIRS.has(e.name)) continue;
      const p = path.join(dir, e.name);
      const isDir = e.isDirectory() || (e.isSymbolicLink() && (await statOrNull(p))?.isDirectory());
      if (isDir) {
        if (await asModel(p)) out.push({ id: rel(p), path: p });
        else if (depth < maxDepth) await walk(p, depth + 1);
      } else if ((e.name.endsWith('.safetensors') && !/-\d{5}-of-\d{5}\.safetensors$/.test(e.name)) || isGgufModelFile(e.name) || e.name.endsWith('.onnx')) {
        out.push({ id: rel(p), path: p });
      }
    }
  };
  await walk(absRoot, 0);
  if (out.length === 0) throw new MotherError('ERR_NOT_A_MODEL', `${root}: no models found (model directories, .safetensors or .onnx files)`, { file: absRoot });
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The Hugging Face hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function defaultHfCache(): string {
  if (process.env.HF_HUB_CACHE) return process.env.HF_HUB_CACHE;
  if (process.env.HF_HOME) return path.join(process.env.HF_HOME, 'hub');
  return path.join(require('node:os').homedir(), '.cache', 'huggingface', 'hub');
}

/**
 * Models in a Hugging Face hub cache: models--ORG--NAME/refs/main names a commit whose
 * snapshots/<commit>/ folder holds the files (symlinks into blobs/). The id is ORG/NAME
 * (ORG/NAME/component for the components of a diffusers pipeline).
 */
export async function discoverHfCache(cacheDir: string = defaultHfCache()): Promise<DiscoveredModel[]> {
  check.path(cacheDir, 'cacheDir');
  const abs = path.resolve(cacheDir);
  const st = await statOrNull(abs);
  if (!st?.isDirectory()) throw new MotherError('ERR_NOT_FOUND', `${cacheDir}: no Hugging Face cache folder here`, { file: abs });
  const out: DiscoveredModel[] = [];
  for (const entry of (await fs.readdir(abs)).sort()) {
    if (!entry.startsWith('models--')) continue;
    const repo = entry.slice('models--'.length).split('--').join('/');
    const refFile = path.join(abs, entry, 'refs', 'main');
    let commit: string;
    try {
      commit = (await fs.readFile(refFile, 'utf8')).trim();
    } catch {
      continue; // no main ref: nothing downloaded from main
    }
    if (!/^[0-9a-f]{7,64}$/i.test(commit)) {
      throw new MotherError('ERR_NOT_A_MODEL', `${refFile}: not a commit hash`, { file: refFile });
    }
    const snapshot = path.join(abs, entry, 'snapshots', commit);
    if (!(await statOrNull(snapshot))?.isDirectory()) continue;
    let found: DiscoveredModel[];
    try {
      found = await discoverModels(snapshot);
    } catch (e) {
      if (e instanceof MotherError && e.code === 'ERR_NOT_A_MODEL') continue; // no safetensors weights in this repo
      throw e;
    }
    for (const m of found) out.push({ id: m.path === snapshot ? repo : `${repo}/${m.id}`, path: m.path });
  }
  return out;
}
