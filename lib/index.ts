// Public library API.
export { resolveModel, discoverModels, discoverHfCache, defaultHfCache, ModelFiles, DiscoveredModel } from './io/discovery';
export { MotherError, MotherErrorCode } from './core/errors';
export { scanModel, ModelStats, TensorStats, ScanOptions, ScanProgress } from './io/model_stats';
export { inspectModel, ModelHeader } from './io/inspect';
export { simdPaths } from './core/simd';
export { resolveBackend, openGpu, gpuLibraryCandidates, BackendName, BackendUsed, GpuInfo } from './core/backend';
export { alignTensors, Alignment, AlignedTensor, LayerFilter, SkippedTensor } from './io/alignment';
export { pairwiseStats, aggregate, PairwiseStats, PairwiseOptions, LayerDistances, PairMetric, RankOptions } from './io/pairwise';
export { recover, evaluate, RecoverOptions, ModelGraph, GraphModel, GraphEdge, FamilyReport, ModelInput, DistanceMetric } from './recover';
export { wardLinkage, cutTree, autoFamilies, clusterFamilies, Linkage } from './method/clustering';
export { minimumArborescence, minimumArborescenceMatrix, Arborescence } from './method/arborescence';
export { edgeCosts, recoverFamily, defaultKurtosisLayers, summedKurtosis, KurtosisMode } from './method/direction';
export { Evaluation } from './method/evaluation';
export { renderGraph, toDot, toNewick, toMermaid, toSvg, toHtml, GraphFormat } from './output/render';
