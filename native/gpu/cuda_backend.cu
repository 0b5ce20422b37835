// The CUDA backend: libmother_cuda.so, opened by the core with dlopen (native/gpu/gpu_backend.cc).
// Built by `npm run build:cuda` (CMake, -DMOTHER_CUDA=ON), linked against the static CUDA
// runtime so that a host needs only the NVIDIA driver. Compiled with --fmad=false: the kernels
// follow the decomposition of device_math.h exactly, and the CPU emulator reproduces them bit
// for bit (benchmarks/gpu/ checks it on a device).
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "device_math.h"
#include "gpu_api.h"

using namespace mother;
using namespace mother::gpu;

namespace {

constexpr unsigned kStreams = 4;
constexpr uint32_t kAnyDtype = 0xFFFFFFFFu;

struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
};

}  // namespace

struct mother_gpu_ctx {
  int device = 0;
  cudaStream_t streams[kStreams] = {};
  Scratch scratch[kStreams];
  std::string error;
};

namespace {

int fail(mother_gpu_ctx* ctx, const char* what, cudaError_t e) {
  ctx->error = std::string(what) + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
  return 1;
}
#define CHECK(ctx, what, call)                 \
  do {                                         \
    cudaError_t e_ = (call);                   \
    if (e_ != cudaSuccess) return fail(ctx, what, e_); \
  } while (0)

int enter(mother_gpu_ctx* ctx, uint32_t stream) {
  if (stream >= kStreams) {
    ctx->error = "stream " + std::to_string(stream) + " out of range";
    return 1;
  }
  CHECK(ctx, "cudaSetDevice", cudaSetDevice(ctx->device));
  return 0;
}

// Scratch memory of one stream, grown on demand (after the stream's work is done).
int scratch(mother_gpu_ctx* ctx, uint32_t stream, size_t bytes, void** out) {
  Scratch& s = ctx->scratch[stream];
  if (s.bytes < bytes) {
    CHECK(ctx, "cudaStreamSynchronize", cudaStreamSynchronize(ctx->streams[stream]));
    if (s.p) cudaFree(s.p);
    s.p = nullptr;
    s.bytes = 0;
    CHECK(ctx, "cudaMalloc (scratch)", cudaMalloc(&s.p, bytes));
    s.bytes = bytes;
  }
  *out = s.p;
  return 0;
}

// ---- warp and block reductions (the order device_math.h's butterfly emulates) ----------------

__device__ __forceinline__ double warp_sum(double v) {
  for (unsigned off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ double warp_max(double v) {
  for (unsigned off = kWarp / 2; off > 0; off /= 2) {
    const double o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o > v ? o : v;
  }
  return v;
}
__device__ __forceinline__ double warp_min(double v) {
  for (unsigned off = kWarp / 2; off > 0; off /= 2) {
    const double o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o < v ? o : v;
  }
  return v;
}
__device__ __forceinline__ unsigned long long warp_sum_u64(unsigned long long v) {
  for (unsigned off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <uint32_t D>
__device__ __forceinline__ double ld(uint32_t d, const void* src, uint64_t i) {
  return load(D == kAnyDtype ? d : D, src, i);
}

// ---- moments --------------------------------------------------------------------------------

template <uint32_t D>
__global__ void __launch_bounds__(kThreads) moments_kernel(uint32_t dtype, const void* src, uint64_t count,
                                                           Moments* partials) {
  // raw storage: __shared__ variables cannot have constructors
  __shared__ alignas(Moments) unsigned char warp_raw[kWarps * sizeof(Moments)];
  Moments* warp_acc = reinterpret_cast<Moments*>(warp_raw);
  const unsigned lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const uint64_t tiles = ceil_div(count, kTile);
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * kWarps;
  Moments acc;
  unsigned long long nan = 0, inf = 0;
  for (uint64_t tile = static_cast<uint64_t>(blockIdx.x) * kWarps + warp; tile < tiles; tile += stride) {
    const uint64_t base = tile * kTile;
    double v[kTileValues];
    bool ok[kTileValues];
    double cnt = 0, sum = 0;
#pragma unroll
    for (unsigned q = 0; q < kTileValues; ++q) {
      const uint64_t i = base + q * kWarp + lane;
      ok[q] = false;
      v[q] = 0;
      if (i < count) {
        const double x = ld<D>(dtype, src, i);
        if (is_finite(x)) {
          v[q] = x;
          ok[q] = true;
          cnt += 1;
          sum += x;
        } else if (x != x) {
          ++nan;
        } else {
          ++inf;
        }
      }
    }
    cnt = warp_sum(cnt);
    sum = warp_sum(sum);
    if (cnt == 0) continue;  // uniform across the warp
    const double mean = sum / cnt;
    LaneCentral c;
#pragma unroll
    for (unsigned q = 0; q < kTileValues; ++q)
      if (ok[q]) lane_central(c, v[q], mean);
    const Moments b = block_moments(cnt, mean, warp_sum(c.sd), warp_sum(c.sd2), warp_sum(c.sd3), warp_sum(c.sd4),
                                    warp_sum(c.sum_abs), warp_min(c.min), warp_max(c.max));
    merge(acc, b);
  }
  nan = warp_sum_u64(nan);
  inf = warp_sum_u64(inf);
  if (lane == 0) {
    acc.nan = nan;
    acc.inf = inf;
    warp_acc[warp] = acc;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    Moments m;
    for (unsigned w = 0; w < kWarps; ++w) merge(m, warp_acc[w]);
    partials[blockIdx.x] = m;
  }
}

__global__ void merge_moments_kernel(const Moments* partials, unsigned n, Moments* out) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  Moments m;
  for (unsigned b = 0; b < n; ++b) merge(m, partials[b]);
  *out = m;
}

// ---- decode ---------------------------------------------------------------------------------

template <uint32_t D>
__global__ void __launch_bounds__(kThreads) decode_kernel(uint32_t dtype, const void* src, uint64_t count, double* dst,
                                                          double* partials) {
  __shared__ double warp_s[kWarps];
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * kThreads;
  double s = 0;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x; i < count; i += stride) {
    const double x = ld<D>(dtype, src, i);
    dst[i] = x;
    if (is_finite(x)) s += x * x;
  }
  if (!partials) return;
  s = warp_sum(s);
  if (threadIdx.x % kWarp == 0) warp_s[threadIdx.x / kWarp] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (unsigned w = 0; w < kWarps; ++w) t += warp_s[w];
    partials[blockIdx.x] = t;
  }
}

__global__ void sum_kernel(const double* partials, unsigned n, double* out) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  double t = 0;
  for (unsigned b = 0; b < n; ++b) t += partials[b];
  *out = t;
}

// ---- pairs ----------------------------------------------------------------------------------

constexpr unsigned kPairSlots = kPairTile * kPairTile * kPairFields;  // 112

__global__ void __launch_bounds__(kThreads) pairs_kernel(const double* rows, uint64_t stride, const uint64_t* len,
                                                         uint32_t n_models, uint64_t max_len, double* scratch) {
  __shared__ double warp_v[kWarps][kPairSlots];
  const unsigned nb = static_cast<unsigned>(ceil_div(n_models, kPairTile));
  unsigned I, J;
  pair_tile_coords(blockIdx.y, nb, &I, &J);
  uint64_t la[kPairTile], lb[kPairTile];
#pragma unroll
  for (unsigned r = 0; r < kPairTile; ++r) {
    const unsigned i = I * kPairTile + r, j = J * kPairTile + r;
    la[r] = i < n_models ? len[i] : 0;
    lb[r] = j < n_models ? len[j] : 0;
  }
  PairAcc acc[kPairTile][kPairTile];
  const uint64_t step = static_cast<uint64_t>(gridDim.x) * kThreads;
  for (uint64_t e = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x; e < max_len; e += step) {
    double a[kPairTile], b[kPairTile];
#pragma unroll
    for (unsigned r = 0; r < kPairTile; ++r) {
      a[r] = e < la[r] ? rows[(I * kPairTile + r) * stride + e] : 0.0;
      b[r] = e < lb[r] ? rows[(J * kPairTile + r) * stride + e] : 0.0;
    }
#pragma unroll
    for (unsigned r = 0; r < kPairTile; ++r)
#pragma unroll
      for (unsigned c = 0; c < kPairTile; ++c)
        if (e < la[r] && e < lb[c] && (I < J || r < c)) pair_step(acc[r][c], a[r], b[c]);
  }
  const unsigned lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
#pragma unroll
  for (unsigned r = 0; r < kPairTile; ++r)
#pragma unroll
    for (unsigned c = 0; c < kPairTile; ++c) {
      const unsigned s = (r * kPairTile + c) * kPairFields;
      const double v0 = warp_sum(acc[r][c].sum_sq), v1 = warp_sum(acc[r][c].sum_abs), v2 = warp_max(acc[r][c].max),
                   v3 = warp_min(acc[r][c].min), v4 = warp_sum(acc[r][c].skipped), v5 = warp_sum(acc[r][c].sum_a),
                   v6 = warp_sum(acc[r][c].sum_b);
      if (lane == 0) {
        warp_v[warp][s + 0] = v0;
        warp_v[warp][s + 1] = v1;
        warp_v[warp][s + 2] = v2;
        warp_v[warp][s + 3] = v3;
        warp_v[warp][s + 4] = v4;
        warp_v[warp][s + 5] = v5;
        warp_v[warp][s + 6] = v6;
      }
    }
  __syncthreads();
  if (threadIdx.x < kPairSlots) {
    const unsigned slot = threadIdx.x, f = slot % kPairFields, rc = slot / kPairFields;
    const unsigned r = rc / kPairTile, c = rc % kPairTile;
    const unsigned i = I * kPairTile + r, j = J * kPairTile + c;
    if (i < j && j < n_models) {
      double v = warp_v[0][slot];
      for (unsigned w = 1; w < kWarps; ++w) v = pair_fold(f, v, warp_v[w][slot]);
      scratch[(pair_of(i, j, n_models) * kPairFields + f) * gridDim.x + blockIdx.x] = v;
    }
  }
}

__global__ void pairs_reduce_kernel(const double* scratch, uint64_t n_slots, unsigned blocks_x, double* out) {
  const uint64_t slot = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (slot >= n_slots) return;
  const unsigned f = static_cast<unsigned>(slot % kPairFields);
  const double* p = scratch + slot * blocks_x;
  double v = p[0];
  for (unsigned b = 1; b < blocks_x; ++b) v = pair_fold(f, v, p[b]);
  out[slot] = v;
}

// ---- pair_central ---------------------------------------------------------------------------

constexpr unsigned kCentralT2 = kCentralTile * kCentralTile;
constexpr unsigned kCentralSlots = kCentralT2 * kCentralFields;  // 28

__global__ void __launch_bounds__(kThreads) pair_central_kernel(const double* rows, uint64_t stride, const uint64_t* len,
                                                                uint32_t n_models, uint64_t max_len, const double* pairs,
                                                                double* scratch) {
  __shared__ double warp_v[kWarps][kCentralSlots];
  const unsigned nb = static_cast<unsigned>(ceil_div(n_models, kCentralTile));
  unsigned I, J;
  pair_tile_coords(blockIdx.y, nb, &I, &J);
  uint64_t la[kCentralTile], lb[kCentralTile];
#pragma unroll
  for (unsigned r = 0; r < kCentralTile; ++r) {
    const unsigned i = I * kCentralTile + r, j = J * kCentralTile + r;
    la[r] = i < n_models ? len[i] : 0;
    lb[r] = j < n_models ? len[j] : 0;
  }
  double cen[kCentralTile][kCentralTile][3];
#pragma unroll
  for (unsigned r = 0; r < kCentralTile; ++r)
#pragma unroll
    for (unsigned c = 0; c < kCentralTile; ++c) {
      const unsigned i = I * kCentralTile + r, j = J * kCentralTile + c;
      if (i < j && j < n_models) pair_centres(pairs + pair_of(i, j, n_models) * kPairFields, la[r], lb[c], cen[r][c]);
      else cen[r][c][0] = cen[r][c][1] = cen[r][c][2] = 0;
    }
  CentralAcc acc[kCentralTile][kCentralTile];
  const uint64_t step = static_cast<uint64_t>(gridDim.x) * kThreads;
  for (uint64_t e = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x; e < max_len; e += step) {
    double a[kCentralTile], b[kCentralTile];
#pragma unroll
    for (unsigned r = 0; r < kCentralTile; ++r) {
      a[r] = e < la[r] ? rows[(I * kCentralTile + r) * stride + e] : 0.0;
      b[r] = e < lb[r] ? rows[(J * kCentralTile + r) * stride + e] : 0.0;
    }
#pragma unroll
    for (unsigned r = 0; r < kCentralTile; ++r)
#pragma unroll
      for (unsigned c = 0; c < kCentralTile; ++c)
        if (e < la[r] && e < lb[c] && (I < J || r < c)) central_step(acc[r][c], a[r], b[c], cen[r][c]);
  }
  const unsigned lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
#pragma unroll
  for (unsigned r = 0; r < kCentralTile; ++r)
#pragma unroll
    for (unsigned c = 0; c < kCentralTile; ++c) {
      const unsigned s = (r * kCentralTile + c) * kCentralFields;
      const double v0 = warp_sum(acc[r][c].sa), v1 = warp_sum(acc[r][c].qa), v2 = warp_sum(acc[r][c].sb),
                   v3 = warp_sum(acc[r][c].qb), v4 = warp_sum(acc[r][c].sd), v5 = warp_sum(acc[r][c].qd),
                   v6 = warp_sum(acc[r][c].qds);
      if (lane == 0) {
        warp_v[warp][s + 0] = v0;
        warp_v[warp][s + 1] = v1;
        warp_v[warp][s + 2] = v2;
        warp_v[warp][s + 3] = v3;
        warp_v[warp][s + 4] = v4;
        warp_v[warp][s + 5] = v5;
        warp_v[warp][s + 6] = v6;
      }
    }
  __syncthreads();
  if (threadIdx.x < kCentralSlots) {
    const unsigned slot = threadIdx.x, f = slot % kCentralFields, rc = slot / kCentralFields;
    const unsigned r = rc / kCentralTile, c = rc % kCentralTile;
    const unsigned i = I * kCentralTile + r, j = J * kCentralTile + c;
    if (i < j && j < n_models) {
      double v = warp_v[0][slot];
      for (unsigned w = 1; w < kWarps; ++w) v = v + warp_v[w][slot];
      scratch[(pair_of(i, j, n_models) * kCentralFields + f) * gridDim.x + blockIdx.x] = v;
    }
  }
}

__global__ void central_reduce_kernel(const double* scratch, uint64_t n_slots, unsigned blocks_x, double* out) {
  const uint64_t slot = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (slot >= n_slots) return;
  const double* p = scratch + slot * blocks_x;
  double v = p[0];
  for (unsigned b = 1; b < blocks_x; ++b) v = v + p[b];
  out[slot] = v;
}

// ---- sketch ---------------------------------------------------------------------------------

// y (rows x k) = w (rows x n) omega (n x k). Block (32, 8): a 32 x 32 tile of y, 4 rows a thread.
__global__ void __launch_bounds__(kThreads) sketch_y_kernel(const double* w, uint64_t rows, uint64_t n,
                                                            const double* omega, uint32_t k, double* y) {
  __shared__ double wt[kGemmTile][kGemmTile + 1];
  __shared__ double ot[kGemmTile][kGemmTile + 1];
  const unsigned tx = threadIdx.x, ty = threadIdx.y;
  const uint64_t col = static_cast<uint64_t>(blockIdx.x) * kGemmTile + tx;
  const uint64_t row0 = static_cast<uint64_t>(blockIdx.y) * kGemmTile;
  double acc[4] = {0, 0, 0, 0};
  for (uint64_t k0 = 0; k0 < n; k0 += kGemmTile) {
    for (unsigned q = 0; q < 4; ++q) {
      const unsigned rr = ty + 8 * q;
      const uint64_t r = row0 + rr, kk = k0 + tx;
      wt[rr][tx] = (r < rows && kk < n) ? w[r * n + kk] : 0.0;
      const uint64_t ok = k0 + rr;
      ot[rr][tx] = (ok < n && col < k) ? omega[ok * k + col] : 0.0;
    }
    __syncthreads();
    const unsigned kmax = n - k0 < kGemmTile ? static_cast<unsigned>(n - k0) : kGemmTile;
    for (unsigned kk = 0; kk < kmax; ++kk)
#pragma unroll
      for (unsigned q = 0; q < 4; ++q) acc[q] += wt[ty + 8 * q][kk] * ot[kk][tx];
    __syncthreads();
  }
  for (unsigned q = 0; q < 4; ++q) {
    const uint64_t r = row0 + ty + 8 * q;
    if (r < rows && col < k) y[r * k + col] = acc[q];
  }
}

// z[slab] (k x k) = psi[slab rows]^T y[slab rows], slabs of kSketchSlab rows.
__global__ void __launch_bounds__(kThreads) sketch_z_kernel(const double* psi, const double* y, uint64_t rows, uint32_t k,
                                                            double* z) {
  __shared__ double pt[kGemmTile][kGemmTile + 1];
  __shared__ double yt[kGemmTile][kGemmTile + 1];
  const unsigned tx = threadIdx.x, ty = threadIdx.y;
  const uint64_t bcol = static_cast<uint64_t>(blockIdx.x) * kGemmTile + tx;
  const uint64_t arow0 = static_cast<uint64_t>(blockIdx.y) * kGemmTile;
  const uint64_t r_begin = static_cast<uint64_t>(blockIdx.z) * kSketchSlab;
  const uint64_t r_end = r_begin + kSketchSlab < rows ? r_begin + kSketchSlab : rows;
  double acc[4] = {0, 0, 0, 0};
  for (uint64_t r0 = r_begin; r0 < r_end; r0 += kGemmTile) {
    for (unsigned q = 0; q < 4; ++q) {
      const unsigned rr = ty + 8 * q;
      const uint64_t r = r0 + rr;
      const uint64_t a = arow0 + tx;
      pt[rr][tx] = (r < r_end && a < k) ? psi[r * k + a] : 0.0;
      yt[rr][tx] = (r < r_end && bcol < k) ? y[r * k + bcol] : 0.0;
    }
    __syncthreads();
    const unsigned rmax = r_end - r0 < kGemmTile ? static_cast<unsigned>(r_end - r0) : kGemmTile;
    for (unsigned rr = 0; rr < rmax; ++rr)
#pragma unroll
      for (unsigned q = 0; q < 4; ++q) acc[q] += pt[rr][ty + 8 * q] * yt[rr][tx];
    __syncthreads();
  }
  for (unsigned q = 0; q < 4; ++q) {
    const uint64_t a = arow0 + ty + 8 * q;
    if (a < k && bcol < k) z[static_cast<uint64_t>(blockIdx.z) * k * k + a * k + bcol] = acc[q];
  }
}

__global__ void sketch_sum_kernel(const double* z, uint64_t slabs, uint32_t k, double* out) {
  const uint64_t x = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const uint64_t kk = static_cast<uint64_t>(k) * k;
  if (x >= kk) return;
  double t = 0;
  for (uint64_t s = 0; s < slabs; ++s) t += z[s * kk + x];
  out[x] = t;
}

// ---- the API --------------------------------------------------------------------------------

int api_open(int device, mother_gpu_ctx** out, char* err, size_t cap) {
  auto say = [&](const std::string& m) {
    if (err && cap) std::snprintf(err, cap, "%s", m.c_str());
    return 1;
  };
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    // The static runtime loads the driver library itself; say plainly when there is none.
    void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!driver) return say("no NVIDIA driver on this machine (libcuda.so.1 not found)");
    dlclose(driver);
    int v = 0;
    cudaDriverGetVersion(&v);
    return say(std::string("no usable CUDA device: ") + cudaGetErrorString(e) + " (driver supports CUDA " +
               std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10) + ", runtime built for " +
               std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) + ")");
  }
  if (count == 0) return say("no CUDA device found");
  if (device < 0 || device >= count)
    return say("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " found)");
  auto* ctx = new mother_gpu_ctx();
  ctx->device = device;
  e = cudaSetDevice(device);
  for (unsigned s = 0; e == cudaSuccess && s < kStreams; ++s) e = cudaStreamCreateWithFlags(&ctx->streams[s], cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    say(std::string("cannot start CUDA on device ") + std::to_string(device) + ": " + cudaGetErrorString(e));
    for (unsigned s = 0; s < kStreams; ++s)
      if (ctx->streams[s]) cudaStreamDestroy(ctx->streams[s]);
    delete ctx;
    return 1;
  }
  *out = ctx;
  return 0;
}

