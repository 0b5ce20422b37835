// Stage 3 of the pipeline (pairwise evidence), one look more at the square layers of a family:
// the moments of the difference of every pair of its models, on an evenly strided sample of at
// most DIFF_ROWS rows per tensor (native/pairwise/diff_moments.h). Read: DIFF_ROWS rows of each
// tensor per model; memory one row per model per thread.
import { fromNative, MotherError } from '../core/errors';
import { native } from '../core/binding';
import { ModelFiles } from './discovery';

/** Rows sampled per tensor (evenly strided; the same rows in every model). */
export const DIFF_ROWS = 256;

export interface DiffTensorMoments {
  name: string;
  rows: number;
  cols: number;
  sampled: number;
  /** Per pair (i < j, condensed order: pairIndex), the moments of model i's tensor minus model j's
   *  over the sampled rows: finite count, mean, and central sums m2, m3, m4; nonFinite: NaN/Inf count. */
  count: Float64Array;
  mean: Float64Array;
  m2: Float64Array;
  m3: Float64Array;
  m4: Float64Array;
  nonFinite: Float64Array;
}

/** Per tensor (null where fewer than two models hold it, 2-D, of one shape): the difference moments of every pair. */
export async function differenceMoments(
  models: Pick<ModelFiles, 'files' | 'index'>[],
  tensors: { name: string; names?: (string | null)[] }[],
  options: { simd?: string; threads?: number; maxRows?: number; signal?: AbortSignal } = {},
): Promise<(DiffTensorMoments | null)[]> {
  if (options.signal?.aborted) throw new MotherError('ERR_CANCELLED', 'difference moments cancelled');
  const cancel = new Int32Array(1);
  const onAbort = () => Atomics.store(cancel, 0, 1);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const raw = await native().diffMoments(models.map((m) => ({ files: m.files, index: m.index })), tensors, { simd: options.simd, threads: options.threads, maxRows: options.maxRows ?? DIFF_ROWS }, cancel);
    return raw.tensors;
  } catch (e) {
    throw fromNative(e);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
