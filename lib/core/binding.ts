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
  files: { path: string; format: string; size: number; headerBytes: number; metadata: Record<string, string> }[];
  /** decoded: the reader decoded the values into memory (ONNX typed fields); offset is then in that copy.
   *  dequantized: an ONNX quantised weight read as a float view (lib/io/inspect.ts). */
  tensors: {
    name: string; dtype: string; shape: number[]; file: number; offset: number; bytes: number; unreadable?: string; decoded?: true;
    dequantized?: { data: string; scale: string; zeroPoint: string; axis: number | null; channels: number; roundingRms: number };
  }[];
}

/**
 * One value per unordered pair i < j (pairIndex order) and compared tensor; a = model i's
 * tensor, b = model j's, over the positions the pair compared (the rows both have, both values
 * finite). README "Distances between models" defines each field and its accuracy.
 */
export interface RawPairTensor {
  /** sum (a - b)^2; exactly 0 when the values are equal */
  sumSq: Float64Array;
  /** sum |a - b|, max (a - b), min (a - b): only when the pass was asked for `differences` */
  sumAbs?: Float64Array; maxDiff?: Float64Array; minDiff?: Float64Array;
  count: Float64Array; skipped: Float64Array;
  /** means and population variances of a and of b over the compared positions */
  meanA: Float64Array; meanB: Float64Array; varA: Float64Array; varB: Float64Array;
  /** 1 - Pearson r(a, b), from the moments of a - b; NaN when a variance is 0 */
  oneMinusR: Float64Array;
  /** with `relatedness`: Pearson r of a[p] with b[p + R] and b[p + 2R] over nShift sampled positions */
  rShift1?: Float64Array; rShift2?: Float64Array; nShift?: Float64Array;
  rank?: Float64Array; rankTol?: Float64Array; sigmaMax?: Float64Array;
  /** per model, the float64 slots of summaryLayout() (read them with packedRecords) */
  moments?: Float64Array;
  /** per model, 4 counts of sampled blocks of 32: tested for the Q4_0 grid, on it, tested for
   *  Q8_0, on it (native/stats/quant_grid.h); absent from an older addon */
  grid?: Float64Array;
}

export interface RawPairwise {
  tensors: RawPairTensor[];
  bytesRead: number[];
  seconds: number;
  /** exact SVDs run (rank.exact); absent from an older addon */
  svdTotal?: number;
  simd: string;
  threads: number;
  backend: 'cpu' | 'cuda';
  device?: string;
}

export interface RawPairwiseOptions extends RawNativeOptions {
  chunkElems?: number;
  jobElems?: number;
  sketchK?: number;
  sketchSeed?: number | bigint;
  exactRank?: boolean;
  /** sum |d|, max d, min d (default true) */
  differences?: boolean;
  /** the shifted null rShift1, rShift2, nShift (default false) */
  relatedness?: boolean;
}

export interface RawPlanTensor { name: string; /** per model, where models name the tensor differently (alignment) */ names?: string[]; rows: number[]; rowElems: number; sketch?: boolean; moments?: boolean }

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

/** Progress of the pairwise pass: the bytes read, then (exact rank only) the SVDs finished. */
export interface PairwiseProgress {
  bytesDone: number;
  bytesTotal: number;
  /** exact rank: singular value decompositions finished of svdTotal (0 of 0 without that stage) */
  svdDone?: number;
  svdTotal?: number;
}

export interface RawRowHashes {
  name: string;
  rows: number;
  rowElems: number;
  f32: Float64Array;
  f16: Float64Array;
  bf16: Float64Array;
}

