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
import { check, checkOptions, invalid } from '../core/validate';
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

/** An fs error as a MotherError naming the path: ERR_FILE_OPEN with the reason (EACCES: permission denied, ELOOP, ...). */
function fsError(e: unknown, p: string, doing: string): MotherError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ELOOP' ? 'too many levels of symbolic links' : (e as Error).message;
  return new MotherError('ERR_FILE_OPEN', `${p}: cannot ${doing}: ${why}`, { file: p });
}

/** stat, following links; null when nothing is there (ENOENT, ENOTDIR, a dangling link); other failures (EACCES, ELOOP) are ERR_FILE_OPEN. */
async function statOrNull(p: string) {
  try {
    return await fs.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw fsError(e, p, 'read its status');
  }
}

/** readdir, with EACCES and the like as ERR_FILE_OPEN naming the folder. */
async function readDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (e) {
    throw fsError(e, dir, 'list the folder');
  }
}

async function readConfig(dir: string): Promise<Record<string, unknown> | undefined> {
  const p = path.join(dir, 'config.json');
  const st = await statOrNull(p);
  if (!st) return undefined;
  // a FIFO or device named config.json would block the read: only a regular file is read
  if (!st.isFile()) throw new MotherError('ERR_FILE_OPEN', `${p}: not a regular file`, { file: p });
  let text: string;
  try {
    text = await fs.readFile(p, 'utf8');
  } catch (e) {
    throw fsError(e, p, 'read config.json');
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
  const entries: string[] = [];
  for (const e of (await readDir(abs)).sort()) {
    // weight files only when they are files (a dangling link or a folder named x.safetensors is none)
    if (/\.(safetensors|gguf)$|\.safetensors\.index\.json$/.test(e) && !(await statOrNull(path.join(abs, e)))?.isFile()) continue;
    entries.push(e);
  }
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
    if (sub && !(await statOrNull(dir))?.isDirectory()) continue;
    entries = (await readDir(dir)).sort();
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

/** A weight file that is a model by itself in a folder that is not a model directory. */
const isBareModelFile = (name: string) =>
  (name.endsWith('.safetensors') && !/-\d{5}-of-\d{5}\.safetensors$/.test(name)) || isGgufModelFile(name) || name.endsWith('.onnx');

/** `p` is `dir` or below it. */
const inside = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

/**
 * Finds the models under `root`: the root itself when it is a model (a model directory, a
 * .safetensors, .gguf or .onnx file or a shard index), else every model directory below it, and
 * bare .safetensors, .gguf (the first of a split set) and .onnx files in folders that are not
 * model directories themselves. Sorted by id.
 *
 * Symbolic links: a link to a model (a model directory or a weight file) is followed wherever
 * it points (the Hugging Face cache is made of links); a link to a folder that is no model is
 * walked only when its real path is inside the root's, so discovery never leaves the root (a
 * link to / walks nothing). Every folder is walked once (by real path: no loop can repeat it)
 * and every model is listed once (by real path, under its first id in name order), at most
 * `maxDepth` folders below the root. An unreadable folder is ERR_FILE_OPEN naming it.
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
  if (!st.isDirectory()) throw new MotherError('ERR_NOT_A_MODEL', `${root}: not a file or directory`, { file: absRoot });
  const realRoot = await fs.realpath(absRoot);
  const out: DiscoveredModel[] = [];
  const models = new Set<string>(); // real paths of the models listed
  const walked = new Set<string>([realRoot]); // real paths of the folders walked
  const rel = (p: string) => path.relative(absRoot, p).split(path.sep).join('/');
  const add = async (p: string) => {
    const real = await fs.realpath(p);
    if (models.has(real)) return;
    models.add(real);
    out.push({ id: rel(p), path: p });
  };
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = (await readDir(dir)).sort((a, b) => a.localeCompare(b));
    for (const name of entries) {
      if (name.startsWith('.') || SKIP_DIRS.has(name)) continue;
      const p = path.join(dir, name);
      const target = await statOrNull(p); // null: a dangling link
      if (!target) continue;
      if (target.isDirectory()) {
        if (await asModel(p)) {
          await add(p);
          continue;
        }
        const real = await fs.realpath(p);
        if (walked.has(real) || !inside(real, realRoot) || depth >= maxDepth) continue; // a loop, outside the root, too deep
        walked.add(real);
        await walk(p, depth + 1);
      } else if (target.isFile() && isBareModelFile(name)) {
        await add(p);
      }
    }
  };
  await walk(absRoot, 0);
  if (out.length === 0) throw new MotherError('ERR_NOT_A_MODEL', `${root}: no models found (model directories, .safetensors or .onnx files)`, { file: absRoot });
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** `~/x` with the home folder (as huggingface_hub's expanduser). */
function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(require('node:os').homedir(), p.slice(1)) : p;
}

/** The Hugging Face hub cache folder, in huggingface_hub's order: $HF_HUB_CACHE, else
 *  $HUGGINGFACE_HUB_CACHE (its older name), else $HF_HOME/hub, else
 *  $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function defaultHfCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return expandHome(env.HF_HUB_CACHE);
  if (env.HUGGINGFACE_HUB_CACHE) return expandHome(env.HUGGINGFACE_HUB_CACHE);
  if (env.HF_HOME) return path.join(expandHome(env.HF_HOME), 'hub');
  if (env.XDG_CACHE_HOME) return path.join(expandHome(env.XDG_CACHE_HOME), 'huggingface', 'hub');
  return path.join(require('node:os').homedir(), '.cache', 'huggingface', 'hub');
}

export interface HfCacheOptions {
  /** A branch or tag (refs/<revision>) or a commit hash (snapshots/<hash>); default 'main'. */
  revision?: string;
  /** Called with each broken cache entry that is skipped (default: process.emitWarning). */
  onWarning?: (message: string) => void;
}