void api_close(mother_gpu_ctx* ctx) {
  if (!ctx) return;
  cudaSetDevice(ctx->device);
  for (unsigned s = 0; s < kStreams; ++s) {
    if (ctx->streams[s]) {
      cudaStreamSynchronize(ctx->streams[s]);
      cudaStreamDestroy(ctx->streams[s]);
    }
    if (ctx->scratch[s].p) cudaFree(ctx->scratch[s].p);
  }
  delete ctx;
}

const char* api_last_error(mother_gpu_ctx* ctx) { return ctx ? ctx->error.c_str() : ""; }

int api_info(mother_gpu_ctx* ctx, mother_gpu_info* out) {
  if (enter(ctx, 0)) return 1;
  cudaDeviceProp p;
  CHECK(ctx, "cudaGetDeviceProperties", cudaGetDeviceProperties(&p, ctx->device));
  std::memset(out, 0, sizeof(*out));
  std::snprintf(out->backend, sizeof(out->backend), "cuda");
  std::snprintf(out->device, sizeof(out->device), "%s", p.name);
  out->cc_major = p.major;
  out->cc_minor = p.minor;
  out->multiprocessors = p.multiProcessorCount;
  out->memory_bytes = p.totalGlobalMem;
  cudaRuntimeGetVersion(&out->runtime_version);
  cudaDriverGetVersion(&out->driver_version);
  out->streams = kStreams;
  return 0;
}

