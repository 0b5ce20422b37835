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
   *  `offset` is in that copy, not in `file`. `dequantized`: an ONNX quantised weight (dtype
   *  QUINT8 or QINT8) read as one float view of values (q - zero point) x scale: the
   *  initializers it is made of (`offset` and `bytes` are those of `data`; the scale and zero
   *  point are not listed as tensors), the channel axis (null: per tensor) and the number of
   *  scales. */
  tensors: {
    name: string; dtype: string; shape: number[]; file: string; offset: number; bytes: number; unreadable?: string; decoded?: true;
    dequantized?: Dequantized;
  }[];
}

/** Where an ONNX quantised weight's float view comes from (README, ONNX models). */
export interface Dequantized {
  /** The quantised integers, NAME_quantized. */
  data: string;
  /** NAME_scale and NAME_zero_point. */
  scale: string;
  zeroPoint: string;
  /** The axis the per-channel scales run along; null: one scale for the tensor. */
  axis: number | null;
  /** How many scales (1 per tensor; the length of the axis per channel). */
  channels: number;
  /** The RMS of the rounding error of this grid, sqrt(mean(scale^2) / 12): how far (RMS) the
   *  values of a quantised copy lie from the float weights they were rounded from. */
  roundingRms: number;
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
