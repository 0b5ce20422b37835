// Stage 1 of the pipeline (read), one tensor more: the hash of each row of a model's token
// embedding, at float32, float16 and bfloat16 (native/stats/row_hash.h), for the identical-row
// evidence of lib/method/embedding_rows.ts. It reads that tensor a second time (the pairwise
// pass reads it once): about 2-3 % of an LLM's bytes.
import { fromNative, MotherError } from '../core/errors';
import { native, RawRowHashes } from '../core/binding';
import { ModelFiles } from './discovery';

export type RowHashes = RawRowHashes;

/** The row hashes of `tensor` in the model (null when it has none with statistics). */
export async function rowHashes(model: Pick<ModelFiles, 'files' | 'index'>, tensor: string, options: { simd?: string; signal?: AbortSignal } = {}): Promise<RowHashes | null> {
  if (options.signal?.aborted) throw new MotherError('ERR_CANCELLED', 'row hashes cancelled');
  const cancel = new Int32Array(1);
  const onAbort = () => Atomics.store(cancel, 0, 1);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const raw = await native().rowHashes(model.files, model.index, [tensor], { simd: options.simd }, cancel);
    return raw.tensors[0];
  } catch (e) {
    throw fromNative(e);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
