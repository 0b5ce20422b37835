// The statistics pass on a GPU backend (native/gpu/): the jobs of plan_scan, packed into
// staging slots and reduced on the device; the partials come back in job order and merge as on
// the CPU (merge_jobs), so the results do not depend on timing.
#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "../core/parallel.h"
#include "../gpu/gpu_backend.h"
#include "../gpu/staging.h"
#include "model_stats.h"

namespace mother {

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
  uint64_t packed = kStageAlign;
  for (const ScanJob& j : jobs) packed += align_up(j.bytes, kStageAlign);
  const uint64_t slot_bytes = std::min(std::max<uint64_t>(64ull << 20, align_up(chunk_bytes, kStageAlign) + kStageAlign), packed);
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
    std::vector<StageRange> ranges;
    uint64_t used = 0;
    while (next < jobs.size() && slot.jobs.size() < kMaxSegments) {
      const ScanJob& job = jobs[next];
      const uint64_t off = align_up(used, kStageAlign);
      if (!slot.jobs.empty() && off + job.bytes > slot_bytes) break;
      ranges.push_back(StageRange{&model.tensors[job.tensor], job.first, job.count, slot.host->get() + off});
      slot.jobs.push_back(next);
      offsets.push_back(off);
      used = off + job.bytes;
      ++next;
    }
    stage(ranges, threads);
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

}  // namespace mother
