// Stage 1 of the pipeline (read), a few tensors more: the spectral entropy of square 2-D
// tensors (native/stats/spectrum.h), the `spectral` direction clock of lib/method/clocks.ts.
// A matrix larger than SPECTRUM_MAX_DIM in a dimension is measured on its evenly strided
// SPECTRUM_MAX_DIM x SPECTRUM_MAX_DIM sub-block (the same elements in every model of one shape):
// memory one row plus the block, time one singular value decomposition of the block per tensor
// (about 0.1 s at 512 x 512), whatever the model's size.
import { fromNative, MotherError } from '../core/errors';
import { native, RawSpectrum } from '../core/binding';
import { ModelFiles } from './discovery';

export type Spectrum = RawSpectrum;

/** The largest block side measured (rows and columns). */
export const SPECTRUM_MAX_DIM = 512;

/** The spectrum summary of each of `tensors` in the model (null where it has none such). */
export async function spectralEntropies(
  model: Pick<ModelFiles, 'files' | 'index'>,
  tensors: string[],
  options: { simd?: string; maxDim?: number; signal?: AbortSignal } = {},
): Promise<(Spectrum | null)[]> {
  if (options.signal?.aborted) throw new MotherError('ERR_CANCELLED', 'spectral entropy cancelled');
  const cancel = new Int32Array(1);
  const onAbort = () => Atomics.store(cancel, 0, 1);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const raw = await native().spectralEntropy(model.files, model.index, tensors, { simd: options.simd, maxDim: options.maxDim ?? SPECTRUM_MAX_DIM }, cancel);
    return raw.tensors;
  } catch (e) {
    throw fromNative(e);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
