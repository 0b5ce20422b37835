// Public library API.
export { resolveModel, ModelFiles } from './discovery';
export { MotherError, MotherErrorCode } from './errors';
export { scanModel, ModelStats, TensorStats, ScanOptions, ScanProgress } from './model_stats';
export { inspectModel, ModelHeader } from './inspect';
export { simdPaths } from './simd';
