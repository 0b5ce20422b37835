#include "pairwise.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "../core/error.h"
#include "../core/parallel.h"
#include "../stats/dispatch.h"

namespace mother {

bool decode_to_f64(DType d, const uint8_t* p, size_t n, double* out) {
  switch (d) {
    case DType::F64: std::memcpy(out, p, n * 8); break;
    case DType::F32:
      for (size_t i = 0; i < n; ++i) { float f; std::memcpy(&f, p + 4 * i, 4); out[i] = f; }
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); out[i] = f16_to_f32(h); }
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); out[i] = bf16_to_f32(h); }
      break;
    default: {
      float lut[256];
      for (int b = 0; b < 256; ++b) lut[b] = f8_to_f32(d, static_cast<uint8_t>(b));
      for (size_t i = 0; i < n; ++i) out[i] = lut[p[i]];
    }
  }
  // Non-finite check on the decoded values: (x - x) is NaN exactly for NaN and +-Inf.
  double probe = 0;
  for (size_t i = 0; i < n; ++i) probe += out[i] - out[i];
  return probe != 0 || std::isnan(probe);
}

namespace {

struct Job {
  uint32_t tensor;
  uint64_t first;  // flat element range [first, first + count)
  uint64_t count;
};

struct Partial {
  std::vector<double> acc;        // 4 per pair: sum_sq, sum_abs, max, min
  std::vector<double> skipped;    // per pair
};

// Slow path for a pair where either side holds NaN/Inf in this range.
void pair_diff_skipping(const double* a, const double* b, size_t n, double acc[4], double* skipped) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) { *skipped += 1; continue; }
    double d = a[i] - b[i];
    acc[0] += d * d;
    acc[1] += std::fabs(d);
    acc[2] = d > acc[2] ? d : acc[2];
    acc[3] = d < acc[3] ? d : acc[3];
  }
}

}  // namespace

