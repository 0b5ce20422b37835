#include "gpu_backend.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "../core/error.h"
#include "../core/parallel.h"
#include "../pairwise/pairwise.h"
#include "../stats/model_stats.h"

namespace mother {

// ---- loading --------------------------------------------------------------------------------

GpuBackend& GpuBackend::open(const std::string& library) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<GpuBackend>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(library);
  if (it != loaded.end()) return *it->second;
  auto fail = [&](const std::string& why) { return Error(ErrorCode::Backend, library, "", why); };
  if (library.empty()) throw fail("no GPU backend library (build one with `npm run build:cuda`)");
  // RTLD_LOCAL: the backend's symbols (and its static CUDA runtime) stay its own.
  void* h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    throw fail(std::string("cannot load the GPU backend library: ") + (e ? e : "unknown dlopen error"));
  }
  auto get = reinterpret_cast<mother_gpu_get_api_fn>(dlsym(h, "mother_gpu_get_api"));
  if (!get) {
    dlclose(h);
    throw fail("not a mother GPU backend (no symbol mother_gpu_get_api)");
  }
  const mother_gpu_api* api = get();
  if (!api || api->abi_version != MOTHER_GPU_ABI_VERSION || api->struct_size < sizeof(mother_gpu_api)) {
    const unsigned v = api ? api->abi_version : 0;
    dlclose(h);
    throw fail("GPU backend built for interface version " + std::to_string(v) + ", this addon needs " +
               std::to_string(MOTHER_GPU_ABI_VERSION) + ": rebuild it with `npm run build:cuda`");
  }
  char err[512] = {0};
  mother_gpu_ctx* ctx = nullptr;
  if (api->open(0, &ctx, err, sizeof(err)) != 0) {
    // The library stays loaded: unloading a CUDA runtime that has started is not safe.
    throw fail(err[0] ? err : "the GPU backend could not open a device");
  }
  std::unique_ptr<GpuBackend> b(new GpuBackend());
  b->library_ = library;
  b->handle_ = h;
  b->api_ = api;
  b->ctx_ = ctx;
  if (api->info(ctx, &b->info_) != 0) {
    std::string why = api->last_error(ctx);
    api->close(ctx);
    throw fail("cannot query the device: " + why);
  }
  if (b->info_.streams == 0) b->info_.streams = 1;
  GpuBackend& ref = *b;
  loaded.emplace(library, std::move(b));
  return ref;
}

void GpuBackend::check(int rc, const char* what, const std::string& file, const std::string& tensor) const {
  if (rc == 0) return;
  throw Error(ErrorCode::Backend, file, tensor,
              std::string(info_.backend) + " " + what + " failed: " + api_->last_error(ctx_));
}

