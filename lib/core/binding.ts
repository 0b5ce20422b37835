// The compiled addon and its raw, untyped-at-the-boundary interface. Everything else in lib/
// goes through the typed wrappers built on top of this file.
import * as path from 'node:path';

export interface RawProgress {
  bytesDone: number;
  bytesTotal: number;
  tensorsDone: number;
  tensorsTotal: number;
}

export interface RawScan {
  files: string[];
  names: string[];
  dtypes: string[];
  shapes: number[][];
  fileIndex: Uint32Array;
  /** statFields float64 values per tensor, in the order of STAT_FIELDS */
  stats: Float64Array;
  bytes: number;
  seconds: number;
  simd: string;
  threads: number;
  backend: 'cpu' | 'cuda';
  device?: string;
}

export interface RawInspect {
  files: { path: string; size: number; headerBytes: number; metadata: Record<string, string> }[];
  tensors: { name: string; dtype: string; shape: number[]; file: number; offset: number; bytes: number }[];
}

export interface RawPairwise {
  tensors: {
    sumSq: Float64Array; sumAbs: Float64Array; maxDiff: Float64Array; minDiff: Float64Array; count: Float64Array; skipped: Float64Array;
    rank?: Float64Array; rankTol?: Float64Array; sigmaMax?: Float64Array; moments?: Float64Array;
  }[];
  bytesRead: number[];
  seconds: number;
  simd: string;
  threads: number;
  backend: 'cpu' | 'cuda';
  device?: string;
}

/** What the addon's gpuOpen reports about a GPU backend library and its device. */
export interface GpuInfo {
  library: string;
  /** 'cuda', or 'emulator' for the CPU emulation of the kernels used by the tests. */
  backend: string;
  device: string;
  computeCapability: string;
  multiprocessors: number;
  memoryBytes: number;
  runtimeVersion: number;
  driverVersion: number;
}

export interface RawNativeOptions {
  threads?: number;
  simd?: string;
  chunkBytes?: number;
  /** 'cuda': run on the GPU backend library gpuLibrary (lib/backend.ts resolves 'auto'). */
  backend?: 'cpu' | 'cuda';
  gpuLibrary?: string;
}

export interface NativeAddon {
  scan(
    files: string[],
    index: string,
    options: RawNativeOptions,
    onProgress?: (p: RawProgress) => void,
    cancel?: Int32Array,
  ): Promise<RawScan>;
  inspect(files: string[], index: string): Promise<RawInspect>;
  pairwise(
    models: { files: string[]; index: string }[],
    plan: { name: string; rows: number[]; rowElems: number; sketch?: boolean; moments?: boolean }[],
    options: RawNativeOptions & { chunkElems?: number; jobElems?: number; sketchK?: number; sketchSeed?: number; exactRank?: boolean },
    onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void,
    cancel?: Int32Array,
  ): Promise<RawPairwise>;
  gpuOpen(library: string): Promise<GpuInfo>;
  pairDiff(a: Float64Array, b: Float64Array, simd?: string): Float64Array;
  pairDiff4(a: Float64Array[], b: Float64Array, simd?: string): Float64Array;
  plainRead(files: string[], options: RawNativeOptions): Promise<{ bytes: number; seconds: number; checksum: bigint; simd: string }>;
  moments(bytes: Uint8Array, dtype: string, simd?: string): Float64Array;
  sumU64(bytes: Uint8Array, simd?: string): bigint;
  simdPaths(): string[];
  simdDefault(): string;
  statFields: number;
}

/** Order of the per-tensor float64 slots in RawScan.stats and moments(). */
export const STAT_FIELDS = [
  'count', 'mean', 'std', 'skewness', 'kurtosis', 'min', 'max', 'l2', 'absMean', 'nan', 'inf', 'hasStats',
] as const;

let cached: NativeAddon | undefined;

/** Loads the addon: a local build (build/Release) first, else a prebuild for this platform. */
export function native(): NativeAddon {
  if (!cached) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    cached = load(packageRoot());
  }
  return cached;
}

/** The package root (the folder holding package.json), from src (lib/core/) or compiled (dist/lib/core/). */
export function packageRoot(): string {
  const lib = path.dirname(__dirname);
  return path.basename(path.dirname(lib)) === 'dist' ? path.resolve(lib, '..', '..') : path.resolve(lib, '..');
}
