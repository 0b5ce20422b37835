// Per-model statistics: one streaming pass over every tensor of a model, all cores.
// Tensors are cut into chunks (jobs); each job folds its elements into a Moments value and
// then releases its pages, so the resident set is bounded by threads x chunk size, not by
// the model size. Partials are merged per tensor in chunk order, so results do not depend
// on the number of threads.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "../formats/tensor_view.h"
#include "kernels.h"
#include "summary.h"

namespace mother {

class GpuBackend;

struct ScanProgress {
  uint64_t bytes_done;
  uint64_t bytes_total;
  uint64_t tensors_done;
  uint64_t tensors_total;
};

struct ScanOptions {
  unsigned threads = 0;                 // 0: all cores
  const Kernels* kernels = nullptr;     // nullptr: select_kernels("")
  uint64_t chunk_bytes = 16ull << 20;
  // Called from worker threads, never concurrently, after each finished job.
  std::function<void(const ScanProgress&)> progress;
  const int32_t* cancel = nullptr;  // read atomically; non-zero: stop with Error(Cancelled)
  GpuBackend* gpu = nullptr;        // run the kernels on this device (native/gpu/); nullptr: the CPU
};

// One summary per Model::tensors entry, same order (tensors without statistics: the default
// summary, has_stats 0).
std::vector<Summary> scan_model(const Model& model, const ScanOptions& options);

// A model's statistics pass cut into jobs: element ranges of at most chunk_bytes of one
// tensor (whole blocks, at least one), in tensor order (tensors without statistics or
// elements get none). Shared by the CPU and GPU passes.
struct ScanJob {
  uint32_t tensor;  // index into Model::tensors
  uint64_t first;   // first element (on a block boundary)
  uint64_t count;   // elements
  uint64_t bytes;   // their bytes in the file
};
struct ScanPlan {
  std::vector<ScanJob> jobs;
  std::vector<size_t> first_job;  // per tensor, + 1 at the end: jobs [first_job[t], first_job[t + 1])
  uint64_t bytes_total = 0;
  uint64_t tensors_total = 0;
};
ScanPlan plan_scan(const Model& model, uint64_t chunk_bytes);

// Per tensor t, the summary of the merge of the job partials [first_job[t], first_job[t + 1])
// in job order (tensors without statistics: the default summary). Shared by the CPU and GPU
// passes.
std::vector<Summary> merge_jobs(const Model& model, const std::vector<size_t>& first_job,
                                     const std::vector<Moments>& partial);

// The same on options.gpu (model_stats_gpu.cc); scan_model calls it when gpu is set.
std::vector<Summary> scan_model_gpu(const Model& model, const ScanOptions& options);

}  // namespace mother