PairwiseResult pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                        const PairwiseOptions& options) {
  const size_t n_models = models.size();
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  const Kernels* kernels = options.kernels ? options.kernels : select_kernels("");
  const uint64_t chunk = options.chunk_elems > 0 ? options.chunk_elems : 4096;

  // Resolve every planned tensor in every model, and check the plan against the headers.
  std::vector<std::unordered_map<std::string, TensorRef>> by_name(n_models);
  for (size_t m = 0; m < n_models; ++m)
    for (const auto& ref : models[m].tensors) by_name[m].emplace(models[m].info(ref).name, ref);
  std::vector<std::vector<const TensorRef*>> refs(plan.size(), std::vector<const TensorRef*>(n_models, nullptr));
  std::vector<Job> jobs;
  std::vector<size_t> first_job(plan.size() + 1, 0);
  uint64_t bytes_total = 0;
  for (uint32_t t = 0; t < plan.size(); ++t) {
    const PairPlanTensor& pt = plan[t];
    if (pt.rows.size() != n_models)
      throw Error(ErrorCode::InvalidArgument, "", pt.name, "pairwise plan: rows must have one entry per model");
    first_job[t] = jobs.size();
    uint64_t max_elems = 0;
    for (size_t m = 0; m < n_models; ++m) {
      if (pt.rows[m] < 0) continue;
      auto it = by_name[m].find(pt.name);
      const std::string& path = models[m].files.empty() ? std::string() : models[m].files[0].path();
      if (it == by_name[m].end())
        throw Error(ErrorCode::InvalidArgument, path, pt.name, "pairwise plan names a tensor the model does not have");
      const TensorInfo& info = models[m].info(it->second);
      uint64_t rows = info.shape.empty() ? 1 : info.shape[0];
      if (!dtype_has_stats(info.dtype) || static_cast<uint64_t>(pt.rows[m]) != rows ||
          (rows > 0 && info.count / rows != pt.row_elems))
        throw Error(ErrorCode::InvalidArgument, path, pt.name, "pairwise plan does not match the tensor's dtype or shape");
      refs[t][m] = &it->second;
      uint64_t elems = rows * pt.row_elems;
      max_elems = elems > max_elems ? elems : max_elems;
      bytes_total += info.end - info.begin;
    }
    for (uint64_t e = 0; e < max_elems; e += chunk)
      jobs.push_back(Job{t, e, max_elems - e < chunk ? max_elems - e : chunk});
  }
  first_job[plan.size()] = jobs.size();

  PairwiseResult result;
  result.tensors.resize(plan.size());
  for (auto& r : result.tensors) {
    r.sum_sq.assign(n_pairs, 0);
    r.sum_abs.assign(n_pairs, 0);
    r.max_diff.assign(n_pairs, -std::numeric_limits<double>::infinity());
    r.min_diff.assign(n_pairs, std::numeric_limits<double>::infinity());
    r.count.assign(n_pairs, 0);
    r.skipped.assign(n_pairs, 0);
  }
  result.bytes_read.assign(n_models, 0);

  // Ordered reduction: a tensor's job partials are folded in job order, so results do not
  // depend on the thread count. Out-of-order partials wait (at most ~threads of them).
  struct TensorState {
    std::mutex mu;
    std::vector<std::unique_ptr<Partial>> pending;
    size_t next = 0;
  };
  std::vector<TensorState> state(plan.size());
  for (size_t t = 0; t < plan.size(); ++t) state[t].pending.resize(first_job[t + 1] - first_job[t]);
  std::vector<std::atomic<uint64_t>> bytes_read(n_models);
  for (auto& b : bytes_read) b.store(0);
  std::atomic<uint64_t> bytes_done{0};
  std::mutex progress_mu;

  auto t0 = std::chrono::steady_clock::now();
  parallel_for(jobs.size(), resolve_threads(options.threads), [&](size_t j) {
    if (options.cancel && __atomic_load_n(options.cancel, __ATOMIC_RELAXED) != 0)
      throw Error(ErrorCode::Cancelled, "", "", "pairwise pass cancelled");
    const Job& job = jobs[j];
    const PairPlanTensor& pt = plan[job.tensor];
    thread_local std::vector<double> buf;
    thread_local std::vector<uint64_t> len;
    thread_local std::vector<uint8_t> bad;
    buf.resize(n_models * chunk);
    len.assign(n_models, 0);
    bad.assign(n_models, 0);
    uint64_t job_bytes = 0;
    for (size_t m = 0; m < n_models; ++m) {
      const TensorRef* ref = refs[job.tensor][m];
      if (!ref) continue;
      const TensorInfo& info = models[m].info(*ref);
      const uint64_t elems = static_cast<uint64_t>(pt.rows[m]) * pt.row_elems;
      if (elems <= job.first) continue;
      const uint64_t n = elems - job.first < job.count ? elems - job.first : job.count;
      const SafetensorsFile& file = models[m].files[ref->file];
      const uint64_t esize = dtype_bits(info.dtype) / 8;
      const uint64_t offset = file.header.data_start + info.begin + job.first * esize;
      file.map->populate(offset, n * esize);
      bad[m] = decode_to_f64(info.dtype, file.map->data() + offset, n, buf.data() + m * chunk);
      file.map->release(offset, n * esize);
      len[m] = n;
      bytes_read[m].fetch_add(n * esize, std::memory_order_relaxed);
      job_bytes += n * esize;
    }
    auto part = std::make_unique<Partial>();
    part->acc.resize(4 * n_pairs);
    part->skipped.assign(n_pairs, 0);
    for (size_t p = 0; p < n_pairs; ++p) {
      part->acc[4 * p + 0] = 0;
      part->acc[4 * p + 1] = 0;
      part->acc[4 * p + 2] = -std::numeric_limits<double>::infinity();
      part->acc[4 * p + 3] = std::numeric_limits<double>::infinity();
    }
    for (size_t i = 0; i < n_models; ++i) {
      if (!len[i]) continue;
      const double* a = buf.data() + i * chunk;
      for (size_t k = i + 1; k < n_models; ++k) {
        if (!len[k]) continue;
        const size_t n = static_cast<size_t>(len[i] < len[k] ? len[i] : len[k]);
        const size_t p = pair_index(i, k, n_models);
        if (bad[i] || bad[k]) pair_diff_skipping(a, buf.data() + k * chunk, n, &part->acc[4 * p], &part->skipped[p]);
        else kernels->pair_diff(a, buf.data() + k * chunk, n, &part->acc[4 * p]);
      }
    }
    {
      TensorState& st = state[job.tensor];
      std::lock_guard<std::mutex> lock(st.mu);
      st.pending[j - first_job[job.tensor]] = std::move(part);
      PairTensorResult& r = result.tensors[job.tensor];
      while (st.next < st.pending.size() && st.pending[st.next]) {
        const Partial& q = *st.pending[st.next];
        for (size_t p = 0; p < n_pairs; ++p) {
          r.sum_sq[p] += q.acc[4 * p];
          r.sum_abs[p] += q.acc[4 * p + 1];
          r.max_diff[p] = q.acc[4 * p + 2] > r.max_diff[p] ? q.acc[4 * p + 2] : r.max_diff[p];
          r.min_diff[p] = q.acc[4 * p + 3] < r.min_diff[p] ? q.acc[4 * p + 3] : r.min_diff[p];
          r.skipped[p] += q.skipped[p];
        }
        st.pending[st.next].reset();
        ++st.next;
      }
    }
    uint64_t done = bytes_done.fetch_add(job_bytes) + job_bytes;
    if (options.progress) {
      std::unique_lock<std::mutex> lock(progress_mu, std::try_to_lock);
      if (lock.owns_lock()) options.progress(PairwiseProgress{done, bytes_total});
    }
  });
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Positions compared: the rows both models have, less the skipped ones.
  for (size_t t = 0; t < plan.size(); ++t)
    for (size_t i = 0; i < n_models; ++i)
      for (size_t k = i + 1; k < n_models; ++k) {
        if (!refs[t][i] || !refs[t][k]) continue;
        const size_t p = pair_index(i, k, n_models);
        const uint64_t rows = static_cast<uint64_t>(plan[t].rows[i] < plan[t].rows[k] ? plan[t].rows[i] : plan[t].rows[k]);
        result.tensors[t].count[p] = static_cast<double>(rows * plan[t].row_elems) - result.tensors[t].skipped[p];
      }
  for (size_t m = 0; m < n_models; ++m) result.bytes_read[m] = bytes_read[m].load();
  if (options.progress) options.progress(PairwiseProgress{bytes_total, bytes_total});
  return result;
}

}  // namespace mother
