// Stage 1 of the pipeline (read): the headers only, the tensor table of a model without
// reading tensor data.
import { ModelFiles, resolveModel } from './discovery';
import { fromNative } from '../core/errors';
import { check } from '../core/validate';
import { native } from '../core/binding';

export interface ModelHeader {
  model: string;
  /**
   * Per file: its format ('safetensors', 'gguf', ...) and metadata, as the file holds it
   * (safetensors: __metadata__; GGUF: every key/value, numbers and bools as text, short arrays
   * as JSON, e.g. general.architecture, general.name, general.base_model.0.name,
   * general.file_type, general.quantization_version).
   */
  files: { path: string; format: string; size: number; headerBytes: number; metadata: Record<string, string> }[];
  /** `unreadable`: why the tensor's values cannot be read in order (a non-contiguous view in a
   *  PyTorch checkpoint); such a tensor has no statistics and is not compared. `decoded`: the
   *  reader decoded the values into memory (ONNX values stored as protobuf varints), and
   *  `offset` is in that copy, not in `file`. */
  tensors: { name: string; dtype: string; shape: number[]; file: string; offset: number; bytes: number; unreadable?: string; decoded?: true }[];
}

/** Parses and validates the headers of the model at `modelPath`. */
export async function inspectModel(modelPath: string): Promise<ModelHeader> {
  check.path(modelPath, 'modelPath');
  return inspectResolved(await resolveModel(modelPath));
}

/** inspectModel for a model already resolved by resolveModel. */
export async function inspectResolved(resolved: ModelFiles): Promise<ModelHeader> {
  try {
    const raw = await native().inspect(resolved.files, resolved.index);
    return {
      model: resolved.path,
      files: raw.files,
      tensors: raw.tensors.map((t) => ({ ...t, file: raw.files[t.file].path })),
    };
  } catch (e) {
    throw fromNative(e);
  }
}