int api_host_alloc(mother_gpu_ctx* ctx, size_t bytes, void** out) {
  if (enter(ctx, 0)) return 1;
  CHECK(ctx, "cudaHostAlloc", cudaHostAlloc(out, bytes, cudaHostAllocDefault));
  return 0;
}
void api_host_free(mother_gpu_ctx* ctx, void* p) {
  if (!p) return;
  cudaSetDevice(ctx->device);
  cudaFreeHost(p);
}
int api_dev_alloc(mother_gpu_ctx* ctx, size_t bytes, void** out) {
  if (enter(ctx, 0)) return 1;
  CHECK(ctx, "cudaMalloc", cudaMalloc(out, bytes));
  return 0;
}
void api_dev_free(mother_gpu_ctx* ctx, void* p) {
  if (!p) return;
  cudaSetDevice(ctx->device);
  cudaFree(p);
}
int api_upload(mother_gpu_ctx* ctx, uint32_t stream, void* dst, const void* src, size_t bytes) {
  if (enter(ctx, stream)) return 1;
  CHECK(ctx, "cudaMemcpyAsync (to device)", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->streams[stream]));
  return 0;
}
int api_download(mother_gpu_ctx* ctx, uint32_t stream, void* dst, const void* src, size_t bytes) {
  if (enter(ctx, stream)) return 1;
  CHECK(ctx, "cudaMemcpyAsync (to host)", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->streams[stream]));
  return 0;
}
int api_sync(mother_gpu_ctx* ctx, uint32_t stream) {
  if (enter(ctx, stream)) return 1;
  CHECK(ctx, "cudaStreamSynchronize", cudaStreamSynchronize(ctx->streams[stream]));
  return 0;
}

