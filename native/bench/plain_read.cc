#include "plain_read.h"

#include <atomic>
#include <chrono>

#include "../core/parallel.h"
#include "../formats/reader.h"
#include "../stats/model_stats.h"

namespace mother {

PlainReadResult plain_read(const std::vector<std::string>& paths, unsigned threads, const Kernels* kernels,
                           uint64_t chunk_bytes) {
  struct Job { const TensorView* view; uint64_t first, count, bytes; };
  std::vector<Model> models;
  models.reserve(paths.size());
  std::vector<Job> jobs;
  PlainReadResult r;
  if (chunk_bytes == 0) chunk_bytes = 16ull << 20;
  for (const auto& path : paths) {
    models.push_back(open_model({path}, ""));
    const Model& m = models.back();
    const ScanPlan plan = plan_scan(m, chunk_bytes);
    for (const ScanJob& j : plan.jobs) jobs.push_back(Job{&m.tensors[j.tensor], j.first, j.count, j.bytes});
    r.bytes += plan.bytes_total;
  }
  std::atomic<uint64_t> checksum{0};
  auto t0 = std::chrono::steady_clock::now();
  parallel_for(jobs.size(), resolve_threads(threads), [&](size_t j) {
    const Job& job = jobs[j];
    job.view->populate(job.first, job.count);
    checksum.fetch_add(kernels->sum_u64(job.view->data(job.first), job.bytes), std::memory_order_relaxed);
    job.view->release(job.first, job.count);
  });
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.checksum = checksum.load();
  return r;
}

}  // namespace mother
