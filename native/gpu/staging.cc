#include "staging.h"

#include <algorithm>
#include <cstring>

#include "../core/parallel.h"

namespace mother {

void Buffer::alloc(size_t bytes, const char* what) {
  reset();
  void* p = nullptr;
  g_.check(device_ ? g_.api().dev_alloc(g_.ctx(), bytes ? bytes : 1, &p) : g_.api().host_alloc(g_.ctx(), bytes ? bytes : 1, &p), what);
  p_ = static_cast<uint8_t*>(p);
}

void Buffer::reset() {
  if (!p_) return;
  if (device_) g_.api().dev_free(g_.ctx(), p_);
  else g_.api().host_free(g_.ctx(), p_);
  p_ = nullptr;
}

DrainOnExit::~DrainOnExit() {
  for (uint32_t s = 0; s < g.info().streams; ++s) g.api().sync(g.ctx(), s);
}

void stage(const std::vector<StageRange>& ranges, unsigned threads) {
  constexpr uint64_t kPart = 4ull << 20;
  std::vector<StageRange> parts;
  for (const StageRange& r : ranges) {
    const uint64_t step = r.view->elems_within(kPart);
    for (uint64_t e = 0; e < r.count; e += step)
      parts.push_back(StageRange{r.view, r.first + e, std::min(step, r.count - e),
                                 r.dst + (r.view->byte_offset(r.first + e) - r.view->byte_offset(r.first))});
  }
  parallel_for(parts.size(), threads, [&](size_t i) {
    const StageRange& p = parts[i];
    p.view->populate(p.first, p.count);
    std::memcpy(p.dst, p.view->data(p.first), p.view->byte_len(p.count));
    p.view->release(p.first, p.count);
  });
}

}  // namespace mother
