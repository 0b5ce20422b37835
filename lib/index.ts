// Public library API.
export { resolveModel, ModelFiles } from './discovery';
export { MotherError, MotherErrorCode } from './errors';
export { scanModel, ModelStats, TensorStats, ScanOptions, ScanProgress } from './model_stats';
export { inspectModel, ModelHeader } from './inspect';
export { simdPaths } from './simd';
export { alignTensors, Alignment, AlignedTensor, LayerFilter, SkippedTensor } from './alignment';
export { pairwiseStats, aggregate, PairwiseStats, PairwiseOptions, LayerDistances, PairMetric, RankOptions } from './pairwise';
