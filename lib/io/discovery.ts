// Stage 1 of the pipeline (read): model discovery, from a path the user gives to the weight
// files of one model, and what it read and left out.
// Accepted: a Hugging Face model directory (config.json + model.safetensors, or shards with
// model.safetensors.index.json; else pytorch_model.bin or its shards with
// pytorch_model.bin.index.json), a diffusers component directory (diffusion_pytorch_model.*), a
// weight file of a format the addon reads (.safetensors, PyTorch .bin/.pt/.pth/.ckpt, .gguf: a
// GGUF split set NAME-0000N-of-0000M.gguf is one model, all its files; .onnx), or a
// *.safetensors.index.json / *.bin.index.json file; a directory whose only weights are one
// file or set of any of these formats; a directory holding model.onnx, onnx/model.onnx (the
// Hugging Face layout of ONNX exports) or one .onnx file; a PEFT adapter folder
// (adapter_config.json with adapter_model.safetensors or .bin: `adapter` holds its config).
// A folder holding several formats of one model reads one, in the order of PREFERENCE below, and
// ModelFiles says which (`format`) and what it set aside (`setAside`, `note`). A folder holding
// several weight files none of which has a Hugging Face name is no one model: discovery lists
// each file as a model. Discovery reports what it passed over, with the reason (onSkipped).
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { native } from '../core/binding';
import { MotherError } from '../core/errors';
import { check, checkOptions, invalid } from '../core/validate';
import { AdapterConfig, adapterIn } from './adapter';

/** The weight formats a model is read from: a single file of safetensors, PyTorch, GGUF (a
 *  split set counts as one, with `splits`) or ONNX; a shard index of safetensors or PyTorch
 *  shards; a PEFT adapter folder (its own adapter_model.safetensors or .bin). */
export type WeightFormat = 'safetensors' | 'safetensors-index' | 'pytorch' | 'pytorch-index' | 'gguf' | 'onnx' | 'peft-adapter';

/** The order in which a folder's weights are preferred when it holds several formats. */
export const PREFERENCE: readonly WeightFormat[] = ['peft-adapter', 'safetensors', 'safetensors-index', 'pytorch', 'pytorch-index', 'gguf', 'onnx'];

/** A weight file of a model folder that was not read: another format or variant of the model. */
export interface SetAside {
  /** Relative to the model folder, POSIX separators: a weight file, a shard index, or the first file of a GGUF split set. */
  file: string;
  format: WeightFormat;
}

export interface ModelFiles {
  /** The path as given, resolved to an absolute path. */
  path: string;
  /** safetensors files; for a sharded checkpoint, filled in by the native reader from the index. */
  files: string[];
  /** The shard index (empty string when the model is a single file). */
  index: string;
  /** Parsed config.json next to the weights, when there is one. */
  config?: Record<string, unknown>;
  /** The format read. */
  format: WeightFormat;
  /** GGUF: the number of files of the split set read (1 for a single file). */
  splits?: number;
  /** The other weight files of the folder, not read (in the order of PREFERENCE, then by name); absent when there are none. */
  setAside?: SetAside[];
  /** Which file was read and which were not, in words, when the folder holds other weight files
   *  (safetensors next to onnx/, several .onnx variants), and for an adapter. */
  note?: string;
  /** A PEFT adapter folder (adapter_config.json + adapter_model.safetensors or .bin): its config; `files` is its weight file. */
  adapter?: AdapterConfig;
}

/**
 * When a model's weights were last written: the latest modification time (ms since the epoch)
 * of its weight files and shard index; null when one of them cannot be read.
 */
