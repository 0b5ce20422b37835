#include "model_stats.h"

#include <mutex>

#include "../core/error.h"
#include "../core/parallel.h"
#include "decode.h"
#include "dispatch.h"

namespace mother {

ScanPlan plan_scan(const Model& model, uint64_t chunk_bytes) {
  ScanPlan p;
  p.first_job.assign(model.tensors.size() + 1, 0);
  for (uint32_t t = 0; t < model.tensors.size(); ++t) {
    p.first_job[t] = p.jobs.size();
    const TensorView& v = model.tensors[t];
    if (!v.has_stats() || v.count == 0) continue;
    const uint64_t per_job = v.elems_within(chunk_bytes);
    for (uint64_t e = 0; e < v.count; e += per_job) {
      const uint64_t n = v.count - e < per_job ? v.count - e : per_job;
      p.jobs.push_back(ScanJob{t, e, n, v.byte_len(n)});
    }
    p.bytes_total += v.bytes;
    ++p.tensors_total;
  }
  p.first_job[model.tensors.size()] = p.jobs.size();
  return p;
}

std::vector<Summary> merge_jobs(const Model& model, const std::vector<size_t>& first_job,
                                const std::vector<Moments>& partial) {
  std::vector<Summary> out(model.tensors.size());
  for (uint32_t t = 0; t < model.tensors.size(); ++t) {
    if (!model.tensors[t].has_stats()) continue;
    Moments m;
    for (size_t j = first_job[t]; j < first_job[t + 1]; ++j) merge(m, partial[j]);
    out[t] = summarize(m);
  }
  return out;
}

std::vector<Summary> scan_model(const Model& model, const ScanOptions& options) {
  if (options.gpu && !needs_cpu_decode(model)) {  // GGUF blocks: CPU
    std::vector<Summary> out = scan_model_gpu(model, options);
    model.check_unchanged();
    return out;
  }
  const Kernels* kernels = options.kernels ? options.kernels : select_kernels("");
  const unsigned threads = resolve_threads(options.threads);
  const uint64_t chunk_bytes = options.chunk_bytes > 0 ? options.chunk_bytes : (16ull << 20);

  const ScanPlan plan = plan_scan(model, chunk_bytes);
  const auto& jobs = plan.jobs;
  const auto& first_job = plan.first_job;
  const uint64_t bytes_total = plan.bytes_total, tensors_total = plan.tensors_total;
  std::vector<uint32_t> jobs_left(model.tensors.size(), 0);
  for (const ScanJob& j : jobs) ++jobs_left[j.tensor];

  std::vector<Moments> partial(jobs.size());
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> tensors_done{0};
  std::vector<std::atomic<uint32_t>> remaining(model.tensors.size());
  for (size_t t = 0; t < remaining.size(); ++t) remaining[t].store(jobs_left[t]);
  std::mutex progress_mu;

  parallel_for(jobs.size(), threads, [&](size_t j) {
    check_cancel(options.cancel, "scan");
    const ScanJob& job = jobs[j];
    const TensorView& v = model.tensors[job.tensor];
    const uint64_t nbytes = job.bytes;
    v.populate(job.first, job.count);
    Moments m;  // local: neighbouring partials belong to other threads
    accumulate_view(kernels, v, job.first, job.count, &m);
    v.check_read();
    partial[j] = m;
    v.release(job.first, job.count);
    uint64_t done = bytes_done.fetch_add(nbytes) + nbytes;
    uint64_t tdone = tensors_done.load();
    if (remaining[job.tensor].fetch_sub(1) == 1) tdone = tensors_done.fetch_add(1) + 1;
    if (options.progress) {
      std::unique_lock<std::mutex> lock(progress_mu, std::try_to_lock);
      if (lock.owns_lock()) options.progress(ScanProgress{done, bytes_total, tdone, tensors_total});
    }
  });

  model.check_unchanged();
  std::vector<Summary> out = merge_jobs(model, first_job, partial);
  if (options.progress) options.progress(ScanProgress{bytes_total, bytes_total, tensors_total, tensors_total});
  return out;
}

}  // namespace mother
