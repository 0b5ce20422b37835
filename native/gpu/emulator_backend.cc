// The device emulator: libmother_gpu_emulator.so, the backend interface of gpu_api.h run on the
// CPU. It follows the CUDA kernels' decomposition step for step (which thread takes which
// element, the warp butterflies, the order in which block and launch partials meet), so its
// results equal the GPU's bit for bit (both are built without fused multiply-add). "Device"
// memory is host memory and every call completes before it returns.
//
// It exists for testing: the host side of the GPU path (library loading, staging, packing,
// ordering, merging, errors) runs in CI on machines without a GPU, against this library, and
// on a device benchmarks/gpu/ compares it with libmother_cuda.so.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "device_math.h"
#include "gpu_api.h"

using namespace mother;
using namespace mother::gpu;

struct mother_gpu_ctx {
  std::string error;
};

namespace {

constexpr unsigned kStreams = 4;

int check_stream(mother_gpu_ctx* ctx, uint32_t stream) {
  if (stream < kStreams) return 0;
  ctx->error = "stream " + std::to_string(stream) + " out of range";
  return 1;
}

double sum_op(double a, double b) { return a + b; }
double max_op(double a, double b) { return b > a ? b : a; }  // as warp_max: o > v ? o : v
double min_op(double a, double b) { return b < a ? b : a; }

// ---- moments, as moments_kernel + merge_moments_kernel ------------------------------------------

Moments emulate_moments(uint32_t dtype, const void* src, uint64_t count) {
  const unsigned blocks = moments_blocks(count);
  const uint64_t tiles = ceil_div(count, kTile);
  const uint64_t stride = static_cast<uint64_t>(blocks) * kWarps;
  Moments total;
  for (unsigned bx = 0; bx < blocks; ++bx) {
    Moments warp_acc[kWarps];
    for (unsigned w = 0; w < kWarps; ++w) {
      Moments acc;
      uint64_t nan[kWarp] = {}, inf[kWarp] = {};
      for (uint64_t tile = static_cast<uint64_t>(bx) * kWarps + w; tile < tiles; tile += stride) {
        const uint64_t base = tile * kTile;
        double v[kWarp][kTileValues];
        bool ok[kWarp][kTileValues];
        double cnt[kWarp], sum[kWarp];
        for (unsigned l = 0; l < kWarp; ++l) {
          cnt[l] = 0;
          sum[l] = 0;
          for (unsigned q = 0; q < kTileValues; ++q) {
            const uint64_t i = base + q * kWarp + l;
            ok[l][q] = false;
            v[l][q] = 0;
            if (i >= count) continue;
            const double x = load(dtype, src, i);
            if (is_finite(x)) {
              v[l][q] = x;
              ok[l][q] = true;
              cnt[l] += 1;
              sum[l] += x;
            } else if (x != x) {
              ++nan[l];
            } else {
              ++inf[l];
            }
          }
        }
        butterfly(cnt, sum_op);
        butterfly(sum, sum_op);
        if (cnt[0] == 0) continue;
        const double mean = sum[0] / cnt[0];
        double sd[kWarp], sd2[kWarp], sd3[kWarp], sd4[kWarp], sabs[kWarp], mn[kWarp], mx[kWarp];
        for (unsigned l = 0; l < kWarp; ++l) {
          LaneCentral c;
          for (unsigned q = 0; q < kTileValues; ++q)
            if (ok[l][q]) lane_central(c, v[l][q], mean);
          sd[l] = c.sd, sd2[l] = c.sd2, sd3[l] = c.sd3, sd4[l] = c.sd4, sabs[l] = c.sum_abs, mn[l] = c.min, mx[l] = c.max;
        }
        butterfly(sd, sum_op), butterfly(sd2, sum_op), butterfly(sd3, sum_op), butterfly(sd4, sum_op);
        butterfly(sabs, sum_op), butterfly(mn, min_op), butterfly(mx, max_op);
        merge(acc, block_moments(cnt[0], mean, sd[0], sd2[0], sd3[0], sd4[0], sabs[0], mn[0], mx[0]));
      }
      for (unsigned l = 0; l < kWarp; ++l) acc.nan += nan[l], acc.inf += inf[l];
      warp_acc[w] = acc;
    }
    Moments m;
    for (unsigned w = 0; w < kWarps; ++w) merge(m, warp_acc[w]);
    merge(total, m);
  }
  return total;
}

// ---- decode, as decode_kernel + sum_kernel ----------------------------------------------------

void emulate_decode(uint32_t dtype, const void* src, uint64_t count, double* dst, double* norm2) {
  const unsigned blocks = decode_blocks(count);
  const uint64_t stride = static_cast<uint64_t>(blocks) * kThreads;
  double total = 0;
  for (unsigned bx = 0; bx < blocks; ++bx) {
    double block = 0;
    for (unsigned w = 0; w < kWarps; ++w) {
      double s[kWarp];
      for (unsigned l = 0; l < kWarp; ++l) {
        s[l] = 0;
        for (uint64_t i = static_cast<uint64_t>(bx) * kThreads + w * kWarp + l; i < count; i += stride) {
          const double x = load(dtype, src, i);
          dst[i] = x;
          if (is_finite(x)) s[l] += x * x;
        }
      }
      butterfly(s, sum_op);
      block += s[0];
    }
    total += block;
  }
  if (norm2) *norm2 = total;
}

// ---- pairs, as pairs_kernel + pairs_reduce_kernel -------------------------------------------

void emulate_pairs(const double* rows, uint64_t stride, const uint64_t* len, uint32_t n_models, uint64_t max_len,
                   double* out) {
  if (n_models < 2) return;
  const unsigned bx_count = pairs_blocks_x(max_len), tiles = pair_model_tiles(n_models);
  const unsigned nb = static_cast<unsigned>(ceil_div(n_models, kPairTile));
  const uint64_t n_pairs = static_cast<uint64_t>(n_models) * (n_models - 1) / 2;
  std::vector<double> scratch(n_pairs * kPairFields * bx_count);
  const uint64_t step = static_cast<uint64_t>(bx_count) * kThreads;
  for (unsigned tile = 0; tile < tiles; ++tile) {
    unsigned I, J;
    pair_tile_coords(tile, nb, &I, &J);
    uint64_t la[kPairTile], lb[kPairTile];
    for (unsigned r = 0; r < kPairTile; ++r) {
      const unsigned i = I * kPairTile + r, j = J * kPairTile + r;
      la[r] = i < n_models ? len[i] : 0;
      lb[r] = j < n_models ? len[j] : 0;
    }
    for (unsigned bx = 0; bx < bx_count; ++bx) {
      // per warp, per lane: the 16 pair accumulators
      std::vector<double> warp_v(kWarps * kPairTile * kPairTile * kPairFields);
      for (unsigned w = 0; w < kWarps; ++w) {
        std::vector<PairAcc> acc(kWarp * kPairTile * kPairTile);
        for (unsigned l = 0; l < kWarp; ++l) {
          for (uint64_t e = static_cast<uint64_t>(bx) * kThreads + w * kWarp + l; e < max_len; e += step) {
            for (unsigned r = 0; r < kPairTile; ++r)
              for (unsigned c = 0; c < kPairTile; ++c)
                if (e < la[r] && e < lb[c] && (I < J || r < c))
                  pair_step(acc[(l * kPairTile + r) * kPairTile + c], rows[(I * kPairTile + r) * stride + e],
                            rows[(J * kPairTile + c) * stride + e]);
          }
        }
        for (unsigned rc = 0; rc < kPairTile * kPairTile; ++rc) {
          double f[kPairFields][kWarp];
          for (unsigned l = 0; l < kWarp; ++l) {
            const PairAcc& a = acc[l * kPairTile * kPairTile + rc];
            f[0][l] = a.sum_sq, f[1][l] = a.sum_abs, f[2][l] = a.max, f[3][l] = a.min, f[4][l] = a.skipped;
            f[5][l] = a.sum_a, f[6][l] = a.sum_b;
          }
          butterfly(f[0], sum_op), butterfly(f[1], sum_op), butterfly(f[2], max_op), butterfly(f[3], min_op);
          butterfly(f[4], sum_op), butterfly(f[5], sum_op), butterfly(f[6], sum_op);
          for (unsigned k = 0; k < kPairFields; ++k) warp_v[(w * kPairTile * kPairTile + rc) * kPairFields + k] = f[k][0];
        }
      }
      for (unsigned slot = 0; slot < kPairTile * kPairTile * kPairFields; ++slot) {
        const unsigned f = slot % kPairFields, rc = slot / kPairFields, r = rc / kPairTile, c = rc % kPairTile;
        const unsigned i = I * kPairTile + r, j = J * kPairTile + c;
        if (!(i < j && j < n_models)) continue;
        double v = warp_v[slot];
        for (unsigned w = 1; w < kWarps; ++w) v = pair_fold(f, v, warp_v[w * kPairTile * kPairTile * kPairFields + slot]);
        scratch[(pair_of(i, j, n_models) * kPairFields + f) * bx_count + bx] = v;
      }
    }
  }
  for (uint64_t slot = 0; slot < n_pairs * kPairFields; ++slot) {
    const unsigned f = static_cast<unsigned>(slot % kPairFields);
    const double* p = &scratch[slot * bx_count];
    double v = p[0];
    for (unsigned b = 1; b < bx_count; ++b) v = pair_fold(f, v, p[b]);
    out[slot] = v;
  }
}

// ---- pair_central, as pair_central_kernel + central_reduce_kernel -----------------------------

void emulate_central(const double* rows, uint64_t stride, const uint64_t* len, uint32_t n_models, uint64_t max_len,
                     const double* pairs, double* out) {
  if (n_models < 2) return;
  const unsigned bx_count = pairs_blocks_x(max_len), tiles = pair_model_tiles(n_models, kCentralTile);
  const unsigned nb = static_cast<unsigned>(ceil_div(n_models, kCentralTile));
  const uint64_t n_pairs = static_cast<uint64_t>(n_models) * (n_models - 1) / 2;
  constexpr unsigned kT2 = kCentralTile * kCentralTile;
  std::vector<double> scratch(n_pairs * kCentralFields * bx_count);
  const uint64_t step = static_cast<uint64_t>(bx_count) * kThreads;
  for (unsigned tile = 0; tile < tiles; ++tile) {
    unsigned I, J;
    pair_tile_coords(tile, nb, &I, &J);
    uint64_t la[kCentralTile], lb[kCentralTile];
    for (unsigned r = 0; r < kCentralTile; ++r) {
      const unsigned i = I * kCentralTile + r, j = J * kCentralTile + r;
      la[r] = i < n_models ? len[i] : 0;
      lb[r] = j < n_models ? len[j] : 0;
    }
    double cen[kT2][3];
    for (unsigned r = 0; r < kCentralTile; ++r)
      for (unsigned c = 0; c < kCentralTile; ++c) {
        const unsigned i = I * kCentralTile + r, j = J * kCentralTile + c;
        if (i < j && j < n_models) pair_centres(pairs + pair_of(i, j, n_models) * kPairFields, la[r], lb[c], cen[r * kCentralTile + c]);
        else cen[r * kCentralTile + c][0] = cen[r * kCentralTile + c][1] = cen[r * kCentralTile + c][2] = 0;
      }
    for (unsigned bx = 0; bx < bx_count; ++bx) {
      std::vector<double> warp_v(kWarps * kT2 * kCentralFields);
      for (unsigned w = 0; w < kWarps; ++w) {
        std::vector<CentralAcc> acc(kWarp * kT2);
        for (unsigned l = 0; l < kWarp; ++l)
          for (uint64_t e = static_cast<uint64_t>(bx) * kThreads + w * kWarp + l; e < max_len; e += step)
            for (unsigned r = 0; r < kCentralTile; ++r)
              for (unsigned c = 0; c < kCentralTile; ++c)
                if (e < la[r] && e < lb[c] && (I < J || r < c))
                  central_step(acc[l * kT2 + r * kCentralTile + c], rows[(I * kCentralTile + r) * stride + e],
                               rows[(J * kCentralTile + c) * stride + e], cen[r * kCentralTile + c]);
        for (unsigned rc = 0; rc < kT2; ++rc) {
          double f[kCentralFields][kWarp];
          for (unsigned l = 0; l < kWarp; ++l) {
            const CentralAcc& a = acc[l * kT2 + rc];
            f[0][l] = a.sa, f[1][l] = a.qa, f[2][l] = a.sb, f[3][l] = a.qb, f[4][l] = a.sd, f[5][l] = a.qd, f[6][l] = a.qds;
          }
          for (unsigned k = 0; k < kCentralFields; ++k) {
            butterfly(f[k], sum_op);
            warp_v[(w * kT2 + rc) * kCentralFields + k] = f[k][0];
          }
        }
      }
      for (unsigned slot = 0; slot < kT2 * kCentralFields; ++slot) {
        const unsigned f = slot % kCentralFields, rc = slot / kCentralFields, r = rc / kCentralTile, c = rc % kCentralTile;
        const unsigned i = I * kCentralTile + r, j = J * kCentralTile + c;
        if (!(i < j && j < n_models)) continue;
        double v = warp_v[slot];
        for (unsigned w = 1; w < kWarps; ++w) v = v + warp_v[w * kT2 * kCentralFields + slot];
        scratch[(pair_of(i, j, n_models) * kCentralFields + f) * bx_count + bx] = v;
      }
    }
  }
  for (uint64_t slot = 0; slot < n_pairs * kCentralFields; ++slot) {
    const double* p = &scratch[slot * bx_count];
    double v = p[0];
    for (unsigned b = 1; b < bx_count; ++b) v = v + p[b];
    out[slot] = v;
  }
}

// ---- sketch, as sketch_y_kernel + sketch_z_kernel + sketch_sum_kernel -------------------------

void emulate_sketch(const double* w, uint64_t rows, uint64_t n, const double* omega, const double* psi, uint32_t k,
                    double* out) {
  const uint64_t kk = static_cast<uint64_t>(k) * k;
  std::vector<double> y(rows * k);
  for (uint64_t r = 0; r < rows; ++r)
    for (uint64_t c = 0; c < k; ++c) {
      double acc = 0;
      for (uint64_t i = 0; i < n; ++i) acc += w[r * n + i] * omega[i * k + c];
      y[r * k + c] = acc;
    }
  const uint64_t slabs = rows == 0 ? 1 : ceil_div(rows, kSketchSlab);
  std::vector<double> z(slabs * kk, 0.0);
  for (uint64_t s = 0; rows > 0 && s < slabs; ++s) {
    const uint64_t r_begin = s * kSketchSlab, r_end = r_begin + kSketchSlab < rows ? r_begin + kSketchSlab : rows;
    for (uint64_t a = 0; a < k; ++a)
      for (uint64_t b = 0; b < k; ++b) {
        double acc = 0;
        for (uint64_t r = r_begin; r < r_end; ++r) acc += psi[r * k + a] * y[r * k + b];
        z[s * kk + a * k + b] = acc;
      }
  }
  for (uint64_t x = 0; x < kk; ++x) {
    double t = 0;
    for (uint64_t s = 0; s < slabs; ++s) t += z[s * kk + x];
    out[x] = t;
  }
}

// ---- the API --------------------------------------------------------------------------------

int api_open(int device, mother_gpu_ctx** out, char* err, size_t cap) {
  if (device != 0) {
    if (err && cap) std::snprintf(err, cap, "emulated device %d does not exist (1 found)", device);
    return 1;
  }
  *out = new mother_gpu_ctx();
  return 0;
}
void api_close(mother_gpu_ctx* ctx) { delete ctx; }
const char* api_last_error(mother_gpu_ctx* ctx) { return ctx ? ctx->error.c_str() : ""; }
int api_info(mother_gpu_ctx*, mother_gpu_info* out) {
  std::memset(out, 0, sizeof(*out));
  std::snprintf(out->backend, sizeof(out->backend), "emulator");
  std::snprintf(out->device, sizeof(out->device), "CPU emulation of the CUDA kernels");
  out->multiprocessors = 1;
  out->streams = kStreams;
  return 0;
}
int alloc(mother_gpu_ctx* ctx, size_t bytes, void** out) {
  *out = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (*out) return 0;
  ctx->error = "out of memory allocating " + std::to_string(bytes) + " bytes";
  return 1;
}
void release(mother_gpu_ctx*, void* p) { std::free(p); }
int api_copy(mother_gpu_ctx* ctx, uint32_t stream, void* dst, const void* src, size_t bytes) {
  if (check_stream(ctx, stream)) return 1;
  if (bytes) std::memcpy(dst, src, bytes);
  return 0;
}
int api_sync(mother_gpu_ctx* ctx, uint32_t stream) { return check_stream(ctx, stream); }

int api_moments(mother_gpu_ctx* ctx, uint32_t stream, uint32_t dtype, const void* src, uint64_t count,
                mother_gpu_moments* out) {
  if (check_stream(ctx, stream)) return 1;
  const Moments m = emulate_moments(dtype, src, count);
  static_assert(sizeof(m) == sizeof(*out), "Moments layout");
  std::memcpy(out, &m, sizeof(m));
  return 0;
}
int api_decode(mother_gpu_ctx* ctx, uint32_t stream, uint32_t dtype, const void* src, uint64_t count, double* dst,
               double* norm2) {
  if (check_stream(ctx, stream)) return 1;
  emulate_decode(dtype, src, count, dst, norm2);
  return 0;
}
int api_pairs(mother_gpu_ctx* ctx, uint32_t stream, const double* rows, uint64_t stride, const uint64_t* len,
              uint32_t n_models, uint64_t max_len, double* out) {
  if (check_stream(ctx, stream)) return 1;
  emulate_pairs(rows, stride, len, n_models, max_len, out);
  return 0;
}
int api_sketch(mother_gpu_ctx* ctx, uint32_t stream, const double* w, uint64_t rows, uint64_t n, const double* omega,
               const double* psi, uint32_t k, double* out) {
  if (check_stream(ctx, stream)) return 1;
  emulate_sketch(w, rows, n, omega, psi, k, out);
  return 0;
}
int api_central(mother_gpu_ctx* ctx, uint32_t stream, const double* rows, uint64_t stride, const uint64_t* len,
                uint32_t n_models, uint64_t max_len, const double* pairs, double* out) {
  if (check_stream(ctx, stream)) return 1;
  emulate_central(rows, stride, len, n_models, max_len, pairs, out);
  return 0;
}

const mother_gpu_api kApi = {
    MOTHER_GPU_ABI_VERSION, sizeof(mother_gpu_api), api_open, api_close, api_last_error, api_info, alloc, release,
    alloc, release, api_copy, api_copy, api_sync, api_moments, api_decode, api_pairs, api_sketch, api_central,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const mother_gpu_api* mother_gpu_get_api(void) { return &kApi; }