export async function writtenAt(m: Pick<ModelFiles, 'files' | 'index'>): Promise<number | null> {
  const files = [...m.files, ...(m.index ? [m.index] : [])];
  if (files.length === 0) return null;
  try {
    const times = await Promise.all(files.map(async (f) => (await fs.stat(f)).mtimeMs));
    return Math.max(...times);
  } catch {
    return null;
  }
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

/** Trainer state saved next to the weights (transformers' Trainer, Lightning): never a model. */
const TRAINING_STATE = /^(?:optimizer|scheduler|scaler|rng_state(?:_\d+)?|training_args)\.(?:bin|pt|pth)$/;

/** NAME-0000N-of-0000M.safetensors / .bin with M > 1: a shard, read only through its index. */
const isShard = (name: string) => {
  const m = /-(\d{5})-of-(\d{5})\.(?:safetensors|bin)$/.exec(name);
  return m !== null && Number(m[2]) > 1;
};

/** What a file is to discovery, by its name (and, for .bin/.pt/.pth/.ckpt, its first bytes). */
type FileClass =
  | { kind: 'weights'; format: Exclude<WeightFormat, 'peft-adapter'>; canonical: boolean }
  | { kind: 'shard' }
  | { kind: 'gguf-split'; no: number; count: number; first: string }
  | { kind: 'training-state' }
  | { kind: 'onnx-data' }
  | { kind: 'other' };

/** Names a file might be weights by, before its bytes are looked at. */
const WEIGHT_LIKE = /\.(?:safetensors|gguf|onnx|bin|pt|pth|ckpt)$|\.(?:safetensors|bin)\.index\.json$/;

/** Hugging Face names (transformers, diffusers), with their variants (model.fp16.safetensors,
 *  diffusion_pytorch_model.non_ema.bin): a folder holding one is one model. */
const HF_SAFETENSORS = /^(?:model|diffusion_pytorch_model)(?:\.[\w-]+)?\.safetensors(?:\.index\.json)?$/;
const HF_TORCH = /^(?:pytorch_model|diffusion_pytorch_model)(?:\.[\w-]+)?\.bin(?:\.index\.json)?$/;

function classifyFile(file: string, name: string): FileClass {
  if (name.endsWith('.safetensors.index.json')) return { kind: 'weights', format: 'safetensors-index', canonical: HF_SAFETENSORS.test(name) };
  if (name.endsWith('.bin.index.json')) return { kind: 'weights', format: 'pytorch-index', canonical: HF_TORCH.test(name) };
  if (name.endsWith('.safetensors')) return isShard(name) ? { kind: 'shard' } : { kind: 'weights', format: 'safetensors', canonical: HF_SAFETENSORS.test(name) };
  if (name.endsWith('.gguf')) {
    const split = ggufSplit(name);
    if (split && split[1] !== 1) {
      const [base, no, count] = split;
      return { kind: 'gguf-split', no, count, first: `${base}-00001-of-${String(count).padStart(5, '0')}.gguf` };
    }
    return { kind: 'weights', format: 'gguf', canonical: false };
  }
  if (name.endsWith('.onnx')) return { kind: 'weights', format: 'onnx', canonical: name === 'model.onnx' };
  if (/\.onnx(?:_data|\.data)$/.test(name)) return { kind: 'onnx-data' };
  if (TRAINING_STATE.test(name)) return { kind: 'training-state' };
  if (/\.(?:bin|pt|pth|ckpt)$/.test(name)) {
    if (isShard(name)) return { kind: 'shard' };
    // .pt/.pth/.ckpt and pytorch_model*.bin by name; other .bin files by their first bytes
    const format = native().formatOf(file);
    if (format === 'pytorch' || format === 'gguf' || format === 'onnx' || format === 'safetensors') {
      return { kind: 'weights', format, canonical: HF_TORCH.test(name) };
    }
  }
  return { kind: 'other' };
}

/** One weight set of a folder: a file, a shard index, or the first file of a GGUF split set. */
interface Candidate {
  /** Relative to the folder (onnx/model.onnx for the Hugging Face ONNX layout). */
  rel: string;
  format: Exclude<WeightFormat, 'peft-adapter'>;
  /** A Hugging Face name: model.safetensors, diffusion_pytorch_model.safetensors, pytorch_model.bin,
   *  diffusion_pytorch_model.bin (each also with a variant: model.fp16.safetensors) or their
   *  indexes; model.onnx, onnx/model.onnx. */
  canonical: boolean;
}

const rank = (f: WeightFormat) => PREFERENCE.indexOf(f);
const byPreference = (a: Candidate, b: Candidate) => rank(a.format) - rank(b.format) || (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0);

/** The weight sets of the folder `abs` (its files, and the .onnx files of its onnx/ folder) and the names it holds. */
async function inventory(abs: string): Promise<{ sets: Candidate[]; names: string[] }> {
  const names = (await readDir(abs)).sort();
  const sets: Candidate[] = [];
  for (const e of names) {
    if (e.startsWith('.') || !WEIGHT_LIKE.test(e)) continue;
    const p = path.join(abs, e);
    // weight files only when they are files (a dangling link or a folder named x.safetensors is none)
    if (!(await statOrNull(p))?.isFile()) continue;
    const c = classifyFile(p, e);
    if (c.kind === 'weights') sets.push({ rel: e, format: c.format, canonical: c.canonical });
  }
  const onnxDir = path.join(abs, 'onnx');
  if (names.includes('onnx') && (await statOrNull(onnxDir))?.isDirectory()) {
    for (const e of (await readDir(onnxDir)).sort()) {
      if (e.startsWith('.') || !e.endsWith('.onnx')) continue;
      if ((await statOrNull(path.join(onnxDir, e)))?.isFile()) sets.push({ rel: `onnx/${e}`, format: 'onnx', canonical: e === 'model.onnx' });
    }
  }
  return { sets, names: names.filter((n) => !n.startsWith('.')) };
}

/** At most four names, then "...". */
const several = (names: string[]) => `${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''}`;

/** The weight set read from a folder's sets: in the order of PREFERENCE, a format's Hugging Face
 *  name first, else its one file; several files of the first format present and none of them
 *  under its Hugging Face name is ambiguous (no later format is looked at, as before). */
function choose(sets: Candidate[]): { chosen: Candidate } | { ambiguous: Candidate[] } | null {
  const named = (names: string[]) => names.map((n) => sets.find((s) => s.rel === n)).find((s) => s !== undefined);
  const of = (f: WeightFormat) => sets.filter((s) => s.format === f);
  const tier = (single: WeightFormat, index: WeightFormat | null, names: string[]) => {
    const hit = named(names);
    if (hit) return { chosen: hit };
    const idx = index ? of(index) : [];
    const one = of(single);
    if (idx.length === 1) return { chosen: idx[0] };
    if (idx.length === 0 && one.length === 1) return { chosen: one[0] };
    if (idx.length + one.length > 1) return { ambiguous: [...idx, ...one] };
    return null;
  };
  const formats = [
    () => tier('safetensors', 'safetensors-index', [...SINGLE_NAMES, ...INDEX_NAMES]),
    () => tier('pytorch', 'pytorch-index', TORCH_NAMES),
    () => tier('gguf', null, []),
    () => tier('onnx', null, ['model.onnx', 'onnx/model.onnx']),
  ];
  for (const f of formats) {
    const r = f();
    if (r) return r;
  }
  return null;
}

/** What was set aside, in words: "also present: a, b: not read, safetensors preferred". */
function setAsideNote(chosen: { rel: string; format: WeightFormat }, aside: SetAside[]): string {
  const family = (f: WeightFormat) => f.replace(/-index$/, '');
  const sameFamily = aside.some((a) => family(a.format) === family(chosen.format));
  return `also present: ${several(aside.map((a) => a.file))}: not read, ${sameFamily ? chosen.rel : chosen.format === 'peft-adapter' ? 'the adapter' : family(chosen.format)} preferred`;
}

/** A folder that is no model, and why (for the error, and for discovery's skipped list). */
interface NotAModel {
  error: MotherError;
  /** The reason without the path: "no weights (config.json, README.md)". */
  why: string;
}

/** resolveModel, with ERR_NOT_A_MODEL for a directory returned with its reason rather than thrown (other errors are thrown). */
async function resolveOrWhy(input: string): Promise<{ model: ModelFiles } | NotAModel> {
  check.path(input, 'path');
  const abs = path.resolve(input);
  const st = await statOrNull(abs);
  if (!st) throw new MotherError('ERR_NOT_FOUND', `${input}: no such file or directory`, { file: abs });
  const fail = (why: string, message = `${input}: ${why}`): NotAModel => ({ error: new MotherError('ERR_NOT_A_MODEL', message, { file: abs }), why });
  if (st.isFile()) {
    if (isIndex(abs)) {
      return { model: { path: abs, files: [], index: abs, config: await readConfig(path.dirname(abs)), format: abs.endsWith('.bin.index.json') ? 'pytorch-index' : 'safetensors-index' } };
    }
    const format = native().formatOf(abs);
    if (format === 'gguf') {
      const files = await ggufFiles(abs);
      return { model: { path: abs, files, index: '', format: 'gguf', splits: files.length } };
    }
    if (format === 'safetensors' || format === 'pytorch' || format === 'onnx') return { model: { path: abs, files: [abs], index: '', format } };
    return fail('not a weight file of a format mother reads (.safetensors, PyTorch .bin/.pt, .gguf, .onnx) or a shard index');
  }
  if (!st.isDirectory()) return fail('not a file or directory');

  const config = await readConfig(abs);
  let adapter;
  try {
    adapter = await adapterIn(abs);
  } catch (e) {
    if (e instanceof MotherError && e.code === 'ERR_NOT_A_MODEL') return { error: e, why: e.message.startsWith(`${abs}: `) ? e.message.slice(abs.length + 2) : e.message };
    throw e;
  }
  const { sets, names } = await inventory(abs);
  const asideOf = (keep: (c: Candidate) => boolean): SetAside[] => sets.filter(keep).sort(byPreference).map((c) => ({ file: c.rel, format: c.format }));
  if (adapter) {
    const c = adapter.config;
    const own = path.basename(adapter.weights);
    const aside = asideOf((s) => s.rel !== own);
    const note = `PEFT LoRA adapter (r ${c.r}, lora_alpha ${c.loraAlpha}${c.useRslora ? ', rslora' : ''}, base ${c.baseModel === null ? 'not named' : JSON.stringify(c.baseModel)}): read ${own}, its own tensors`;
    return {
      model: {
        path: abs, files: [adapter.weights], index: '', config, adapter: c, format: 'peft-adapter',
        ...(aside.length ? { setAside: aside } : {}),
        note: aside.length ? `${note}; ${setAsideNote({ rel: own, format: 'peft-adapter' }, aside)}` : note,
      },
    };
  }
  const pick = choose(sets);
  if (pick === null) {
    return fail(
      `no weights (${names.length ? several(names) : 'an empty folder'})`,
      `${input}: no weights (model.safetensors, pytorch_model.bin or a shard index, a .gguf file, model.onnx or onnx/model.onnx) in this directory`,
    );
  }
  if ('ambiguous' in pick) {
    const list = pick.ambiguous.map((c) => c.rel).sort();
    const f = pick.ambiguous[0].format;
    const missing = f.startsWith('safetensors') ? ' and no model.safetensors or index' : f.startsWith('pytorch') ? ' and no pytorch_model.bin or index' : f === 'onnx' ? ' and no model.onnx' : '';
    const why = `several weight files (${several(list)})${missing}: point at one of them`;
    return fail(why);
  }
  const chosen = pick.chosen;
  // several weight files, none of them under a Hugging Face name: several models side by side
  if (!chosen.canonical && sets.length > 1 && !sets.some((s) => s.canonical)) {
    const list = sets.map((c) => c.rel).sort();
    return fail(`several weight files (${several(list)}) and none under a Hugging Face name (model.safetensors, pytorch_model.bin, model.onnx, onnx/model.onnx, their variants and indexes): each is a model; point at one of them`);
  }
  const file = path.join(abs, chosen.rel);
  const aside = asideOf((s) => s !== chosen);
  const extra = { format: chosen.format, ...(aside.length ? { setAside: aside, note: `read ${chosen.rel}; ${setAsideNote(chosen, aside)}` } : {}) };
  if (chosen.format === 'safetensors-index' || chosen.format === 'pytorch-index') return { model: { path: abs, files: [], index: file, config, ...extra } };
  if (chosen.format === 'gguf') {
    const files = await ggufFiles(file);
    return { model: { path: abs, files, index: '', config, ...extra, splits: files.length } };
  }
  return { model: { path: abs, files: [file], index: '', config, ...extra } };
}

/** Finds the weight files of the model at `input`, with the format read and the other weight
 *  files of its folder set aside. Throws MotherError(ERR_NOT_FOUND | ERR_NOT_A_MODEL). */
export async function resolveModel(input: string): Promise<ModelFiles> {
  const r = await resolveOrWhy(input);
  if ('error' in r) throw r.error;
  return r.model;
}

export interface DiscoveredModel {
  /** Path relative to the root it was found under (POSIX separators); the root's own name when the root is a model. */
  id: string;
  path: string;
  /** The format read (resolveModel's). */
  format: WeightFormat;
  /** GGUF: the number of files of the split set. */
  splits?: number;
  /** The other weight files of the model folder, not read; absent when there are none. */
  setAside?: SetAside[];
}

/** Why discovery passed over a file or folder (DiscoverySkip.kind). */
export type SkipKind =
  /** a folder (or the root) with no weights in it; its other files are not listed one by one */
  | 'no-weights'
  /** a file that is no weight file of a format mother reads */
  | 'not-a-model-file'
  /** a GGUF split after the first: read with the first */
  | 'gguf-split'
  /** a shard of a sharded checkpoint: read only through its index */
  | 'shard'
  /** an ONNX external data file: read with the .onnx that names it */
  | 'onnx-data'
  /** optimizer, scheduler, RNG state, trainer arguments */
  | 'training-state'
  | 'dangling-link'
  /** a FIFO, socket or device */
  | 'not-a-file'
  /** a hidden folder (.name) */
  | 'hidden'
  /** node_modules, .git, .cache */
  | 'skipped-folder'
  /** a folder reached again by its real path (a link loop, a second link) */
  | 'already-walked'
  /** a link to a folder outside the root that is no model */
  | 'outside-root'
  /** a folder more than maxDepth folders below the root */
  | 'too-deep'
  /** a model reached again by its real path: listed once */
  | 'duplicate'
  /** a model in a subfolder of a model folder, whose subfolders are not walked */
  | 'inside-model'
  /** the hub cache: a repo without the revision asked */
  | 'no-revision'
  /** the hub cache: an unreadable or malformed ref, a missing snapshot (also a warning) */
  | 'broken-cache-entry'
  /** the hub cache: datasets--* and spaces--* repos */
  | 'not-a-model-repo';

/** A file or folder discovery passed over, and why. */
export interface DiscoverySkip {
  /** Relative to the root (POSIX separators; '.' for the root itself), as model ids are; in the
   *  hub cache ORG/NAME or ORG/NAME/path, or the cache folder's entry name. */
  id: string;
  /** Its absolute path. */
  path: string;
  kind: SkipKind;
  /** In words: "no weights (config.json, README.md)", "split 2 of 3: read with NAME-00001-of-00003.gguf". */
  reason: string;
}

export interface DiscoveryOptions {
  /** At most this many folders below the root are walked (default 8; Infinity for no bound). */
  maxDepth?: number;
  /** Called with each file or folder passed over, with the reason (in name order, after the
   *  folder's walk). Without it discovery does only the work the models need. */
  onSkipped?: (entry: DiscoverySkip) => void;
}

const DISCOVERY_OPTIONS = { maxDepth: (v: unknown, what: string) => {
  if (!(Number.isInteger(v) && (v as number) >= 0) && v !== Infinity) throw invalid('an integer >= 0 or Infinity', what, v);
}, onSkipped: check.function };

const SKIP_DIRS = new Set(['node_modules', '.git', '.cache']);

/** `p` is `dir` or below it. */
const inside = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

const discovered = (id: string, p: string, m: ModelFiles): DiscoveredModel => ({
  id, path: p, format: m.format, ...(m.splits !== undefined ? { splits: m.splits } : {}), ...(m.setAside ? { setAside: m.setAside } : {}),
});

/** stat that never throws (null for anything unreadable): for entries that are only reported. */
const statQuiet = (p: string) => fs.stat(p).catch(() => null);

/**
 * Finds the models under `root`: the root itself when it is a model (a model directory, a weight
 * file or a shard index), else every model directory below it, and the bare weight files
 * (.safetensors, .gguf: the first of a split set, .onnx, PyTorch .pt/.pth/.ckpt and .bin by its
 * first bytes, a shard index) in folders that are not model directories themselves (a folder
 * holding several weight files none of which has a Hugging Face name is such a folder: each file
 * is a model). Sorted by id. Each model says the format read and what its folder set aside.
 *
 * Symbolic links: a link to a model (a model directory or a weight file) is followed wherever
 * it points (the Hugging Face cache is made of links); a link to a folder that is no model is
 * walked only when its real path is inside the root's, so discovery never leaves the root (a
 * link to / walks nothing). Every folder is walked once (by real path: no loop can repeat it)
 * and every model is listed once (by real path, under its first id in name order), at most
 * `maxDepth` folders below the root. An unreadable folder is ERR_FILE_OPEN naming it.
 *
 * `onSkipped` hears of every file and folder passed over, with the reason (DiscoverySkip); the
 * models returned are the same with or without it. `discoverModels(root, maxDepth)` still works.
 */
export async function discoverModels(root: string, maxDepthOrOptions: number | DiscoveryOptions = 8, options: DiscoveryOptions = {}): Promise<DiscoveredModel[]> {
  check.path(root, 'root');
  let maxDepth: number;
  if (typeof maxDepthOrOptions === 'object' && maxDepthOrOptions !== null) {
    checkOptions(maxDepthOrOptions, DISCOVERY_OPTIONS);
    options = maxDepthOrOptions;
    maxDepth = options.maxDepth ?? 8;
  } else {
    DISCOVERY_OPTIONS.maxDepth(maxDepthOrOptions, 'maxDepth');
    checkOptions(options, DISCOVERY_OPTIONS);
    maxDepth = maxDepthOrOptions;
  }
  const onSkipped = options.onSkipped;
  const absRoot = path.resolve(root);
  const st = await statOrNull(absRoot);
  if (!st) throw new MotherError('ERR_NOT_FOUND', `${root}: no such file or directory`, { file: absRoot });
  const asModel = async (p: string): Promise<{ model: ModelFiles } | { why: string }> => {
    const r = await resolveOrWhy(p);
    if ('model' in r) return r;
    if (/not valid JSON/.test(r.error.message)) throw r.error;
    return { why: r.why };
  };
  const rel = (p: string) => path.relative(absRoot, p).split(path.sep).join('/') || '.';
  const skip = (p: string, kind: SkipKind, reason: string): DiscoverySkip => ({ id: rel(p), path: p, kind, reason });

  /** The subfolders of the model folder `dir` that hold a model of their own: not walked, said so. */
  const modelsInside = async (dir: string, m: ModelFiles): Promise<DiscoverySkip[]> => {
    if (!onSkipped) return [];
    const found: DiscoverySkip[] = [];
    let names: string[];
    try {
      names = (await fs.readdir(dir)).sort((a, b) => a.localeCompare(b));
    } catch {
      return [];
    }
    const usesOnnxDir = [...m.files, ...(m.setAside ?? []).map((a) => path.join(dir, a.file))].some((f) => inside(f, path.join(dir, 'onnx')));
    for (const name of names) {
      if (name.startsWith('.') || SKIP_DIRS.has(name) || (name === 'onnx' && usesOnnxDir)) continue;
      const p = path.join(dir, name);
      if (!(await statQuiet(p))?.isDirectory()) continue;
      let sub;
      try {
        sub = await resolveOrWhy(p);
      } catch {
        continue; // what is not read is not checked either
      }
      if ('model' in sub) found.push(skip(p, 'inside-model', `a ${sub.model.format} model in a subfolder of a model folder (whose subfolders are not walked): give its path to read it`));
    }
    return found;
  };

  if (st.isFile()) {
    const r = await asModel(absRoot);
    if (!('model' in r)) throw new MotherError('ERR_NOT_A_MODEL', `${root}: not a weight file of a format mother reads (.safetensors, PyTorch .bin/.pt, .gguf, .onnx) or a shard index`, { file: absRoot });
    return [discovered(path.basename(absRoot), absRoot, r.model)];
  }
  if (!st.isDirectory()) throw new MotherError('ERR_NOT_A_MODEL', `${root}: not a file or directory`, { file: absRoot });
  const rootModel = await asModel(absRoot);
  if ('model' in rootModel) {
    for (const s of await modelsInside(absRoot, rootModel.model)) onSkipped?.(s);
    return [discovered(path.basename(absRoot), absRoot, rootModel.model)];
  }
  const realRoot = await fs.realpath(absRoot);
  const out: DiscoveredModel[] = [];
  const models = new Map<string, string>(); // real path of each model listed -> its id
  const walked = new Map<string, string>([[realRoot, '.']]); // real path of each folder walked -> its id
  /** Lists the model at `p` (once by real path); its skipped entries go to `skips`. */
  const add = async (p: string, m: ModelFiles, skips: DiscoverySkip[]): Promise<number> => {
    const real = await fs.realpath(p);
    const first = models.get(real);
    if (first !== undefined) {
      skips.push(skip(p, 'duplicate', `the same model as ${first} (by its real path): listed once`));
      return 0;
    }
    models.set(real, rel(p));
    out.push(discovered(rel(p), p, m));
    if (m.path === p && !m.files.includes(p) && m.index !== p) skips.push(...(await modelsInside(p, m)));
    return 1;
  };
  /** Walks a folder that is no model: its models counted, what it passed over returned. */
  const walk = async (dir: string, depth: number): Promise<{ found: number; skips: DiscoverySkip[] }> => {
    const entries = (await readDir(dir)).sort((a, b) => a.localeCompare(b));
    let found = 0;
    const skips: DiscoverySkip[] = [];
    for (const name of entries) {
      const p = path.join(dir, name);
      if (name.startsWith('.') || SKIP_DIRS.has(name)) {
        // hidden files pass unsaid; hidden and tool folders are named
        if (onSkipped && (await statQuiet(p))?.isDirectory()) skips.push(skip(p, SKIP_DIRS.has(name) ? 'skipped-folder' : 'hidden', SKIP_DIRS.has(name) ? `${name} folders are not walked` : 'a hidden folder: not walked'));
        continue;
      }
      const target = await statOrNull(p); // null: a dangling link
      if (!target) {
        if (onSkipped) {
          const to = await fs.readlink(p).catch(() => null);
          skips.push(skip(p, 'dangling-link', to === null ? 'gone while the folder was read' : `a symbolic link to ${to}, which does not exist`));
        }
        continue;
      }
      if (target.isDirectory()) {
        const r = await asModel(p);
        if ('model' in r) {
          found += await add(p, r.model, skips);
          continue;
        }
        const real = await fs.realpath(p);
        const again = walked.get(real);
        if (again !== undefined) {
          skips.push(skip(p, 'already-walked', `the same folder as ${again === '.' ? 'the root' : again} (by its real path: a link loop or a second link): walked once`));
          continue;
        }
        if (!inside(real, realRoot)) {
          skips.push(skip(p, 'outside-root', `a link to ${real}, outside the root, and no model: not walked`));
          continue;
        }
        if (depth >= maxDepth) {
          skips.push(skip(p, 'too-deep', `more than maxDepth ${maxDepth} folders below the root: not walked`));
          continue;
        }
        walked.set(real, rel(p));
        const sub = await walk(p, depth + 1);
        found += sub.found;
        // a folder without models: one line for it, unless something inside says more than "not a weight file"
        const specific = sub.skips.filter((s) => s.kind !== 'not-a-model-file' && s.kind !== 'no-weights');
        if (sub.found === 0 && specific.length === 0) skips.push(skip(p, 'no-weights', r.why));
        else skips.push(...sub.skips);
      } else if (target.isFile()) {
        const c = classifyFile(p, name);
        if (c.kind === 'weights') {
          const r = await asModel(p);
          if ('model' in r) found += await add(p, r.model, skips);
          else skips.push(skip(p, 'not-a-model-file', r.why));
        } else if (c.kind === 'gguf-split') {
          const first = (await statOrNull(path.join(dir, c.first)))?.isFile();
          skips.push(skip(p, 'gguf-split', first ? `split ${c.no} of ${c.count}: read with ${c.first}` : `split ${c.no} of ${c.count}, and the first split ${c.first} is missing: not read`));
        } else if (c.kind === 'shard') {
          skips.push(skip(p, 'shard', 'a shard: read only through its index (*.index.json), and no index here is read'));
        } else if (c.kind === 'onnx-data') {
          skips.push(skip(p, 'onnx-data', 'ONNX external data: read with the .onnx model that names it'));
        } else if (c.kind === 'training-state') {
          skips.push(skip(p, 'training-state', 'training state (optimizer, scheduler, RNG or trainer arguments), not model weights'));
        } else {
          skips.push(skip(p, 'not-a-model-file', 'not a weight file mother reads (.safetensors, .gguf, .onnx, PyTorch .bin/.pt/.pth/.ckpt, a shard index)'));
        }
      } else {
        skips.push(skip(p, 'not-a-file', 'not a regular file or folder'));
      }
    }
    return { found, skips };
  };
  const top = await walk(absRoot, 0);
  if (onSkipped) {
    const specific = top.skips.filter((s) => s.kind !== 'not-a-model-file' && s.kind !== 'no-weights');
    const list = top.found === 0 && specific.length === 0 ? [skip(absRoot, 'no-weights', rootModel.why)] : top.skips;
    for (const s of list) onSkipped(s);
  }
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
  /** Called with each repo, file or folder passed over, with the reason (ids ORG/NAME[/path]);
   *  a broken entry is reported here too (kind 'broken-cache-entry'), besides onWarning. */
  onSkipped?: (entry: DiscoverySkip) => void;
}

const HF_CACHE_OPTIONS = { revision: check.string, onWarning: check.function, onSkipped: check.function };

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

/** The models of one snapshot, with hub ids: ORG/NAME, or ORG/NAME/component for a diffusers
 *  pipeline; what it passed over goes to onSkipped with the same ids. */
async function snapshotModels(repo: string, snapshot: string, onSkipped?: (entry: DiscoverySkip) => void): Promise<DiscoveredModel[]> {
  const hubId = (p: string) => (p === snapshot ? repo : `${repo}/${path.relative(snapshot, p).split(path.sep).join('/')}`);
  const found = await discoverModels(snapshot, onSkipped ? { onSkipped: (s) => onSkipped({ ...s, id: hubId(s.path) }) } : {});
  return found.map((m) => ({ ...m, id: hubId(m.path) }));
}

/**
 * Models in a Hugging Face hub cache: models--ORG--NAME/refs/<revision> names a commit whose
 * snapshots/<commit>/ folder holds the files (symlinks into blobs/). The id is ORG/NAME
 * (ORG/NAME/component for the components of a diffusers pipeline, ORG/NAME/FILE for each weight
 * file of a repo of several side by side). Repos without the revision are left out; a broken
 * entry (an unreadable or malformed ref, a missing snapshot, a snapshot that cannot be read) is
 * a warning and is skipped, as huggingface_hub's scan-cache does. `onSkipped` hears of each repo
 * left out (no revision, no weights, broken, datasets--/spaces-- repos) and of what discovery
 * passed over inside each snapshot.
 */
export async function discoverHfCache(cacheDir: string = defaultHfCache(), options: HfCacheOptions = {}): Promise<DiscoveredModel[]> {
  check.path(cacheDir, 'cacheDir');
  checkOptions(options, HF_CACHE_OPTIONS);
  const warn = options.onWarning ?? ((m: string) => process.emitWarning(m, 'MotherWarning'));
  const onSkipped = options.onSkipped;
  const revision = options.revision ?? 'main';
  const abs = path.resolve(cacheDir);
  const st = await statOrNull(abs);
  if (!st?.isDirectory()) throw new MotherError('ERR_NOT_FOUND', `${cacheDir}: no Hugging Face cache folder here`, { file: abs });
  const out: DiscoveredModel[] = [];
  for (const entry of (await readDir(abs)).sort()) {
    if (!entry.startsWith('models--')) {
      // the cache's own files (.locks, version.txt, CACHEDIR.TAG) pass unsaid; other repo kinds are named
      const kind = /^(datasets|spaces)--/.exec(entry)?.[1];
      if (kind) onSkipped?.({ id: entry, path: path.join(abs, entry), kind: 'not-a-model-repo', reason: `a ${kind === 'datasets' ? 'dataset' : 'Space'} repo, not a model` });
      continue;
    }
    const repo = repoOfEntry(entry);
    const repoDir = path.join(abs, entry);
    const snap = await snapshotOf(repoDir, revision);
    if ('missing' in snap) {
      onSkipped?.({ id: repo, path: repoDir, kind: 'no-revision', reason: snap.missing }); // nothing downloaded at this revision
      continue;
    }
    if ('broken' in snap) {
      warn(`${repo}: skipped: ${snap.broken}`);
      onSkipped?.({ id: repo, path: repoDir, kind: 'broken-cache-entry', reason: snap.broken });
      continue;
    }
    try {
      out.push(...(await snapshotModels(repo, snap.snapshot, onSkipped)));
    } catch (e) {
      if (e instanceof MotherError && e.code === 'ERR_NOT_A_MODEL' && !/not valid JSON/.test(e.message)) continue; // no weights in this repo (onSkipped heard why)
      if (!(e instanceof MotherError)) throw e;
      warn(`${repo}: skipped: ${e.message}`);
      onSkipped?.({ id: repo, path: snap.snapshot, kind: 'broken-cache-entry', reason: e.message });
    }
  }
  return out;
}

/**
 * The models of one hub id (ORG/NAME, as on the command line) in the cache: its snapshot at
 * `revision` (default main). ERR_NOT_FOUND when the cache has no such repo or revision.
 * `onSkipped` hears of what discovery passed over in the snapshot.
 */
export async function resolveHubId(
  repo: string, cacheDir: string = defaultHfCache(), options: { revision?: string; onSkipped?: (entry: DiscoverySkip) => void } = {},
): Promise<DiscoveredModel[]> {
  check.string(repo, 'repo');
  check.path(cacheDir, 'cacheDir');
  checkOptions(options, { revision: check.string, onSkipped: check.function });
  if (!HUB_ID.test(repo)) throw invalid('a hub id ORG/NAME', 'repo', repo);
  const revision = options.revision ?? 'main';
  const repoDir = path.join(path.resolve(cacheDir), `models--${repo.split('/').join('--')}`);
  if (!(await statOrNull(repoDir))?.isDirectory()) {
    throw new MotherError('ERR_NOT_FOUND', `${repo}: no such file or directory, and not in the Hugging Face cache ${cacheDir}`, { file: repoDir });
  }
  const snap = await snapshotOf(repoDir, revision);
  if ('missing' in snap) throw new MotherError('ERR_NOT_FOUND', `${repo}: ${snap.missing} in the Hugging Face cache ${cacheDir}`, { file: repoDir });
  if ('broken' in snap) throw new MotherError('ERR_NOT_A_MODEL', `${repo}: broken cache entry: ${snap.broken}`, { file: repoDir });
  return snapshotModels(repo, snap.snapshot, options.onSkipped);
}