#define DISPATCH_DTYPE(dtype, KERNEL, grid, block, st, ...)                                   \
  switch (static_cast<DType>(dtype)) {                                                        \
    case DType::F64: KERNEL<static_cast<uint32_t>(DType::F64)><<<grid, block, 0, st>>>(__VA_ARGS__); break;   \
    case DType::F32: KERNEL<static_cast<uint32_t>(DType::F32)><<<grid, block, 0, st>>>(__VA_ARGS__); break;   \
    case DType::F16: KERNEL<static_cast<uint32_t>(DType::F16)><<<grid, block, 0, st>>>(__VA_ARGS__); break;   \
    case DType::BF16: KERNEL<static_cast<uint32_t>(DType::BF16)><<<grid, block, 0, st>>>(__VA_ARGS__); break; \
    default: KERNEL<kAnyDtype><<<grid, block, 0, st>>>(__VA_ARGS__); break;                     \
  }

int api_moments(mother_gpu_ctx* ctx, uint32_t stream, uint32_t dtype, const void* src, uint64_t count,
                mother_gpu_moments* out) {
  if (enter(ctx, stream)) return 1;
  const unsigned blocks = moments_blocks(count);
  void* s = nullptr;
  if (scratch(ctx, stream, blocks * sizeof(Moments), &s)) return 1;
  Moments* partials = static_cast<Moments*>(s);
  cudaStream_t st = ctx->streams[stream];
  DISPATCH_DTYPE(dtype, moments_kernel, blocks, kThreads, st, dtype, src, count, partials);
  CHECK(ctx, "moments kernel", cudaGetLastError());
  merge_moments_kernel<<<1, 1, 0, st>>>(partials, blocks, reinterpret_cast<Moments*>(out));
  CHECK(ctx, "moments merge kernel", cudaGetLastError());
  return 0;
}

