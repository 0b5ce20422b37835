// Public library API.
export { resolveModel, discoverModels, discoverHfCache, defaultHfCache, ModelFiles, DiscoveredModel } from './discovery';
export { MotherError, MotherErrorCode } from './errors';
export { scanModel, ModelStats, TensorStats, ScanOptions, ScanProgress } from './model_stats';
export { inspectModel, ModelHeader } from './inspect';
export { simdPaths } from './simd';
export { resolveBackend, openGpu, gpuLibraryCandidates, BackendName, BackendUsed, GpuInfo } from './backend';
export { alignTensors, Alignment, AlignedTensor, LayerFilter, SkippedTensor } from './alignment';
export { pairwiseStats, aggregate, PairwiseStats, PairwiseOptions, LayerDistances, PairMetric, RankOptions } from './pairwise';
export { recover, evaluate, RecoverOptions, ModelGraph, GraphModel, GraphEdge, FamilyReport, ModelInput, DistanceMetric } from './recover';
export { wardLinkage, cutTree, autoFamilies, clusterFamilies, Linkage } from './clustering';
export { minimumArborescence, minimumArborescenceMatrix, Arborescence } from './arborescence';
export { edgeCosts, recoverFamily, defaultKurtosisLayers, summedKurtosis, KurtosisMode } from './direction';
export { Evaluation } from './evaluation';
export { renderGraph, toDot, toNewick, toMermaid, toSvg, toHtml, GraphFormat } from './render';
