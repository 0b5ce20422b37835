// Public library API. The pipeline, numbered the same way in every file header:
//   stage 1, read: discovery (io/discovery.ts) and headers (io/inspect.ts);
//   stage 2, per-model statistics (io/model_stats.ts; recover takes the kurtosis from the
//            stage 3 read);
//   stage 3, pairwise evidence: alignment (io/alignment.ts), distances and ranks (io/pairwise.ts);
//   stage 4, families: the relatedness test (method/relatedness.ts), components or Ward
//            (method/clustering.ts);
//   stage 5, direction and tree: edge costs (method/direction.ts), arborescence
//            (method/arborescence.ts);
// then evaluation (method/evaluation.ts, recover's evaluate) and output (output/, cli/).
// recover.ts runs stages 1 to 5; core/ is under every stage; method/matrix.ts holds the
// helpers of stages 3 to 5.
export { resolveModel, discoverModels, discoverHfCache, resolveHubId, defaultHfCache, ModelFiles, DiscoveredModel, HfCacheOptions, DiscoveryOptions, DiscoverySkip, SkipKind, WeightFormat, SetAside, PREFERENCE } from './io/discovery';
export { MotherError, MotherErrorCode } from './core/errors';
export { scanModel, ModelStats, TensorStats, ScanOptions, ScanProgress } from './io/model_stats';
export { Dequantized, inspectModel, ModelHeader } from './io/inspect';
export { simdPaths } from './core/simd';
export { resolveBackend, openGpu, gpuLibraryCandidates, BackendName, BackendUsed, GpuInfo } from './core/backend';
export { alignTensors, Alignment, AlignedTensor, LayerFilter, SkippedTensor } from './io/alignment';
export { pairwiseStats, aggregate, PairwiseStats, PairwiseOptions, LayerDistances, PairMetric, RankOptions, QuantGrid } from './io/pairwise';
export { recover, evaluate, graphEvaluation, related, GraphEvaluation, RecoverOptions, RecoverMetric, ModelGraph, GraphModel, GraphEdge, FamilyReport, ModelInput, DistanceMetric, PairLink, PairEvidence, RelatednessGroup, RelatedOptions, RelatedResult, RelatedLayer, TruthInput } from './recover';
export { wardLinkage, cutTree, autoFamilies, clusterFamilies, relatedFamilies, weakestLink, Linkage } from './method/clustering';
export { pairStatistic, testPairs, decide, measureNull, TensorSums, PairStatistic, PairDecision, NullCalibration, Verdict, RELATEDNESS_ALPHA, RELATED_R0 } from './method/relatedness';
export { chooseMetric, chooseKurtosisLayers } from './method/choices';
export { minimumArborescence, minimumArborescenceMatrix, Arborescence } from './method/arborescence';
export { edgeCosts, recoverFamily, defaultKurtosisLayers, summedKurtosis, KurtosisMode } from './method/direction';
export { Evaluation, familyAgreement, FamilyAgreement } from './method/evaluation';
export { renderGraph, toDot, toNewick, toMermaid, toSvg, toHtml, GraphFormat } from './output/render';