export interface RawSpectrum {
  name: string;
  rows: number;
  cols: number;
  /** the measured block: the whole matrix, or its evenly strided maxDim x maxDim sub-block */
  blockRows: number;
  blockCols: number;
  /** -sum p log p over p = s^2 / sum s^2 of the block's singular values s; NaN with a NaN/Inf or an all-zero block */
  entropy: number;
  top: number;
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
  /** Per named tensor (null where the model has none): the hash of each row at float32, float16 and bfloat16 (native/stats/row_hash.h), top 53 bits. */
  rowHashes(files: string[], index: string, tensors: string[], options: { simd?: string }, cancel?: Int32Array): Promise<{ tensors: (RawRowHashes | null)[] }>;
  /** Per named tensor (null where the model has none with statistics, it is not 2-D, or its rows are not whole blocks): its spectral entropy (native/stats/spectrum.h). */
  spectralEntropy(files: string[], index: string, tensors: string[], options: { simd?: string; maxDim?: number }, cancel?: Int32Array): Promise<{ tensors: (RawSpectrum | null)[] }>;
  /** Per item, <X, right left>, ||X||_F^2 and the r x r Gram matrix Y^T Y of Y = X left^T (with gram 'right': Z Z^T, Z = right^T X; empty where it does not fit the native scratch) over the model's tensor X named `tensor` ([rows, cols]; left r x cols, right rows x r, row-major), or null where it has none of that shape with statistics (native/pairwise/lora_products.h). */
  loraProducts(
    files: string[],
    index: string,
    items: { tensor: string; left: Float64Array; right: Float64Array; r: number; rows: number; cols: number; gram?: 'left' | 'right' }[],
    options: { simd?: string; threads?: number },
    cancel?: Int32Array,
  ): Promise<{ products: ({ value: number; sumSq: number; gram: Float64Array; finite: boolean } | null)[] }>;
  /** Per tensor (null where fewer than two models hold it, 2-D, of one shape): per pair (i < j, in order) the moments of the difference on an evenly strided sample of at most maxRows rows (native/pairwise/diff_moments.h). */
  diffMoments(
    models: { files: string[]; index: string }[],
    tensors: { name: string; names?: (string | null)[] }[],
    options: { simd?: string; threads?: number; maxRows?: number },
    cancel?: Int32Array,
  ): Promise<{ tensors: ({ name: string; rows: number; cols: number; sampled: number; count: Float64Array; mean: Float64Array; m2: Float64Array; m3: Float64Array; m4: Float64Array; nonFinite: Float64Array } | null)[] }>;
  pairwise(
    models: { files: string[]; index: string }[],
    plan: RawPlanTensor[],
    options: RawPairwiseOptions,
    onProgress?: (p: PairwiseProgress) => void,
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
    /** The float32 pass of F16/BF16 on the SIMD paths: the relative error bound of each block
     *  sum (kF32Eps) and the block length (kBlock), native/stats/kernels.h. */
    f32Eps: number;
    block: number;
    /** Float64 values of the elements (GGUF block types: whole blocks), as the pairwise pass decodes them. */
    decode(bytes: Uint8Array, dtype: string, simd?: string): Float64Array & { bad: boolean };
    sumU64(bytes: Uint8Array, simd?: string): bigint;
    /** The kernels of the Gram path on raw rows: gram (upper triangle of the m x m products),
     *  pairDd ([sum d^2, sum d, sum (d - mean d)^2]), moments2 ([mean, sum (x - mean)^2]). */
    gram(rows: Float64Array[], simd?: string): Float64Array;
    pairDd(a: Float64Array, b: Float64Array, simd?: string): Float64Array;
    moments2(x: Float64Array, simd?: string): Float64Array;
    /** native/stats/quant_grid.h grid_block: bit 0 tested for Q4_0, 1 on it, 2 tested for Q8_0, 3 on it */
    gridBlock(x: Float64Array, unitRoundoff: number): number;
    /** float32 -> IEEE half / bfloat16 bits, nearest even (the row hashes' roundings) */
    f16Bits(x: Float32Array): Uint16Array;
    bf16Bits(x: Float32Array): Uint16Array;
    /** pairwise with row maps set on some views (no format sets one yet): tensor `tensor` of
     *  model `model` reads logical row r from stored row map[r]. */
    pairwiseRowMaps(
      models: { files: string[]; index: string }[],
      plan: RawPlanTensor[],
      options: RawPairwiseOptions,
      rowMaps: { model: number; tensor: string; map: Uint32Array }[],
    ): Promise<RawPairwise>;
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

/** The one code the loader raises itself, with its kind (as in native/core/error.h): when no
 *  addon loads there is no list to read it from. */
const LOADER_KINDS: ReadonlyMap<string, ErrorKind> = new Map([['ERR_NO_ADDON', 'runtime']]);

/** The kind of every error code, from the addon's list; without an addon, only the loader's
 *  own code (so that a caller reporting ERR_NO_ADDON does not fail again on the lookup). */
export function errorKinds(): ReadonlyMap<string, ErrorKind> {
  if (kinds) return kinds;
  let list: NativeAddon['errorCodes'];
  try {
    list = native().errorCodes;
  } catch (e) {
    if (e instanceof MotherError && e.code === 'ERR_NO_ADDON') return LOADER_KINDS;
    throw e;
  }
  return (kinds = new Map(list.map((c) => [c.code, c.kind])));
}

/** The codes that mean "the input files are unreadable or invalid" (CLI exit code 3). */
export function inputErrorCodes(): ReadonlySet<string> {
  return new Set([...errorKinds()].filter(([, k]) => k === 'input').map(([c]) => c));
}

let cached: NativeAddon | undefined;
let cachedFrom: string | undefined;

/** Loads the addon: a local build (build/Release) first, else a prebuild for this platform
 *  (prebuilds/<platform>-<arch>/, shipped in the npm package). Throws ERR_NO_ADDON, a one-line
 *  message saying what to run, when none is there or none loads. */
export function native(): NativeAddon {
  if (!cached) {
    const loaded = loadAddon(packageRoot());
    cached = loaded.addon;
    cachedFrom = loaded.file;
  }
  return cached;
}

/** The file native() loaded the addon from (loading it if not yet done). */
export function addonFile(): string {
  native();
  return cachedFrom!;
}

/**
 * Finds and loads the addon of the package at `root` as node-gyp-build does (build/Release,
 * build/Debug, then prebuilds/ by platform, arch, libc and N-API version). Everything here runs
 * without the addon, its error included: the failure is a MotherError with a code this file
 * knows (ERR_NO_ADDON) and the command that fixes it; the cause is kept as `cause`.
 */
export function loadAddon(root: string): { addon: NativeAddon; file: string } {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const gypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  let file: string;
  try {
    file = gypBuild.resolve(root);
  } catch (e) {
    throw noAddon(root, `the native addon is missing for ${platformTag()}: neither build/Release nor prebuilds/ in ${root} has one`, e);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return { addon: require(file) as NativeAddon, file };
  } catch (e) {
    throw noAddon(root, `the native addon ${file} does not load on ${platformTag()} (${firstLine(e)})`, e);
  }
}

/** linux-x64 glibc (Node 20.20.2, N-API 9): what node-gyp-build matches a prebuild on. */
function platformTag(): string {
  let libc = '';
  if (process.platform === 'linux') {
    const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
    libc = report?.header?.glibcVersionRuntime ? ' glibc' : ' musl';
  }
  return `${process.platform}-${process.arch}${libc} (Node ${process.versions.node}, N-API ${process.versions.napi})`;
}

function firstLine(e: unknown): string {
  const msg = typeof e === 'object' && e !== null && 'message' in e ? String((e as { message: unknown }).message) : String(e);
  return msg.split('\n')[0].trim();
}

/** The ERR_NO_ADDON error, one line: what is missing, then what to run. In an installed package
 *  that is `npm rebuild mother` (a build from source: a C++17 compiler, make and Python 3); in
 *  a checkout of mother itself, `npm run build:addon`. The loader's error keeps its cause. */
function noAddon(root: string, what: string, cause: unknown): MotherError {
  const parent = path.dirname(root);
  const installed = path.basename(parent) === 'node_modules' || path.basename(path.dirname(parent)) === 'node_modules';
  const fix = installed
    ? 'run `npm rebuild mother` (it builds from source: needs a C++17 compiler, make and Python 3)'
    : `run \`npm run build:addon\` in ${root}`;
  const err = new MotherError('ERR_NO_ADDON', `${what}; ${fix}`, { file: root });
  Object.defineProperty(err, 'cause', { value: cause, enumerable: false, configurable: true, writable: true });
  return err;
}

/** The package root (the folder holding package.json), from src (lib/core/) or compiled (dist/lib/core/). */
export function packageRoot(): string {
  const lib = path.dirname(__dirname);
  return path.basename(path.dirname(lib)) === 'dist' ? path.resolve(lib, '..', '..') : path.resolve(lib, '..');
}