int api_decode(mother_gpu_ctx* ctx, uint32_t stream, uint32_t dtype, const void* src, uint64_t count, double* dst,
               double* norm2) {
  if (enter(ctx, stream)) return 1;
  const unsigned blocks = decode_blocks(count);
  double* partials = nullptr;
  if (norm2) {
    void* s;
    if (scratch(ctx, stream, blocks * sizeof(double), &s)) return 1;
    partials = static_cast<double*>(s);
  }
  cudaStream_t st = ctx->streams[stream];
  DISPATCH_DTYPE(dtype, decode_kernel, blocks, kThreads, st, dtype, src, count, dst, partials);
  CHECK(ctx, "decode kernel", cudaGetLastError());
  if (norm2) {
    sum_kernel<<<1, 1, 0, st>>>(partials, blocks, norm2);
    CHECK(ctx, "decode sum kernel", cudaGetLastError());
  }
  return 0;
}

int api_pairs(mother_gpu_ctx* ctx, uint32_t stream, const double* rows, uint64_t stride, const uint64_t* len,
              uint32_t n_models, uint64_t max_len, double* out) {
  if (enter(ctx, stream)) return 1;
  if (n_models < 2) return 0;
  const unsigned bx = pairs_blocks_x(max_len), tiles = pair_model_tiles(n_models);
  if (tiles > 65535) {
    ctx->error = "too many models for one pairs launch (" + std::to_string(n_models) + ")";
    return 1;
  }
  const uint64_t slots = static_cast<uint64_t>(n_models) * (n_models - 1) / 2 * kPairFields;
  void* s = nullptr;
  if (scratch(ctx, stream, slots * bx * sizeof(double), &s)) return 1;
  double* sc = static_cast<double*>(s);
  cudaStream_t st = ctx->streams[stream];
  pairs_kernel<<<dim3(bx, tiles), kThreads, 0, st>>>(rows, stride, len, n_models, max_len, sc);
  CHECK(ctx, "pairs kernel", cudaGetLastError());
  pairs_reduce_kernel<<<static_cast<unsigned>(ceil_div(slots, kThreads)), kThreads, 0, st>>>(sc, slots, bx, out);
  CHECK(ctx, "pairs reduce kernel", cudaGetLastError());
  return 0;
}

