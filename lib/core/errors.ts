// Under every stage of the pipeline (core): one error type for everything the library rejects:
// a stable `code`, and the file and tensor concerned where there is one. Native errors arrive
// with the same fields.

/** Every error code, in the order of the core's one list (native/core/error.h), which the addon
 *  exports as errorCodes with each code's kind; test/error_codes.test.ts checks that the two
 *  agree. */
export const ERROR_CODES = [
  'ERR_NOT_FOUND',
  'ERR_NOT_A_MODEL',
  'ERR_FILE_OPEN',
  'ERR_FILE_TOO_SMALL',
  'ERR_HEADER_TOO_LARGE',
  'ERR_HEADER_LENGTH',
  'ERR_HEADER_UTF8',
  'ERR_HEADER_JSON',
  'ERR_HEADER_SCHEMA',
  'ERR_DUPLICATE_KEY',
  'ERR_UNKNOWN_DTYPE',
  'ERR_OFFSET_ORDER',
  'ERR_OFFSET_GAP',
  'ERR_OFFSET_OVERLAP',
  'ERR_SHAPE_OVERFLOW',
  'ERR_SIZE_MISMATCH',
  'ERR_TRUNCATED',
  'ERR_TRAILING_BYTES',
  'ERR_INDEX_INVALID',
  'ERR_MISSING_SHARD',
  'ERR_INDEX_TENSOR_MISSING',
  'ERR_DUPLICATE_TENSOR',
  'ERR_ZIP_INVALID',
  'ERR_ZIP_UNSUPPORTED',
  'ERR_PICKLE_INVALID',
  'ERR_PICKLE_LIMIT',
  'ERR_UNSAFE_PICKLE',
  'ERR_TORCH_FORMAT',
  'ERR_TORCH_UNSUPPORTED',
  'ERR_TORCH_STORAGE',
  'ERR_GGUF_MAGIC',
  'ERR_GGUF_VERSION',
  'ERR_GGUF_TRUNCATED',
  'ERR_GGUF_COUNT',
  'ERR_GGUF_STRING',
  'ERR_GGUF_ARRAY',
  'ERR_GGUF_VALUE',
  'ERR_GGUF_DIMS',
  'ERR_GGUF_BLOCK',
  'ERR_GGUF_ALIGNMENT',
  'ERR_GGUF_SPLIT',
  'ERR_PROTOBUF_TRUNCATED',
  'ERR_PROTOBUF_VARINT',
  'ERR_PROTOBUF_LENGTH',
  'ERR_PROTOBUF_TAG',
  'ERR_PROTOBUF_DEPTH',
  'ERR_ONNX_SCHEMA',
  'ERR_ONNX_DTYPE',
  'ERR_ONNX_DIMS',
  'ERR_ONNX_DATA_FIELD',
  'ERR_ONNX_DATA_SIZE',
  'ERR_ONNX_VALUE_RANGE',
  'ERR_ONNX_EXTERNAL_INVALID',
  'ERR_ONNX_EXTERNAL_PATH',
  'ERR_ONNX_EXTERNAL_MISSING',
  'ERR_ONNX_EXTERNAL_RANGE',
  'ERR_ONNX_DUPLICATE_NAME',
  'ERR_ONNX_QUANTIZATION',
  'ERR_ONNX_DECODE_LIMIT',
  'ERR_ADAPTER_CONFIG',
  'ERR_ADAPTER_TENSOR',
  'ERR_FILE_CHANGED',
  'ERR_NOT_A_FILE',
  'ERR_INVALID_ARGUMENT',
  'ERR_UNSUPPORTED',
  'ERR_CANCELLED',
  'ERR_BACKEND',
  'ERR_OUTPUT',
  'ERR_NO_ADDON',
  'ERR_INTERNAL',
] as const;
export type MotherErrorCode = (typeof ERROR_CODES)[number];

export class MotherError extends Error {
  readonly code: MotherErrorCode;
  readonly file?: string;
  readonly tensor?: string;

  constructor(code: MotherErrorCode, message: string, details: { file?: string; tensor?: string } = {}) {
    super(message);
    this.name = 'MotherError';
    this.code = code;
    if (details.file !== undefined) this.file = details.file;
    if (details.tensor !== undefined) this.tensor = details.tensor;
  }
}

/** Turns an error thrown by the addon into a MotherError (other errors pass through). */
export function fromNative(err: unknown): unknown {
  // Not `instanceof Error`: the addon creates its errors in Node's main realm, which is not
  // the realm of code running in a vm context (jest, REPL sandboxes).
  if (
    typeof err === 'object' && err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    typeof (err as { message?: unknown }).message === 'string'
  ) {
    const e = err as Error & { code: string; file?: string; tensor?: string };
    if (e.code.startsWith('ERR_')) {
      return new MotherError(e.code as MotherErrorCode, e.message, { file: e.file, tensor: e.tensor });
    }
  }
  return err;
}
