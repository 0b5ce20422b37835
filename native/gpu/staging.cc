#include "staging.h"

#include <algorithm>
#include <cstring>

#include "../core/error.h"
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

namespace {

// Copies logical rows [first, first + count) of a view with a row map, row by row: the pages of
// the stored rows are populated and released around the copy.
void copy_rows(const StageRange& p) {
  const TensorView& v = *p.view;
  const uint64_t re = v.shape.empty() || v.shape[0] == 0 ? v.count : v.count / v.shape[0];
  const auto& map = *v.row_map;
  uint8_t* dst = p.dst;
  for (uint64_t e = 0; e < p.count;) {
    const uint64_t r = (p.first + e) / re, in_row = p.first + e - r * re, len = std::min(p.count - e, re - in_row);
    if (r >= map.size() || map[r] >= map.size())
      throw Error(ErrorCode::Internal, "", v.name, "row map of " + v.name + " does not cover row " + std::to_string(r));
    const uint64_t src = map[r] * re + in_row;
    v.populate(src, len);
    std::memcpy(dst, v.data(src), v.byte_len(len));
    v.release(src, len);
    dst += v.byte_len(len);
    e += len;
  }
}

}  // namespace

void stage(const std::vector<StageRange>& ranges, unsigned threads) {
  constexpr uint64_t kPart = 4ull << 20;
  std::vector<StageRange> parts;
  for (const StageRange& r : ranges) {
    if (r.logical && r.view->row_map) {  // parts of whole rows
      const uint64_t re = r.view->shape.empty() || r.view->shape[0] == 0 ? r.view->count : r.view->count / r.view->shape[0];
      const uint64_t rows = std::max<uint64_t>(1, r.view->elems_within(kPart) / (re ? re : 1));
      const uint64_t step = rows * (re ? re : 1);
      for (uint64_t e = 0; e < r.count; e += step)
        parts.push_back(StageRange{r.view, r.first + e, std::min(step, r.count - e),
                                   r.dst + (r.view->byte_offset(r.first + e) - r.view->byte_offset(r.first)), true});
      continue;
    }
    const uint64_t step = r.view->elems_within(kPart);
    for (uint64_t e = 0; e < r.count; e += step)
      parts.push_back(StageRange{r.view, r.first + e, std::min(step, r.count - e),
                                 r.dst + (r.view->byte_offset(r.first + e) - r.view->byte_offset(r.first))});
  }
  parallel_for(parts.size(), threads, [&](size_t i) {
    const StageRange& p = parts[i];
    if (p.logical && p.view->row_map) return copy_rows(p);
    p.view->populate(p.first, p.count);
    std::memcpy(p.dst, p.view->data(p.first), p.view->byte_len(p.count));
    p.view->release(p.first, p.count);
  });
}

}  // namespace mother