int api_central(mother_gpu_ctx* ctx, uint32_t stream, const double* rows, uint64_t stride, const uint64_t* len,
                uint32_t n_models, uint64_t max_len, const double* pairs, double* out) {
  if (enter(ctx, stream)) return 1;
  if (n_models < 2) return 0;
  const unsigned bx = pairs_blocks_x(max_len), tiles = pair_model_tiles(n_models, kCentralTile);
  if (tiles > 65535) {
    ctx->error = "too many models for one pair_central launch (" + std::to_string(n_models) + ")";
    return 1;
  }
  const uint64_t slots = static_cast<uint64_t>(n_models) * (n_models - 1) / 2 * kCentralFields;
  void* s = nullptr;
  if (scratch(ctx, stream, slots * bx * sizeof(double), &s)) return 1;
  double* sc = static_cast<double*>(s);
  cudaStream_t st = ctx->streams[stream];
  pair_central_kernel<<<dim3(bx, tiles), kThreads, 0, st>>>(rows, stride, len, n_models, max_len, pairs, sc);
  CHECK(ctx, "pair_central kernel", cudaGetLastError());
  central_reduce_kernel<<<static_cast<unsigned>(ceil_div(slots, kThreads)), kThreads, 0, st>>>(sc, slots, bx, out);
  CHECK(ctx, "pair_central reduce kernel", cudaGetLastError());
  return 0;
}

