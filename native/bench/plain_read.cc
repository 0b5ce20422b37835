#include "plain_read.h"

#include <atomic>
#include <chrono>
#include <memory>

#include "../core/mapped_file.h"
#include "../core/parallel.h"

namespace mother {

PlainReadResult plain_read(const std::vector<std::string>& paths, unsigned threads, const Kernels* kernels,
                           uint64_t chunk_bytes) {
  struct Job { size_t file; uint64_t offset, len; };
  std::vector<std::unique_ptr<MappedFile>> maps;
  std::vector<Job> jobs;
  PlainReadResult r;
  if (chunk_bytes == 0) chunk_bytes = 16ull << 20;
  for (size_t f = 0; f < paths.size(); ++f) {
    maps.push_back(std::make_unique<MappedFile>(paths[f]));
    const uint64_t size = maps.back()->size();
    for (uint64_t o = 0; o < size; o += chunk_bytes) jobs.push_back(Job{f, o, size - o < chunk_bytes ? size - o : chunk_bytes});
    r.bytes += size;
  }
  std::atomic<uint64_t> checksum{0};
  auto t0 = std::chrono::steady_clock::now();
  parallel_for(jobs.size(), resolve_threads(threads), [&](size_t j) {
    const Job& job = jobs[j];
    const MappedFile& m = *maps[job.file];
    m.populate(job.offset, job.len);
    checksum.fetch_add(kernels->sum_u64(m.data() + job.offset, job.len), std::memory_order_relaxed);
    m.release(job.offset, job.len);
  });
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.checksum = checksum.load();
  return r;
}

}  // namespace mother