const HF_CACHE_OPTIONS = { revision: check.string, onWarning: check.function };

/** A Hugging Face repo id (ORG/NAME or NAME): letters, digits, '-', '_', '.'. */
export const HUB_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

/** The snapshot folder of `revision` in the cache folder of one repo, or a reason it has none. */
async function snapshotOf(repoDir: string, revision: string): Promise<{ snapshot: string } | { missing: string } | { broken: string }> {
  const refFile = path.join(repoDir, 'refs', revision);
  let commit: string | undefined;
  try {
    const st = await fs.stat(refFile);
    if (!st.isFile()) return { broken: `${refFile}: not a regular file` };
    commit = (await fs.readFile(refFile, 'utf8')).trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EISDIR') return { broken: `${refFile}: cannot read: ${(e as Error).message}` };
  }
  if (commit === undefined) {
    if (!/^[0-9a-f]{40}$/i.test(revision)) return { missing: `no revision ${revision} (refs/${revision})` };
    commit = revision;
  } else if (!/^[0-9a-f]{7,64}$/i.test(commit)) {
    return { broken: `${refFile}: not a commit hash` };
  }
  const snapshot = path.join(repoDir, 'snapshots', commit);
  let st;
  try {
    st = await statOrNull(snapshot);
  } catch (e) {
    return { broken: (e as Error).message };
  }
  if (!st?.isDirectory()) return commit === revision ? { missing: `no snapshot ${commit}` } : { broken: `${refFile} names ${commit}, but snapshots/${commit} is missing` };
  return { snapshot };
}

const repoOfEntry = (entry: string) => entry.slice('models--'.length).split('--').join('/');

/** The models of one snapshot, with hub ids: ORG/NAME, or ORG/NAME/component for a diffusers pipeline. */
async function snapshotModels(repo: string, snapshot: string): Promise<DiscoveredModel[]> {
  const found = await discoverModels(snapshot);
  return found.map((m) => ({ id: m.path === snapshot ? repo : `${repo}/${m.id}`, path: m.path }));
}

/**
 * Models in a Hugging Face hub cache: models--ORG--NAME/refs/<revision> names a commit whose
 * snapshots/<commit>/ folder holds the files (symlinks into blobs/). The id is ORG/NAME
 * (ORG/NAME/component for the components of a diffusers pipeline). Repos without the revision
 * are left out; a broken entry (an unreadable or malformed ref, a missing snapshot, a snapshot
 * that cannot be read) is a warning and is skipped, as huggingface_hub's scan-cache does.
 */
export async function discoverHfCache(cacheDir: string = defaultHfCache(), options: HfCacheOptions = {}): Promise<DiscoveredModel[]> {
  check.path(cacheDir, 'cacheDir');
  checkOptions(options, HF_CACHE_OPTIONS);
  const warn = options.onWarning ?? ((m: string) => process.emitWarning(m, 'MotherWarning'));
  const revision = options.revision ?? 'main';
  const abs = path.resolve(cacheDir);
  const st = await statOrNull(abs);
  if (!st?.isDirectory()) throw new MotherError('ERR_NOT_FOUND', `${cacheDir}: no Hugging Face cache folder here`, { file: abs });
  const out: DiscoveredModel[] = [];
  for (const entry of (await readDir(abs)).sort()) {
    if (!entry.startsWith('models--')) continue;
    const repo = repoOfEntry(entry);
    const snap = await snapshotOf(path.join(abs, entry), revision);
    if ('missing' in snap) continue; // nothing downloaded at this revision
    if ('broken' in snap) {
      warn(`${repo}: skipped: ${snap.broken}`);
      continue;
    }
    try {
      out.push(...(await snapshotModels(repo, snap.snapshot)));
    } catch (e) {
      if (e instanceof MotherError && e.code === 'ERR_NOT_A_MODEL' && !/not valid JSON/.test(e.message)) continue; // no weights in this repo
      if (e instanceof MotherError) warn(`${repo}: skipped: ${e.message}`);
      else throw e;
    }
  }
  return out;
}

/**
 * The models of one hub id (ORG/NAME, as on the command line) in the cache: its snapshot at
 * `revision` (default main). ERR_NOT_FOUND when the cache has no such repo or revision.
 */
export async function resolveHubId(repo: string, cacheDir: string = defaultHfCache(), options: { revision?: string } = {}): Promise<DiscoveredModel[]> {
  check.string(repo, 'repo');
  check.path(cacheDir, 'cacheDir');
  checkOptions(options, { revision: check.string });
  if (!HUB_ID.test(repo)) throw invalid('a hub id ORG/NAME', 'repo', repo);
  const revision = options.revision ?? 'main';
  const repoDir = path.join(path.resolve(cacheDir), `models--${repo.split('/').join('--')}`);
  if (!(await statOrNull(repoDir))?.isDirectory()) {
    throw new MotherError('ERR_NOT_FOUND', `${repo}: no such file or directory, and not in the Hugging Face cache ${cacheDir}`, { file: repoDir });
  }
  const snap = await snapshotOf(repoDir, revision);
  if ('missing' in snap) throw new MotherError('ERR_NOT_FOUND', `${repo}: ${snap.missing} in the Hugging Face cache ${cacheDir}`, { file: repoDir });
  if ('broken' in snap) throw new MotherError('ERR_NOT_A_MODEL', `${repo}: broken cache entry: ${snap.broken}`, { file: repoDir });
  return snapshotModels(repo, snap.snapshot);
}
