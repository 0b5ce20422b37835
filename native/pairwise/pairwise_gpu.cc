// The pairwise pass on a GPU backend (native/gpu/): each job's ranges of every model are
// staged, decoded and compared on the device, and the job's partials come back in job order.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "../core/parallel.h"
#include "../gpu/device_math.h"
#include "../gpu/gpu_backend.h"
#include "../gpu/staging.h"
#include "../stats/dispatch.h"
#include "../stats/quant_grid.h"
#include "pair_plan.h"
#include "shift_null.h"

namespace mother {

PairwiseResult pairwise_gpu(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                            const PairwiseOptions& options, const ResolvedPlan& resolved) {
  GpuBackend& g = *options.gpu;
  std::lock_guard<std::mutex> lock(g.mutex());
  const mother_gpu_api& api = g.api();
  const size_t n_models = models.size();
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  const unsigned threads = resolve_threads(options.threads);
  const unsigned k = sketch_size(options);
  const auto& refs = resolved.refs;
  auto t0 = std::chrono::steady_clock::now();

  // Jobs: flat element ranges of one tensor, as on the CPU but larger (the device wants big
  // transfers): about 32M elements per job in all, 64K..4M per model; a job is worked whole
  // (no sub-chunks: sketch jobs are whole rows).
  const uint64_t auto_job = std::min<uint64_t>(4ull << 20, std::max<uint64_t>(1ull << 16, (32ull << 20) / (n_models ? n_models : 1)));
  const uint64_t job_elems = options.job_elems ? options.job_elems : auto_job;
  const std::vector<PairJob> jobs = plan_pair_jobs(plan, resolved, job_elems, 0).jobs;
  const std::map<uint64_t, SketchBasis> bases = make_bases(plan, options.sketch_seed, k);
  auto avail = [&](const PairJob& job, size_t m) { return elems_in_job(plan, resolved, job, m); };
  // Slot sizes: the largest job.
  const uint64_t lens_bytes = align_up(n_models * sizeof(uint64_t), kStageAlign);
  uint64_t raw_max = lens_bytes, job_max = 1;
  for (const PairJob& job : jobs) {
    uint64_t raw = lens_bytes;
    for (size_t m = 0; m < n_models; ++m) {
      const uint64_t a = avail(job, m);
      if (a) raw = align_up(raw, kStageAlign) + refs[job.tensor][m]->byte_len(a);
    }
    raw_max = std::max(raw_max, raw);
    job_max = std::max(job_max, job.count);
  }
  // Results back per job: pair sums (pairs()) and central sums (pair_central()), per-model
  // moments, norms, sketches.
  const uint64_t out_pairs = n_pairs * MOTHER_GPU_PAIR_FIELDS * sizeof(double);
  const uint64_t out_central = align_up(out_pairs, kStageAlign);
  const uint64_t out_moments = align_up(out_central + n_pairs * MOTHER_GPU_CENTRAL_FIELDS * sizeof(double), kStageAlign);
  const uint64_t out_norms = out_moments + n_models * sizeof(mother_gpu_moments);
  const uint64_t out_sketch = align_up(out_norms + n_models * sizeof(double), kStageAlign);
  const uint64_t out_bytes = out_sketch + (bases.empty() ? 0 : n_models * k * k * sizeof(double));

  // The sketch bases, on the device once.
  std::map<uint64_t, std::unique_ptr<Buffer>> psi_dev, omega_dev;
  std::vector<std::unique_ptr<Buffer>> staging_basis;
  for (const auto& kv : bases) {
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
    std::vector<double> grid;  // per model, kGridFields (host side)
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
  PassTotals totals(plan, n_models, k, false);

  uint64_t bytes_done = 0;
  std::deque<unsigned> inflight;
  std::vector<Moments> moments(n_models);
  // A job's pair partial in the CPU pass's layout (kPairFields per pair), from the device's
  // sums, and the shifted null computed on the host.
  std::vector<double> pairs(kPairFields * n_pairs);
  const Kernels* kernels = options.kernels ? options.kernels : select_kernels("");
  ShiftScratch shift;
  auto harvest = [&]() {
    const unsigned s = inflight.front();
    inflight.pop_front();
    Slot& slot = slots[s];
    const PairJob& job = jobs[slot.job];
    const PairPlanTensor& pt = plan[job.tensor];
    g.check(api.sync(g.ctx(), s), "pairwise pass", "", pt.name);
    const uint8_t* out = slot.out_host->get();
    if (pt.moments) {
      const auto* mom = reinterpret_cast<const mother_gpu_moments*>(out + out_moments);
      for (size_t m = 0; m < n_models; ++m) moments[m] = slot.avail[m] ? from_gpu(mom[m]) : Moments{};
    }
    init_pairs(pairs.data(), n_pairs);
    const auto* dp = reinterpret_cast<const double*>(out);
    const auto* dc = reinterpret_cast<const double*>(out + out_central);
    for (size_t i = 0; i < n_models; ++i)
      for (size_t j2 = i + 1; j2 < n_models; ++j2) {
        const size_t p = pair_index(i, j2, n_models);
        const double* x = dp + MOTHER_GPU_PAIR_FIELDS * p;
        const double* c = dc + MOTHER_GPU_CENTRAL_FIELDS * p;
        double* q = &pairs[kPairFields * p];
        if (!slot.avail[i] || !slot.avail[j2]) continue;
        q[kSumSq] = x[0], q[kSumAbs] = x[1], q[kMaxDiff] = x[2], q[kMinDiff] = x[3], q[kSkipped] = x[4];
        double cen[3];
        gpu::pair_centres(x, slot.avail[i], slot.avail[j2], cen);
        const double n = static_cast<double>(std::min(slot.avail[i], slot.avail[j2])) - x[4];
        if (n > 0)
          merge_pair_moments(q, n, cen[0] + c[0] / n, c[1] - c[0] * (c[0] / n), cen[1] + c[2] / n, c[3] - c[2] * (c[2] / n),
                             cen[2] + c[4] / n, c[5] - c[4] * (c[4] / n), c[6] - c[4] * ((c[0] + c[2]) / n));
      }
    if (options.relatedness) {
      std::vector<uint64_t> elems(n_models, 0);
      for (size_t m = 0; m < n_models; ++m)
        if (refs[job.tensor][m]) elems[m] = static_cast<uint64_t>(pt.rows[m]) * pt.row_elems;
      shift_windows(kernels, refs[job.tensor], elems, pt.row_elems, job.first, job.count, 0, pairs.data(), shift);
    }
    const PairPartial q{pairs.data(), pt.sketch ? reinterpret_cast<const double*>(out + out_norms) : nullptr,
                        pt.sketch ? reinterpret_cast<const double*>(out + out_sketch) : nullptr, pt.moments ? moments.data() : nullptr,
                        slot.grid.data()};
    fold_partial(plan, resolved, job, q, totals, result);
    for (size_t m = 0; m < n_models; ++m) {
      if (!slot.avail[m]) continue;
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
    const PairJob& job = jobs[j];
    const PairPlanTensor& pt = plan[job.tensor];
    slot.job = j;
    slot.avail.assign(n_models, 0);
    auto* lens = reinterpret_cast<uint64_t*>(slot.host->get());
    std::vector<uint64_t> offsets(n_models, 0);
    std::vector<StageRange> ranges;
    uint64_t used = lens_bytes, max_len = 0;
    for (size_t m = 0; m < n_models; ++m) {
      const uint64_t a = avail(job, m);
      slot.avail[m] = a;
      lens[m] = a;
      max_len = std::max(max_len, a);
      if (!a) continue;
      const TensorView* v = refs[job.tensor][m];
      offsets[m] = align_up(used, kStageAlign);
      ranges.push_back(StageRange{v, job.first, a, slot.host->get() + offsets[m], true});
      used = offsets[m] + v->byte_len(a);
    }
    stage(ranges, threads);
    // the quantisation grids on the host, from the staged bytes (the same blocks as on the CPU)
    slot.grid.assign(n_models * kGridFields, 0);
    for (size_t m = 0; m < n_models; ++m) {
      const TensorView* v = refs[job.tensor][m];
      if (slot.avail[m] && !v->row_map)
        sample_grid(kernels, *v, slot.host->get() + offsets[m], job.first, slot.avail[m], &slot.grid[m * kGridFields]);
    }
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
    if (n_models >= 2) {
      const auto* lens_dev = reinterpret_cast<const uint64_t*>(slot.dev->get());
      g.check(api.pairs(g.ctx(), s, dec, job_max, lens_dev, static_cast<uint32_t>(n_models), max_len, reinterpret_cast<double*>(out)),
              "pairs kernel", "", pt.name);
      g.check(api.pair_central(g.ctx(), s, dec, job_max, lens_dev, static_cast<uint32_t>(n_models), max_len,
                               reinterpret_cast<const double*>(out), reinterpret_cast<double*>(out + out_central)),
              "pair_central kernel", "", pt.name);
    }
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

  for (const Model& m : models) m.check_unchanged();
  finish_pairwise(models, plan, options, resolved, totals, result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();  // the SVDs included
  if (options.progress) options.progress(PairwiseProgress{resolved.bytes_total, resolved.bytes_total});
  return result;
}

}  // namespace mother
