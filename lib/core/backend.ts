// Under every stage of the pipeline (core): where the statistics and the pairwise pass run: the
// CPU (always there) or the optional CUDA backend, a separate shared library
// (`npm run build:cuda`) that the addon opens with dlopen. CPU-only hosts never need CUDA: with
// the library or the driver absent, 'auto' runs on the CPU and says why.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { fromNative, MotherError } from './errors';
import { GpuInfo, native, packageRoot } from './binding';

export type { GpuInfo };

export type BackendName = 'auto' | 'cpu' | 'cuda';

/** The device a pass ran on, and why. */
export interface BackendUsed {
  /** What was asked for: the option, else MOTHER_BACKEND, else 'auto'. */
  requested: BackendName;
  used: 'cpu' | 'cuda';
  /** The GPU's name, when used is 'cuda'. */
  device?: string;
  /** The backend library, when used is 'cuda'. */
  library?: string;
  /** Why the CPU was used for 'auto' (no library, no driver, no device, ...). */
  reason?: string;
}

/** The backend names an option, the CLI or MOTHER_BACKEND may give. */
export const BACKENDS: readonly BackendName[] = ['auto', 'cpu', 'cuda'];

/** Checks a backend name (from an option, the CLI or MOTHER_BACKEND). */
export function parseBackend(value: unknown, source = 'backend'): BackendName {
  if (typeof value === 'string' && (BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new MotherError('ERR_INVALID_ARGUMENT', `${source} must be auto, cpu or cuda, got ${JSON.stringify(value)}`);
}

/** Where the CUDA backend library is looked for, in order: MOTHER_CUDA_LIBRARY, then the
 *  `npm run build:cuda` output, then a prebuild for this platform. */
export function gpuLibraryCandidates(): string[] {
  const env = process.env.MOTHER_CUDA_LIBRARY;
  if (env) return [path.resolve(env)];
  const root = packageRoot();
  return [
    path.join(root, 'build-cuda', 'Release', 'libmother_cuda.so'),
    path.join(root, 'build-cuda', 'libmother_cuda.so'),
    path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'libmother_cuda.so'),
  ];
}

const opened = new Map<string, Promise<GpuInfo>>();

/** Loads a GPU backend library and opens its first device (once per library). */
export function openGpu(library: string): Promise<GpuInfo> {
  let p = opened.get(library);
  if (!p) {
    // A failure is remembered too: 'auto' asks once per process, not once per model.
    p = native().gpuOpen(library).catch((e: unknown) => {
      throw fromNative(e);
    });
    opened.set(library, p);
  }
  return p;
}

export interface ResolvedBackend {
  /** Options for the native passes. */
  native: { backend: 'cpu' | 'cuda'; gpuLibrary?: string };
  used: BackendUsed;
}

/**
 * Picks the device for a pass. 'cpu': the CPU. 'cuda': the CUDA backend, or ERR_BACKEND saying
 * what is missing. 'auto' (the default): the CUDA backend when its library loads and finds a
 * device, else the CPU, with the reason in `used.reason`.
 */
export async function resolveBackend(option?: string): Promise<ResolvedBackend> {
  const requested =
    option !== undefined ? parseBackend(option) : process.env.MOTHER_BACKEND ? parseBackend(process.env.MOTHER_BACKEND, 'MOTHER_BACKEND') : 'auto';
  const cpu = (reason?: string): ResolvedBackend => ({ native: { backend: 'cpu' }, used: { requested, used: 'cpu', ...(reason ? { reason } : {}) } });
  if (requested === 'cpu') return cpu();
  const candidates = gpuLibraryCandidates();
  const library = candidates.find((c) => fs.existsSync(c));
  if (!library) {
    const why = process.env.MOTHER_CUDA_LIBRARY
      ? `MOTHER_CUDA_LIBRARY names ${candidates[0]}, which does not exist`
      : `the CUDA backend is not built: run \`npm run build:cuda\` in ${packageRoot()} (needs CMake and nvcc), or set MOTHER_CUDA_LIBRARY`;
    if (requested === 'cuda') throw new MotherError('ERR_BACKEND', why);
    return cpu(why);
  }
  try {
    const info = await openGpu(library);
    return { native: { backend: 'cuda', gpuLibrary: library }, used: { requested, used: 'cuda', device: info.device, library } };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (requested === 'cuda') throw new MotherError('ERR_BACKEND', `the CUDA backend cannot run: ${msg}`, { file: library });
    return cpu(msg);
  }
}