int api_sketch(mother_gpu_ctx* ctx, uint32_t stream, const double* w, uint64_t rows, uint64_t n, const double* omega,
               const double* psi, uint32_t k, double* out) {
  if (enter(ctx, stream)) return 1;
  const uint64_t slabs = rows == 0 ? 1 : ceil_div(rows, kSketchSlab);
  const uint64_t kk = static_cast<uint64_t>(k) * k;
  if (ceil_div(rows, kGemmTile) > 65535 || slabs > 65535) {
    ctx->error = "sketch block too large (" + std::to_string(rows) + " rows)";
    return 1;
  }
  void* s = nullptr;
  if (scratch(ctx, stream, (rows * k + slabs * kk) * sizeof(double), &s)) return 1;
  double* y = static_cast<double*>(s);
  double* z = y + rows * k;
  cudaStream_t st = ctx->streams[stream];
  const unsigned kt = static_cast<unsigned>(ceil_div(k, kGemmTile));
  if (rows > 0) {
    sketch_y_kernel<<<dim3(kt, static_cast<unsigned>(ceil_div(rows, kGemmTile))), dim3(kGemmTile, 8), 0, st>>>(w, rows, n, omega, k, y);
    CHECK(ctx, "sketch kernel (w omega)", cudaGetLastError());
    sketch_z_kernel<<<dim3(kt, kt, static_cast<unsigned>(slabs)), dim3(kGemmTile, 8), 0, st>>>(psi, y, rows, k, z);
    CHECK(ctx, "sketch kernel (psi^T y)", cudaGetLastError());
  } else {
    CHECK(ctx, "cudaMemsetAsync", cudaMemsetAsync(z, 0, kk * sizeof(double), st));
  }
  sketch_sum_kernel<<<static_cast<unsigned>(ceil_div(kk, kThreads)), kThreads, 0, st>>>(z, rows == 0 ? 1 : slabs, k, out);
  CHECK(ctx, "sketch sum kernel", cudaGetLastError());
  return 0;
}

const mother_gpu_api kApi = {
    MOTHER_GPU_ABI_VERSION, sizeof(mother_gpu_api), api_open, api_close, api_last_error, api_info,
    api_host_alloc, api_host_free, api_dev_alloc, api_dev_free, api_upload, api_download, api_sync,
    api_moments, api_decode, api_pairs, api_sketch, api_central,
};

}  // namespace

static_assert(sizeof(Moments) == sizeof(mother_gpu_moments), "Moments layout");

extern "C" __attribute__((visibility("default"))) const mother_gpu_api* mother_gpu_get_api(void) { return &kApi; }
