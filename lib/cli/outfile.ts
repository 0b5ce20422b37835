// The CLI's --out: checked before any computation, refused where it would overwrite an input,
// written atomically after a successful run.
//   1. checkOutTarget (before discovery): the path resolved (symlinks followed; for a new file,
//      the real path of its folder); an existing target must be a regular file (not a folder,
//      device, FIFO or socket: /dev/full is refused here) and writable, a new one's folder must
//      exist, be a folder and be writable; nothing inside a Hugging Face cache (blobs/,
//      snapshots/) is ever a target.
//   2. refuseInputs (after discovery, before the read): the target is none of the input files
//      (weights, shard indexes and their shards, config.json, the --truth file), compared by
//      real path and by device + inode (hard links).
//   3. writeAtomic (after the run): a temporary file in the target's folder, flushed, renamed
//      over the target (a symlinked target keeps its link: the file it points at is replaced).
//      A failed run writes nothing; a failed write leaves the old file as it was.
import { constants as C, promises as fs } from 'node:fs';
import * as path from 'node:path';

import { MotherError } from '../core/errors';

export interface OutTarget {
  /** As given on the command line. */
  given: string;
  /** The real path written (symlinks resolved). */
  real: string;
  /** The existing file's mode bits (kept by the rewrite), or undefined for a new file. */
  mode?: number;
}

/** A file the output must never replace, and what it is ("input weights", "the --truth file"). */
export interface ProtectedFile {
  file: string;
  what: string;
}

const refuse = (given: string, why: string) => new MotherError('ERR_INVALID_ARGUMENT', `--out ${given}: ${why}`, { file: given });

const errnoOf = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** The path of a Hugging Face cache entry's files: models--ORG--NAME/blobs/ or /snapshots/. */
const IN_HF_CACHE = /(^|\/)(models|datasets|spaces)--[^/]+\/(blobs|snapshots)(\/|$)/;

/** Step 1: where --out writes, checked before anything is computed. */
export async function checkOutTarget(given: string): Promise<OutTarget> {
  const abs = path.resolve(given);
  let st: import('node:fs').Stats | null = null;
  try {
    st = await fs.stat(abs);
  } catch (e) {
    if (errnoOf(e) === 'ENOTDIR') throw refuse(given, `${path.dirname(abs)} is not a folder`);
    if (errnoOf(e) !== 'ENOENT') throw refuse(given, `cannot check the output path: ${(e as Error).message}`);
    try {
      await fs.lstat(abs);
      throw refuse(given, 'is a symbolic link to a file that does not exist');
    } catch (e2) {
      if (e2 instanceof MotherError) throw e2;
    }
  }
  let target: OutTarget;
  if (st) {
    if (st.isDirectory()) throw refuse(given, 'is a folder: give a file name');
    if (!st.isFile()) throw refuse(given, 'is not a regular file (a device, FIFO or socket): give a file name');
    const real = await fs.realpath(abs);
    try {
      await fs.access(real, C.W_OK);
      await fs.access(path.dirname(real), C.W_OK | C.X_OK);
    } catch {
      throw refuse(given, 'is not writable (the file or its folder)');
    }
    target = { given, real, mode: st.mode & 0o7777 };
  } else {
    const dir = path.dirname(abs);
    let ds;
    try {
      ds = await fs.stat(dir);
    } catch (e) {
      throw refuse(given, errnoOf(e) === 'ENOENT' ? `the folder ${dir} does not exist` : `cannot check the folder ${dir}: ${(e as Error).message}`);
    }
    if (!ds.isDirectory()) throw refuse(given, `${dir} is not a folder`);
    const realDir = await fs.realpath(dir);
    try {
      await fs.access(realDir, C.W_OK | C.X_OK);
    } catch {
      throw refuse(given, `the folder ${dir} is not writable`);
    }
    target = { given, real: path.join(realDir, path.basename(abs)) };
  }
  if (IN_HF_CACHE.test(target.real)) throw refuse(given, `resolves to ${target.real}, inside a Hugging Face cache (its blobs are shared by snapshots): refusing to write there`);
  return target;
}

/** The files of `file`'s identity: its real path and device:inode, or null when it is not there. */
async function identity(file: string): Promise<{ real: string; id: string } | null> {
  try {
    const real = await fs.realpath(file);
    const st = await fs.stat(real);
    return { real, id: `${st.dev}:${st.ino}` };
  } catch {
    return null;
  }
}

/** Step 2: the target is none of the protected files (by real path, and by inode). */
export async function refuseInputs(target: OutTarget, files: readonly ProtectedFile[]): Promise<void> {
  const mine = await identity(target.real);
  for (const f of files) {
    const other = await identity(f.file);
    if (!other) continue;
    if (other.real === target.real || (mine && other.id === mine.id)) {
      throw refuse(target.given, `is ${f.what} ${f.file}${other.real !== path.resolve(f.file) ? ` (resolved: ${other.real})` : ''}: refusing to overwrite an input`);
    }
  }
}

/** The weight files, shard indexes (and the shards they name) and config.json of a resolved model. */
export async function modelInputFiles(m: { path: string; files: string[]; index: string }): Promise<ProtectedFile[]> {
  const out: ProtectedFile[] = m.files.map((file) => ({ file, what: 'the input weights' }));
  if (m.index) {
    out.push({ file: m.index, what: 'the input shard index' });
    try {
      const doc = JSON.parse(await fs.readFile(m.index, 'utf8')) as { weight_map?: Record<string, unknown> };
      const shards = new Set(Object.values(doc.weight_map ?? {}).filter((v): v is string => typeof v === 'string'));
      for (const s of shards) out.push({ file: path.resolve(path.dirname(m.index), s), what: 'an input shard' });
    } catch {
      // the reader reports a broken index; nothing more to protect from it here
    }
  }
  const dir = (await fs.stat(m.path).catch(() => null))?.isDirectory() ? m.path : path.dirname(m.path);
  out.push({ file: path.join(dir, 'config.json'), what: 'the input config' });
  return out;
}

/** Step 3: `text` into the target, atomically (temporary file in its folder + rename). */
export async function writeAtomic(target: OutTarget, text: string): Promise<void> {
  const dir = path.dirname(target.real);
  const tmp = path.join(dir, `.${path.basename(target.real)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  let handle: import('node:fs/promises').FileHandle | undefined;
  try {
    handle = await fs.open(tmp, 'wx', target.mode ?? 0o666);
    await handle.writeFile(text);
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (target.mode !== undefined) await fs.chmod(tmp, target.mode);
    await fs.rename(tmp, target.real);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    throw new MotherError('ERR_OUTPUT', `--out ${target.given}: cannot write: ${(e as Error).message}`, { file: target.real });
  }
}