namespace {

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static_assert(sizeof(Moments) == sizeof(mother_gpu_moments), "Moments layout");
Moments from_gpu(const mother_gpu_moments& g) {
  Moments m;
  std::memcpy(static_cast<void*>(&m), &g, sizeof(m));
  return m;
}

// Host (page-locked) and device buffers, freed with their owner.
class Buffer {
 public:
  Buffer(GpuBackend& g, bool device) : g_(g), device_(device) {}
  ~Buffer() { reset(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void alloc(size_t bytes, const char* what) {
    reset();
    void* p = nullptr;
    g_.check(device_ ? g_.api().dev_alloc(g_.ctx(), bytes ? bytes : 1, &p) : g_.api().host_alloc(g_.ctx(), bytes ? bytes : 1, &p), what);
    p_ = static_cast<uint8_t*>(p);
  }
  void reset() {
    if (!p_) return;
    if (device_) g_.api().dev_free(g_.ctx(), p_);
    else g_.api().host_free(g_.ctx(), p_);
    p_ = nullptr;
  }
  uint8_t* get() const { return p_; }

 private:
  GpuBackend& g_;
  bool device_;
  uint8_t* p_ = nullptr;
};

// Waits for every stream before the buffers of a pass are freed, also when the pass throws.
struct DrainOnExit {
  GpuBackend& g;
  ~DrainOnExit() {
    for (uint32_t s = 0; s < g.info().streams; ++s) g.api().sync(g.ctx(), s);
  }
};

// Elements [first, first + count) of a tensor, to copy into a staging buffer at dst.
struct Piece {
  const TensorView* view;
  uint64_t first;
  uint64_t count;
  uint8_t* dst;
};

// Copies the pieces on `threads` threads, each piece cut into parts of about 4 MiB (whole
// blocks): the mapped pages of a part are populated in one call, copied, and released (the
// resident set stays bounded).
void stage(std::vector<Piece>& pieces, unsigned threads) {
  constexpr uint64_t kPart = 4ull << 20;
  std::vector<Piece> parts;
  for (const Piece& p : pieces) {
    const uint64_t step = p.view->elems_within(kPart);
    for (uint64_t e = 0; e < p.count; e += step)
      parts.push_back(Piece{p.view, p.first + e, std::min(step, p.count - e),
                            p.dst + (p.view->byte_offset(p.first + e) - p.view->byte_offset(p.first))});
  }
  parallel_for(parts.size(), threads, [&](size_t i) {
    const Piece& p = parts[i];
    p.view->populate(p.first, p.count);
    std::memcpy(p.dst, p.view->data(p.first), p.view->byte_len(p.count));
    p.view->release(p.first, p.count);
  });
}

}  // namespace

// ---- per-model statistics -----------------------------------------------------------------

std::vector<Summary> scan_model_gpu(const Model& model, const ScanOptions& options) {
  GpuBackend& g = *options.gpu;
  std::lock_guard<std::mutex> lock(g.mutex());
  const mother_gpu_api& api = g.api();
  const unsigned threads = resolve_threads(options.threads);
  const uint64_t chunk_bytes = options.chunk_bytes > 0 ? options.chunk_bytes : (16ull << 20);

  const ScanPlan plan = plan_scan(model, chunk_bytes);
  const auto& jobs = plan.jobs;
  const uint64_t bytes_total = plan.bytes_total, tensors_total = plan.tensors_total;

  // Slots: a staging buffer packed with whole jobs (small tensors share one transfer), its
  // device copy, and one Moments per job back.
  constexpr size_t kMaxSegments = 4096;
  // 64 MiB (or one job), less for a small model: the whole model then fits one slot.
  uint64_t packed = 256;
  for (const ScanJob& j : jobs) packed += align_up(j.bytes, 256);
  const uint64_t slot_bytes = std::min(std::max<uint64_t>(64ull << 20, align_up(chunk_bytes, 256) + 256), packed);
  const unsigned n_slots = std::min<unsigned>(3, g.info().streams);
  struct Slot {
    std::unique_ptr<Buffer> host, dev, out_host, out_dev;
    std::vector<size_t> jobs;
  };
  std::vector<Slot> slots(n_slots);
  for (auto& s : slots) {
    s.host.reset(new Buffer(g, false));
    s.dev.reset(new Buffer(g, true));
    s.out_host.reset(new Buffer(g, false));
    s.out_dev.reset(new Buffer(g, true));
    s.host->alloc(slot_bytes, "staging buffer allocation");
    s.dev->alloc(slot_bytes, "device buffer allocation");
    s.out_host->alloc(kMaxSegments * sizeof(mother_gpu_moments), "result buffer allocation");
    s.out_dev->alloc(kMaxSegments * sizeof(mother_gpu_moments), "device result buffer allocation");
  }
  DrainOnExit drain{g};

  std::vector<Moments> partial(jobs.size());
  std::vector<uint32_t> jobs_left(model.tensors.size(), 0);
  for (const ScanJob& j : jobs) ++jobs_left[j.tensor];
  uint64_t bytes_done = 0, tensors_done = 0;
  std::deque<unsigned> inflight;
  auto harvest = [&]() {
    const unsigned s = inflight.front();
    inflight.pop_front();
    g.check(api.sync(g.ctx(), s), "statistics pass", model.files.empty() ? "" : model.files[0].path());
    const auto* out = reinterpret_cast<const mother_gpu_moments*>(slots[s].out_host->get());
    for (size_t i = 0; i < slots[s].jobs.size(); ++i) {
      const ScanJob& job = jobs[slots[s].jobs[i]];
      partial[slots[s].jobs[i]] = from_gpu(out[i]);
      bytes_done += job.bytes;
      if (--jobs_left[job.tensor] == 0) ++tensors_done;
    }
    if (options.progress) options.progress(ScanProgress{bytes_done, bytes_total, tensors_done, tensors_total});
  };

  size_t next = 0;
  unsigned s = 0;
  while (next < jobs.size()) {
    check_cancel(options.cancel, "scan");
    if (inflight.size() == n_slots) harvest();  // the oldest is slot s
    Slot& slot = slots[s];
    slot.jobs.clear();
    std::vector<uint64_t> offsets;
    std::vector<Piece> pieces;
    uint64_t used = 0;
    while (next < jobs.size() && slot.jobs.size() < kMaxSegments) {
      const ScanJob& job = jobs[next];
      const uint64_t off = align_up(used, 256);
      if (!slot.jobs.empty() && off + job.bytes > slot_bytes) break;
      pieces.push_back(Piece{&model.tensors[job.tensor], job.first, job.count, slot.host->get() + off});
      slot.jobs.push_back(next);
      offsets.push_back(off);
      used = off + job.bytes;
      ++next;
    }
    stage(pieces, threads);
    g.check(api.upload(g.ctx(), s, slot.dev->get(), slot.host->get(), used), "copy to the device");
    auto* out_dev = reinterpret_cast<mother_gpu_moments*>(slot.out_dev->get());
    for (size_t i = 0; i < slot.jobs.size(); ++i) {
      const ScanJob& job = jobs[slot.jobs[i]];
      const TensorView& v = model.tensors[job.tensor];
      g.check(api.moments(g.ctx(), s, static_cast<uint32_t>(v.dtype), slot.dev->get() + offsets[i], job.count, out_dev + i),
              "moments kernel", model.files[v.file].path(), v.name);
    }
    g.check(api.download(g.ctx(), s, slot.out_host->get(), out_dev, slot.jobs.size() * sizeof(mother_gpu_moments)),
            "copy from the device");
    inflight.push_back(s);
    s = (s + 1) % n_slots;
  }
  while (!inflight.empty()) harvest();

  std::vector<Summary> out = merge_jobs(model, plan.first_job, partial);
  if (options.progress) options.progress(ScanProgress{bytes_total, bytes_total, tensors_total, tensors_total});
  return out;
}

// ---- pairwise ---------------------------------------------------------------------------------

PairwiseResult pairwise_gpu(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                            const PairwiseOptions& options, const ResolvedPlan& resolved) {
  GpuBackend& g = *options.gpu;
  std::lock_guard<std::mutex> lock(g.mutex());
  const mother_gpu_api& api = g.api();
  const size_t n_models = models.size();
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  const unsigned threads = resolve_threads(options.threads);
  const unsigned k = options.sketch_k > 0 ? options.sketch_k : 64;
  const auto& refs = resolved.refs;
  auto t0 = std::chrono::steady_clock::now();

  // Jobs: flat element ranges of one tensor, as on the CPU but larger (the device wants big
  // transfers): about 32M elements per job in all, 64K..4M per model.
  const uint64_t auto_job = std::min<uint64_t>(4ull << 20, std::max<uint64_t>(1ull << 16, (32ull << 20) / (n_models ? n_models : 1)));
  const uint64_t job_elems = options.job_elems ? options.job_elems : auto_job;
  struct Job {
    uint32_t tensor;
    uint64_t first, count;
  };
  std::vector<Job> jobs;
  bool any_sketch = false;
  std::unordered_map<uint64_t, SketchBasis> bases;
  for (uint32_t t = 0; t < plan.size(); ++t) {
    const PairPlanTensor& pt = plan[t];
    uint64_t per_job = job_elems;
    if (pt.sketch) {
      any_sketch = true;
      per_job = std::max<uint64_t>(1, job_elems / pt.row_elems) * pt.row_elems;  // whole rows
      if (bases.find(pt.row_elems) == bases.end()) bases.emplace(pt.row_elems, make_basis(options.sketch_seed, pt.row_elems, k));
    }
    for (uint64_t e = 0; e < resolved.max_elems[t]; e += per_job)
      jobs.push_back(Job{t, e, std::min(per_job, resolved.max_elems[t] - e)});
  }
  // Elements of model m in a job (0 where it lacks the tensor or has fewer rows).
  auto avail = [&](const Job& job, size_t m) -> uint64_t {
    if (!refs[job.tensor][m]) return 0;
    const uint64_t elems = static_cast<uint64_t>(plan[job.tensor].rows[m]) * plan[job.tensor].row_elems;
    return elems <= job.first ? 0 : std::min(elems - job.first, job.count);
  };
  // Slot sizes: the largest job.
  const uint64_t lens_bytes = align_up(n_models * sizeof(uint64_t), 256);
  uint64_t raw_max = lens_bytes, job_max = 1;
  for (const Job& job : jobs) {
    uint64_t raw = lens_bytes;
    for (size_t m = 0; m < n_models; ++m) {
      const uint64_t a = avail(job, m);
      if (a) raw = align_up(raw, 256) + refs[job.tensor][m]->byte_len(a);
    }
    raw_max = std::max(raw_max, raw);
    job_max = std::max(job_max, job.count);
  }
  // Results back per job: pair sums, per-model moments, norms, sketches.
  const uint64_t out_pairs = n_pairs * 5 * sizeof(double);
  const uint64_t out_moments = align_up(out_pairs, 256);
  const uint64_t out_norms = out_moments + n_models * sizeof(mother_gpu_moments);
  const uint64_t out_sketch = align_up(out_norms + n_models * sizeof(double), 256);
  const uint64_t out_bytes = out_sketch + (any_sketch ? n_models * k * k * sizeof(double) : 0);

  // The sketch bases, on the device once.
  std::map<uint64_t, std::unique_ptr<Buffer>> psi_dev, omega_dev;
  std::vector<std::unique_ptr<Buffer>> staging_basis;
  for (auto& kv : bases) {
    const uint64_t bytes = kv.second.psi.size() * sizeof(double);
    auto up = [&](const std::vector<double>& v, std::map<uint64_t, std::unique_ptr<Buffer>>& dst) {
      std::unique_ptr<Buffer> host(new Buffer(g, false)), dev(new Buffer(g, true));
      host->alloc(bytes, "staging buffer allocation");
      dev->alloc(bytes, "device buffer allocation");
      std::memcpy(host->get(), v.data(), bytes);
      g.check(api.upload(g.ctx(), 0, dev->get(), host->get(), bytes), "copy to the device");
      dst[kv.first] = std::move(dev);
      staging_basis.push_back(std::move(host));
    };
    up(kv.second.psi, psi_dev);
    up(kv.second.omega, omega_dev);
  }
  g.check(api.sync(g.ctx(), 0), "copy to the device");
  staging_basis.clear();

  const unsigned n_slots = std::min<unsigned>(2, g.info().streams);
  struct Slot {
    std::unique_ptr<Buffer> host, dev, dec, out_host, out_dev;
    size_t job = 0;
    std::vector<uint64_t> avail;
  };
  std::vector<Slot> slots(n_slots);
  for (auto& s : slots) {
    s.host.reset(new Buffer(g, false));
    s.dev.reset(new Buffer(g, true));
    s.dec.reset(new Buffer(g, true));
    s.out_host.reset(new Buffer(g, false));
    s.out_dev.reset(new Buffer(g, true));
    s.host->alloc(raw_max, "staging buffer allocation");
    s.dev->alloc(raw_max, "device buffer allocation");
    s.dec->alloc(std::max<uint64_t>(1, n_models) * job_max * sizeof(double), "device buffer allocation");
    s.out_host->alloc(out_bytes, "result buffer allocation");
    s.out_dev->alloc(out_bytes, "device result buffer allocation");
  }
  DrainOnExit drain{g};

  PairwiseResult result = empty_result(plan.size(), n_models);
  PassTotals totals(plan.size());
  for (size_t t = 0; t < plan.size(); ++t) {
    if (plan[t].sketch) {
      totals.norms[t].assign(n_models, 0);
      totals.sketches[t].assign(n_models * k * k, 0);
    }
    if (plan[t].moments) totals.moments[t].assign(n_models, Moments{});
  }

  uint64_t bytes_done = 0;
  std::deque<unsigned> inflight;
  auto harvest = [&]() {
    const unsigned s = inflight.front();
    inflight.pop_front();
    Slot& slot = slots[s];
    const Job& job = jobs[slot.job];
    const PairPlanTensor& pt = plan[job.tensor];
    g.check(api.sync(g.ctx(), s), "pairwise pass", "", pt.name);
    const uint8_t* out = slot.out_host->get();
    const auto* pairs = reinterpret_cast<const double*>(out);
    PairTensorResult& r = result.tensors[job.tensor];
    for (size_t p = 0; p < n_pairs; ++p) {
      r.sum_sq[p] += pairs[5 * p];
      r.sum_abs[p] += pairs[5 * p + 1];
      r.max_diff[p] = pairs[5 * p + 2] > r.max_diff[p] ? pairs[5 * p + 2] : r.max_diff[p];
      r.min_diff[p] = pairs[5 * p + 3] < r.min_diff[p] ? pairs[5 * p + 3] : r.min_diff[p];
      r.skipped[p] += pairs[5 * p + 4];
    }
    const auto* mom = reinterpret_cast<const mother_gpu_moments*>(out + out_moments);
    const auto* norm2 = reinterpret_cast<const double*>(out + out_norms);
    const auto* sk = reinterpret_cast<const double*>(out + out_sketch);
    for (size_t m = 0; m < n_models; ++m) {
      if (!slot.avail[m]) continue;
      if (pt.moments) {
        merge(totals.moments[job.tensor][m], from_gpu(mom[m]));
      }
      if (pt.sketch) {
        totals.norms[job.tensor][m] += norm2[m];
        double* dst = &totals.sketches[job.tensor][m * k * k];
        for (size_t x = 0; x < static_cast<size_t>(k) * k; ++x) dst[x] += sk[m * k * k + x];
      }
      const uint64_t b = refs[job.tensor][m]->byte_len(slot.avail[m]);
      result.bytes_read[m] += b;
      bytes_done += b;
    }
    if (options.progress) options.progress(PairwiseProgress{bytes_done, resolved.bytes_total});
  };

  unsigned s = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    check_cancel(options.cancel, "pairwise pass");
    if (inflight.size() == n_slots) harvest();
    Slot& slot = slots[s];
    const Job& job = jobs[j];
    const PairPlanTensor& pt = plan[job.tensor];
    slot.job = j;
    slot.avail.assign(n_models, 0);
    auto* lens = reinterpret_cast<uint64_t*>(slot.host->get());
    std::vector<uint64_t> offsets(n_models, 0);
    std::vector<Piece> pieces;
    uint64_t used = lens_bytes, max_len = 0;
    for (size_t m = 0; m < n_models; ++m) {
      const uint64_t a = avail(job, m);
      slot.avail[m] = a;
      lens[m] = a;
      max_len = std::max(max_len, a);
      if (!a) continue;
      const TensorView* v = refs[job.tensor][m];
      offsets[m] = align_up(used, 256);
      pieces.push_back(Piece{v, job.first, a, slot.host->get() + offsets[m]});
      used = offsets[m] + v->byte_len(a);
    }
    stage(pieces, threads);
    g.check(api.upload(g.ctx(), s, slot.dev->get(), slot.host->get(), used), "copy to the device", "", pt.name);
    auto* dec = reinterpret_cast<double*>(slot.dec->get());
    uint8_t* out = slot.out_dev->get();
    for (size_t m = 0; m < n_models; ++m) {
      if (!slot.avail[m]) continue;
      const TensorView& v = *refs[job.tensor][m];
      const std::string& path = models[m].files[v.file].path();
      const auto dtype = static_cast<uint32_t>(v.dtype);
      const uint8_t* raw = slot.dev->get() + offsets[m];
      g.check(api.decode(g.ctx(), s, dtype, raw, slot.avail[m], dec + m * job_max,
                         pt.sketch ? reinterpret_cast<double*>(out + out_norms) + m : nullptr),
              "decode kernel", path, pt.name);
      if (pt.moments)
        g.check(api.moments(g.ctx(), s, dtype, raw, slot.avail[m], reinterpret_cast<mother_gpu_moments*>(out + out_moments) + m),
                "moments kernel", path, pt.name);
    }
    if (n_models >= 2)
      g.check(api.pairs(g.ctx(), s, dec, job_max, reinterpret_cast<const uint64_t*>(slot.dev->get()),
                        static_cast<uint32_t>(n_models), max_len, reinterpret_cast<double*>(out)),
              "pairs kernel", "", pt.name);
    if (pt.sketch) {
      const uint64_t n = pt.row_elems, r0 = job.first / n;
      const double* psi = reinterpret_cast<const double*>(psi_dev.at(n)->get()) + r0 * k;
      const double* omega = reinterpret_cast<const double*>(omega_dev.at(n)->get());
      for (size_t m = 0; m < n_models; ++m) {
        if (!slot.avail[m]) continue;
        g.check(api.sketch(g.ctx(), s, dec + m * job_max, slot.avail[m] / n, n, omega, psi, k,
                           reinterpret_cast<double*>(out + out_sketch) + m * k * k),
                "sketch kernel", "", pt.name);
      }
    }
    g.check(api.download(g.ctx(), s, slot.out_host->get(), out, out_bytes), "copy from the device", "", pt.name);
    inflight.push_back(s);
    s = (s + 1) % n_slots;
  }
  while (!inflight.empty()) harvest();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  finish_pairwise(models, plan, options, resolved, totals, result);
  if (options.progress) options.progress(PairwiseProgress{resolved.bytes_total, resolved.bytes_total});
  return result;
}

}  // namespace mother
