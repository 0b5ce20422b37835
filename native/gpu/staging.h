// What the GPU passes (stats/model_stats_gpu.cc, pairwise/pairwise_gpu.cc) share besides the
// backend: buffers that free themselves, a drain before they are freed, and the staging copy.
//
// Both passes stream the memory-mapped tensors through page-locked staging buffers: worker
// threads copy (and then release) the mapped pages of the next slot while the device copies
// and reduces the previous ones, each slot on its own stream. Device memory is a few slots of
// bounded size, whatever the model size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../formats/tensor_view.h"
#include "gpu_backend.h"

namespace mother {

// Offsets of the ranges packed into one staging buffer are multiples of this: kernel input
// must be 16-byte aligned (gpu_api.h), and 256 is the alignment of device allocations.
constexpr uint64_t kStageAlign = 256;
inline uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// A host (page-locked) or device buffer, freed with its owner.
class Buffer {
 public:
  Buffer(GpuBackend& g, bool device) : g_(g), device_(device) {}
  ~Buffer() { reset(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void alloc(size_t bytes, const char* what);
  void reset();
  uint8_t* get() const { return p_; }

 private:
  GpuBackend& g_;
  bool device_;
  uint8_t* p_ = nullptr;
};

// Waits for every stream before the buffers of a pass are freed, also when the pass throws.
struct DrainOnExit {
  GpuBackend& g;
  ~DrainOnExit();
};

// Elements [first, first + count) of a tensor (first on a block boundary), to copy into a
// staging buffer at dst. logical: in the view's logical row order (through its row map, when
// it has one; first and count then whole rows but for the tensor's end), else as stored (the
// statistics pass: moments do not depend on the order).
struct StageRange {
  const TensorView* view;
  uint64_t first;
  uint64_t count;
  uint8_t* dst;
  bool logical = false;
};

// Copies the ranges on `threads` threads, each cut into parts of about 4 MiB (whole blocks):
// the mapped pages of a part are populated in one call, copied, and released, so the resident
// set stays bounded by the parts in flight.
void stage(const std::vector<StageRange>& ranges, unsigned threads);

}  // namespace mother
