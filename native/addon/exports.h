// What the addon exports (init.cc registers them). One file per operation (op_*.cc), the
// test- and benchmark-only functions (testing.cc), the SIMD paths (simd.cc) and the lists the
// TypeScript side reads instead of copying them (layouts.cc).
#pragma once
#include <napi.h>

namespace mother_addon {

Napi::Value Scan(const Napi::CallbackInfo& info);
Napi::Value Inspect(const Napi::CallbackInfo& info);
Napi::Value RowHashes(const Napi::CallbackInfo& info);
Napi::Value SpectralEntropy(const Napi::CallbackInfo& info);
Napi::Value LoraProducts(const Napi::CallbackInfo& info);
Napi::Value DiffMomentsFn(const Napi::CallbackInfo& info);
Napi::Value Pairwise(const Napi::CallbackInfo& info);
Napi::Value GpuOpen(const Napi::CallbackInfo& info);

// formatOf(path) => string | null: the format whose reader claims the file (by name or
// magic), so that discovery asks the core instead of keeping its own list of extensions.
Napi::Value FormatOf(const Napi::CallbackInfo& info);

Napi::Value SimdPaths(const Napi::CallbackInfo& info);
Napi::Value SimdDefault(const Napi::CallbackInfo& info);

// { moments, pairDiff, pairDiff4, sumU64, plainRead, gram, pairDd, moments2, pairwiseRowMaps }
Napi::Object Testing(Napi::Env env);
// testing.pairwiseRowMaps(models, plan, options, [{model, tensor, map: Uint32Array}]): the
// pairwise operation with row maps set on the named views (no reader sets one yet).
Napi::Value PairwiseRowMaps(const Napi::CallbackInfo& info);

// [{ code: 'ERR_FILE_OPEN', kind: 'input' | 'usage' | 'runtime' | 'internal', what }]
Napi::Value ErrorCodes(Napi::Env env);
// { summary: ['count', 'mean', ...] }: the names of those slots, in order
Napi::Value Layouts(Napi::Env env);
// The rank sketch's seed when the caller gives none, a BigInt
Napi::Value DefaultSketchSeed(Napi::Env env);

}  // namespace mother_addon
