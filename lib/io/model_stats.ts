// Stage 2 of the pipeline (per-model statistics): one streaming pass of the native engine over
// every tensor of a model, off the event loop, with throttled progress and cancellation.
import { BackendName, BackendUsed, resolveBackend } from '../core/backend';
import { resolveModel } from './discovery';
import { fromNative, MotherError } from '../core/errors';
import { check, checkOptions, commonOptions } from '../core/validate';
import { native, packedRecords, RawScan, SummaryField, summaryLayout } from '../core/binding';

export interface TensorStats {
  name: string;
  dtype: string;
  shape: number[];
  /** The file holding the tensor (a shard, for sharded checkpoints). */
  file: string;
  /** Number of elements (the product of the shape). */
  count: number;
  // Statistics over the finite elements (NaN and +-Inf excluded and counted). null when the
  // dtype has no float statistics (integers, bool, F4/F6, C64) or the value is undefined
  // (no finite element; skewness and kurtosis of constant data, as scipy returns NaN).
  mean: number | null;
  /** Population standard deviation (ddof = 0). */
  std: number | null;
  skewness: number | null;
  /** Excess (Fisher) kurtosis, biased estimator: scipy.stats.kurtosis(x) with defaults. */
  kurtosis: number | null;
  min: number | null;
  max: number | null;
  /** sqrt(sum x^2) over finite elements. */
  l2: number | null;
  /** mean |x| over finite elements. */
  absMean: number | null;
  nan: number | null;
  inf: number | null;
  /** Why the values were not read (a non-contiguous view in a PyTorch checkpoint); absent when they were. */
  unreadable?: string;
}

export interface ModelStats {
  /** The model path as given, resolved. */
  model: string;
  files: string[];
  tensors: TensorStats[];
  /** Bytes of tensor data read. */
  bytes: number;
  /** Seconds spent in the statistics pass (native, excluding header parsing). */
  seconds: number;
  /** SIMD path used: scalar, avx2, avx512 or neon. */
  simd: string;
  threads: number;
  /** The device the statistics ran on (and, for 'auto' on the CPU, why). */
  backend: BackendUsed;
  /** Which file of a directory was read when it holds several (safetensors next to onnx/, ONNX variants). */
  note?: string;
}

export interface ScanProgress {
  bytesDone: number;
  bytesTotal: number;
  tensorsDone: number;
  tensorsTotal: number;
}

export interface ScanOptions {
  /** Worker threads; default: all cores. */
  threads?: number;
  /** Force a SIMD path (auto | scalar | avx2 | avx512 | neon); default: MOTHER_SIMD or the best. */
  simd?: string;
  /** Bytes per job (default 16 MiB). Peak resident memory is about threads x chunkBytes. */
  chunkBytes?: number;
  /** Where the kernels run: 'auto' (the default, or $MOTHER_BACKEND): the CUDA backend when
   *  it is built and finds a GPU, else the CPU; 'cpu'; 'cuda' (an error if unavailable). */
  backend?: BackendName;
  /** Called at most every 100 ms while scanning, and once at the end. */
  onProgress?: (p: ScanProgress) => void;
  signal?: AbortSignal;
}

function orNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** The checks of ScanOptions. */
const SCAN_OPTIONS = { ...commonOptions, chunkBytes: check.integer(4096, 2 ** 31, '2^31') };

export function toModelStats(model: string, raw: RawScan, backend?: BackendUsed): ModelStats {
  const slot = packedRecords(raw.stats, raw.names.length, summaryLayout(), 'scan statistics');
  const tensors: TensorStats[] = raw.names.map((name, i) => {
    const has = slot(i, 'hasStats') === 1;
    const stat = (f: SummaryField) => (has ? orNull(slot(i, f)) : null);
    const count = raw.shapes[i].reduce((a, b) => a * b, 1);
    return {
      name,
      dtype: raw.dtypes[i],
      shape: raw.shapes[i],
      file: raw.files[raw.fileIndex[i]],
      count,
      mean: stat('mean'),
      std: stat('std'),
      skewness: stat('skewness'),
      kurtosis: stat('kurtosis'),
      min: stat('min'),
      max: stat('max'),
      l2: stat('l2'),
      absMean: stat('absMean'),
      nan: has ? slot(i, 'nan') : null,
      inf: has ? slot(i, 'inf') : null,
      ...(raw.unreadable?.[i] ? { unreadable: raw.unreadable[i]! } : {}),
    };
  });
  return {
    model, files: raw.files, tensors, bytes: raw.bytes, seconds: raw.seconds, simd: raw.simd, threads: raw.threads,
    backend: backend ?? { requested: raw.backend, used: raw.backend, ...(raw.device ? { device: raw.device } : {}) },
  };
}

/**
 * Reads every tensor of the model at `modelPath` once and returns per-tensor statistics.
 * Runs on native threads; the event loop stays free.
 */
export async function scanModel(modelPath: string, options: ScanOptions = {}): Promise<ModelStats> {
  check.path(modelPath, 'modelPath');
  checkOptions(options, SCAN_OPTIONS);
  const resolved = await resolveModel(modelPath);
  const device = await resolveBackend(options.backend);
  if (options.signal?.aborted) throw new MotherError('ERR_CANCELLED', 'scan cancelled');
  const cancel = new Int32Array(1);
  const onAbort = () => Atomics.store(cancel, 0, 1);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let settled = false;
  let last: ScanProgress | undefined;
  // A callback that throws fails the call with what it threw; the native pass is cancelled.
  let thrown: { error: unknown } | undefined;
  const onProgress = options.onProgress
    ? (p: ScanProgress) => {
        if (settled || thrown) return;
        last = p;
        try {
          options.onProgress!(p);
        } catch (e) {
          thrown = { error: e };
          Atomics.store(cancel, 0, 1);
        }
      }
    : undefined;
  try {
    const raw = await native().scan(
      resolved.files,
      resolved.index,
      { threads: options.threads, simd: options.simd, chunkBytes: options.chunkBytes, ...device.native },
      onProgress,
      cancel,
    );
    settled = true;
    if (thrown) throw thrown.error;
    const stats = toModelStats(resolved.path, raw, device.used);
    if (resolved.note) stats.note = resolved.note;
    if (options.onProgress && (!last || last.bytesDone !== last.bytesTotal)) {
      // The native final report can arrive after the promise settles: report completion here.
      const scanned = stats.tensors.filter((t) => t.nan !== null && t.count > 0);
      const bytes = last?.bytesTotal ?? 0;
      options.onProgress({ bytesDone: bytes, bytesTotal: bytes, tensorsDone: scanned.length, tensorsTotal: scanned.length });
    }
    return stats;
  } catch (e) {
    settled = true;
    if (thrown) throw thrown.error;
    throw fromNative(e);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
