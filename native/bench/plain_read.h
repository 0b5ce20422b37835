// The "plain read" baseline of the benchmarks: read what the statistics pass reads (the same
// jobs of plan_scan, through the same tensor views: memory maps, chunking, threads and page
// release), doing nothing but an integer sum. Its speed is the ceiling the statistics pass is
// measured against.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../stats/kernels.h"

namespace mother {

struct PlainReadResult {
  uint64_t bytes = 0;
  uint64_t checksum = 0;
  double seconds = 0;
};

// Each path is a model of its own (benchmarks read sets of models that share tensor names).
PlainReadResult plain_read(const std::vector<std::string>& paths, unsigned threads, const Kernels* kernels,
                           uint64_t chunk_bytes);

}  // namespace mother
