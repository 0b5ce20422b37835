// Under every stage of the pipeline (core): the compiled addon and its raw,
// untyped-at-the-boundary interface. Everything else in lib/ goes through the typed wrappers
// built on top of this file.
import * as path from 'node:path';

import { MotherError } from './errors';

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
  /** per tensor: why its values were not read (a non-contiguous PyTorch view), or null */
  unreadable: (string | null)[];
  /** per tensor, the float64 slots of summaryLayout() (read them with packedRecords) */
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
  /** decoded: the reader decoded the values into memory (ONNX typed fields); offset is then in that copy */
  tensors: { name: string; dtype: string; shape: number[]; file: number; offset: number; bytes: number; unreadable?: string; decoded?: true }[];
}

export interface RawPairwise {
  tensors: {
    sumSq: Float64Array; sumAbs: Float64Array; maxDiff: Float64Array; minDiff: Float64Array; count: Float64Array; skipped: Float64Array;
    rank?: Float64Array; rankTol?: Float64Array; sigmaMax?: Float64Array;
    /** per model, the float64 slots of summaryLayout() (read them with packedRecords) */
    moments?: Float64Array;
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
    options: RawNativeOptions & { chunkElems?: number; jobElems?: number; sketchK?: number; sketchSeed?: number | bigint; exactRank?: boolean },
    onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void,
    cancel?: Int32Array,
  ): Promise<RawPairwise>;
  gpuOpen(library: string): Promise<GpuInfo>;
  /** The format whose reader claims the file at `path` (by name or magic), or null. */
  formatOf(path: string): string | null;
  simdPaths(): string[];
  simdDefault(): string;
  /** Every error code, from the core's one list (native/core/error.h). */
  errorCodes: readonly { code: string; kind: ErrorKind; what: string }[];
  /** Named layouts of the packed float64 slots (native/stats/summary.h). */
  layouts: { summary: readonly string[] };
  /** The seed of the rank sketch's test matrices when none is given. */
  defaultSketchSeed: bigint;
  /** For tests and benchmarks only: the kernels on raw buffers, and the plain-read baseline. */
  testing: {
    pairDiff(a: Float64Array, b: Float64Array, simd?: string): Float64Array;
    pairDiff4(a: Float64Array[], b: Float64Array, simd?: string): Float64Array;
    plainRead(files: string[], options: RawNativeOptions): Promise<{ bytes: number; seconds: number; checksum: bigint; simd: string }>;
    moments(bytes: Uint8Array, dtype: string, simd?: string): Float64Array;
    sumU64(bytes: Uint8Array, simd?: string): bigint;
  };
}

/** What an error code means for a caller: bad input files (CLI exit 3), a usage mistake
 *  (exit 2), a run-time failure such as a cancellation or a missing GPU (exit 1), or a bug. */
export type ErrorKind = 'input' | 'usage' | 'runtime' | 'internal';

/**
 * The names of the float64 summary slots that TypeScript reads (RawScan.stats per tensor,
 * RawPairwise moments per model, testing.moments()). The slots' order comes from the addon
 * (`layouts.summary`, one X-macro list in native/stats/summary.h): summaryLayout() maps each
 * name to its slot there, so nothing reads a slot by position. The test of the layouts checks
 * that this list names exactly the addon's fields.
 */
export const SUMMARY_FIELDS = [
  'count', 'mean', 'std', 'skewness', 'kurtosis', 'min', 'max', 'l2', 'absMean', 'nan', 'inf', 'hasStats',
] as const;
export type SummaryField = (typeof SUMMARY_FIELDS)[number];
/** The same list under its older name. */
export const STAT_FIELDS = SUMMARY_FIELDS;

/** A named layout of packed float64 slots: the slot of each field, and how many there are. */
export interface SlotLayout<F extends string> {
  readonly fields: readonly F[];
  readonly width: number;
  readonly index: Readonly<Record<F, number>>;
}

export function slotLayout<F extends string>(fields: readonly F[]): SlotLayout<F> {
  const index = Object.fromEntries(fields.map((f, i) => [f, i])) as Record<F, number>;
  return { fields, width: fields.length, index };
}

let summary: SlotLayout<SummaryField> | undefined;

/** The layout of the summary slots, in the addon's order (layouts.summary). */
export function summaryLayout(): SlotLayout<SummaryField> {
  if (!summary) {
    const fields = native().layouts.summary;
    const missing = SUMMARY_FIELDS.filter((f) => !fields.includes(f));
    if (missing.length) throw new MotherError('ERR_INTERNAL', `the addon's summary layout lacks ${missing.join(', ')}: rebuild it (npm rebuild mother)`);
    summary = slotLayout(fields as readonly SummaryField[]);
  }
  return summary;
}

/**
 * Reads records packed one after another in `raw`, `layout.width` slots each: field f of
 * record r.
 */
export function packedRecords<F extends string>(
  raw: Float64Array,
  records: number,
  layout: SlotLayout<F>,
  what: string,
): (record: number, field: F) => number {
  if (raw.length !== records * layout.width) {
    throw new MotherError('ERR_INTERNAL', `${what}: ${raw.length} slots are not ${records} records of ${layout.width}`);
  }
  const { width, index } = layout;
  return (record, field) => raw[record * width + index[field]];
}

let kinds: ReadonlyMap<string, ErrorKind> | undefined;

/** The kind of every error code, from the addon's list. */
export function errorKinds(): ReadonlyMap<string, ErrorKind> {
  return (kinds ??= new Map(native().errorCodes.map((c) => [c.code, c.kind])));
}

/** The codes that mean "the input files are unreadable or invalid" (CLI exit code 3). */
export function inputErrorCodes(): ReadonlySet<string> {
  return new Set([...errorKinds()].filter(([, k]) => k === 'input').map(([c]) => c));
}

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
