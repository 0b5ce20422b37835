#include "model_stats.h"

#include <mutex>

#include "../core/error.h"
#include "../core/parallel.h"
#include "dispatch.h"

namespace mother {

ScanPlan plan_scan(const Model& model, uint64_t chunk_bytes) {
  ScanPlan p;
  p.first_job.assign(model.tensors.size() + 1, 0);
  for (uint32_t t = 0; t < model.tensors.size(); ++t) {
    p.first_job[t] = p.jobs.size();
    const TensorInfo& info = model.info(model.tensors[t]);
    if (!dtype_has_stats(info.dtype) || info.count == 0) continue;
    const uint64_t esize = dtype_bits(info.dtype) / 8;
    const uint64_t per_job = chunk_bytes / esize > 0 ? chunk_bytes / esize : 1;
    for (uint64_t e = 0; e < info.count; e += per_job) {
      const uint64_t n = info.count - e < per_job ? info.count - e : per_job;
      p.jobs.push_back(ScanJob{t, e, n, n * esize});
    }
    p.bytes_total += info.end - info.begin;
    ++p.tensors_total;
  }
  p.first_job[model.tensors.size()] = p.jobs.size();
  return p;
}

std::vector<Summary> merge_jobs(const Model& model, const std::vector<size_t>& first_job,
                                const std::vector<Moments>& partial) {
  std::vector<Summary> out(model.tensors.size());
  for (uint32_t t = 0; t < model.tensors.size(); ++t) {
    const TensorInfo& info = model.info(model.tensors[t]);
    if (!dtype_has_stats(info.dtype)) continue;
    Moments m;
    for (size_t j = first_job[t]; j < first_job[t + 1]; ++j) merge(m, partial[j]);
    out[t] = summarize(m);
  }
  return out;
}

std::vector<Summary> scan_model(const Model& model, const ScanOptions& options) {
  if (options.gpu) return scan_model_gpu(model, options);
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
    const TensorRef& ref = model.tensors[job.tensor];
    const SafetensorsFile& file = model.files[ref.file];
    const TensorInfo& info = model.info(ref);
    const uint64_t esize = dtype_bits(info.dtype) / 8;
    const uint8_t* p = file.tensor_data(info) + job.first * esize;
    const uint64_t nbytes = job.bytes;
    const uint64_t file_offset = file.header.data_start + info.begin + job.first * esize;
    file.map->populate(file_offset, nbytes);
    Moments m;
    switch (info.dtype) {
      case DType::F32: case DType::F64: case DType::F16: case DType::BF16:
        kernels->accumulate(info.dtype, p, job.count, &m);
        break;
      default:
        accumulate_f8(info.dtype, p, job.count, &m);
        break;
    }
    partial[j] = m;
    file.map->release(file_offset, nbytes);
    uint64_t done = bytes_done.fetch_add(nbytes) + nbytes;
    uint64_t tdone = tensors_done.load();
    if (remaining[job.tensor].fetch_sub(1) == 1) tdone = tensors_done.fetch_add(1) + 1;
    if (options.progress) {
      std::unique_lock<std::mutex> lock(progress_mu, std::try_to_lock);
      if (lock.owns_lock()) options.progress(ScanProgress{done, bytes_total, tdone, tensors_total});
    }
  });

  std::vector<Summary> out = merge_jobs(model, first_job, partial);
  if (options.progress) options.progress(ScanProgress{bytes_total, bytes_total, tensors_total, tensors_total});
  return out;
}

}  // namespace mother
