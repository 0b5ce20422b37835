// mother GPU harness: parity of the CUDA backend (libmother_cuda.so) with the CPU emulator of
// its kernels (bit for bit) and with the CPU path (within rounding), then throughput of the
// statistics and pairwise passes on the CPU and on the GPU, and the bandwidths that bound them.
// See benchmarks/gpu/README.md. Compiled by nvcc (host code only: the CUDA runtime API is used
// for the bandwidth measurements), linked with the static core (mother_core).
//
//   mother_gpu_harness --cuda-lib PATH --emu-lib PATH --data DIR [--scale small|full]
//                      [--parity-only | --bench-only]
//
// Exit status: 0 when no check failed (checks that need CUDA are SKIPPED when the CUDA
// backend cannot be opened), 1 when one did, 2 on a usage or I/O error.
#include <cuda_runtime.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "native/core/dtype.h"
#include "native/core/error.h"
#include "native/core/mapped_file.h"
#include "native/core/parallel.h"
#include "native/formats/reader.h"
#include "native/gpu/gpu_backend.h"
#include "native/pairwise/pairwise.h"
#include "native/stats/dispatch.h"
#include "native/stats/model_stats.h"

#ifndef MOTHER_DEFAULT_CUDA_LIB
#define MOTHER_DEFAULT_CUDA_LIB ""
#endif
#ifndef MOTHER_DEFAULT_EMU_LIB
#define MOTHER_DEFAULT_EMU_LIB ""
#endif

using mother::DType;
using mother::GpuBackend;
using mother::Model;
using mother::PairPlanTensor;
using mother::PairTensorResult;
using mother::PairwiseOptions;
using mother::PairwiseResult;
using mother::ScanOptions;
using mother::Summary;

namespace {

// ---- small utilities ------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

void say(const std::string& s) {
  std::fputs(s.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// xorshift64*: fast, good enough for synthetic weights.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(splitmix(seed) | 1) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {
    double u1 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * uniform());
  }
  double student_t3() {  // Student-t with 3 degrees of freedom: heavy tails, finite variance
    const double z = normal(), a = normal(), b = normal(), c = normal();
    return z / std::sqrt((a * a + b * b + c * c) / 3.0);
  }
  double cauchy() { return std::tan(3.141592653589793 * (uniform() - 0.5)); }
};

uint64_t product(const std::vector<uint64_t>& shape, size_t from = 0) {
  uint64_t p = 1;
  for (size_t i = from; i < shape.size(); ++i) p *= shape[i];
  return p;
}

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// ---- encoders: float64 values to every float dtype with statistics -------------------------

const DType kStatDtypes[] = {DType::F64,     DType::F32,     DType::F16,         DType::BF16,       DType::F8_E4M3,
                             DType::F8_E5M2, DType::F8_E8M0, DType::F8_E4M3FNUZ, DType::F8_E5M2FNUZ};

struct Layout {
  unsigned exp_bits, man_bits;
};
Layout layout_of(DType d) {
  switch (d) {
    case DType::F64: return {11, 52};
    case DType::F32: return {8, 23};
    case DType::F16: return {5, 10};
    case DType::BF16: return {8, 7};
    case DType::F8_E4M3: case DType::F8_E4M3FNUZ: return {4, 3};
    case DType::F8_E5M2: case DType::F8_E5M2FNUZ: return {5, 2};
    case DType::F8_E8M0: return {8, 0};
    default: throw std::runtime_error("no layout for this dtype");
  }
}

double decode_code(DType d, uint64_t code) {
  switch (d) {
    case DType::F16: return mother::f16_to_f32(static_cast<uint16_t>(code));
    case DType::BF16: return mother::bf16_to_f32(static_cast<uint16_t>(code));
    default: return mother::f8_to_f32(d, static_cast<uint8_t>(code));
  }
}

uint16_t f32_to_bf16(float f) {  // round to nearest even
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((b >> 16) | 0x40);
  b += 0x7FFFu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

class Encoder {
 public:
  explicit Encoder(DType d) : d_(d), bytes_(mother::dtype_bits(d) / 8) {
    if (d == DType::F64 || d == DType::F32) return;
    const uint64_t codes = 1ull << (8 * bytes_);
    for (uint64_t c = 0; c < codes; ++c) {
      const double v = decode_code(d, c);
      if (std::isnan(v)) {
        if (!has_nan_) nan_code_ = c, has_nan_ = true;
      } else if (std::isinf(v)) {
        (v > 0 ? pinf_ : ninf_) = c;
        has_inf_ = true;
      } else {
        table_.push_back({v, c});
      }
    }
    std::sort(table_.begin(), table_.end());
  }
  unsigned bytes() const { return bytes_; }
  DType dtype() const { return d_; }

  void put_code(uint64_t code, uint8_t* dst) const { std::memcpy(dst, &code, bytes_); }  // little-endian host

  void put(double x, uint8_t* dst) const {
    if (d_ == DType::F64) return std::memcpy(dst, &x, 8), void();
    if (d_ == DType::F32) {
      const float f = static_cast<float>(x);
      return std::memcpy(dst, &f, 4), void();
    }
    if (d_ == DType::BF16) return put_code(f32_to_bf16(static_cast<float>(x)), dst);
    if (std::isnan(x)) return put_code(nan_code_, dst);
    const double lo = table_.front().first, hi = table_.back().first;
    if (x > hi || x < lo) {
      if (has_inf_ && std::fabs(x) > hi * 1.0625) return put_code(x > 0 ? pinf_ : ninf_, dst);
      return put_code(x > hi ? table_.back().second : table_.front().second, dst);
    }
    auto it = std::lower_bound(table_.begin(), table_.end(), std::make_pair(x, uint64_t{0}));
    if (it == table_.end()) --it;
    if (it != table_.begin() && std::fabs(std::prev(it)->first - x) <= std::fabs(it->first - x)) --it;
    put_code(it->second, dst);
  }
  bool has_inf() const { return d_ == DType::F64 || d_ == DType::F32 || has_inf_; }

 private:
  DType d_;
  unsigned bytes_;
  std::vector<std::pair<double, uint64_t>> table_;
  uint64_t nan_code_ = 0, pinf_ = 0, ninf_ = 0;
  bool has_nan_ = false, has_inf_ = false;
};

// ---- safetensors writing --------------------------------------------------------------------

struct Entry {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;
};

// The header bytes (8-byte length + JSON padded with spaces to a multiple of 8) and the data
// offsets of each entry.
std::string make_header(const std::vector<Entry>& es, std::vector<uint64_t>* begin, uint64_t* data_bytes) {
  std::string json = "{\"__metadata__\":{\"format\":\"pt\",\"generator\":\"mother gpu harness\"}";
  uint64_t off = 0;
  begin->clear();
  for (const Entry& e : es) {
    const uint64_t bytes = product(e.shape) * (mother::dtype_bits(e.dtype) / 8);
    json += ",\"" + e.name + "\":{\"dtype\":\"" + mother::dtype_name(e.dtype) + "\",\"shape\":" + shape_str(e.shape) +
            ",\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + bytes) + "]}";
    begin->push_back(off);
    off += bytes;
  }
  json += "}";
  while (json.size() % 8) json += ' ';
  const uint64_t n = json.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  *data_bytes = off;
  return out + json;
}

void write_all(int fd, const void* p, size_t n, uint64_t offset, const std::string& path) {
  const auto* c = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = pwrite(fd, c, n, static_cast<off_t>(offset));
    if (w <= 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    c += w, n -= static_cast<size_t>(w), offset += static_cast<uint64_t>(w);
  }
}

struct TensorData {
  Entry entry;
  std::vector<uint8_t> data;
};

void write_safetensors(const std::string& path, const std::vector<TensorData>& ts) {
  std::vector<Entry> es;
  for (const auto& t : ts) es.push_back(t.entry);
  std::vector<uint64_t> begin;
  uint64_t data_bytes = 0;
  const std::string header = make_header(es, &begin, &data_bytes);
  std::string tmp = path + ".tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& t : ts) f.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
  f.close();
  if (!f) throw std::runtime_error("cannot write " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp);
}

bool file_size_is(const std::string& path, uint64_t size) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == size;
}

void make_dirs(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) throw std::runtime_error("cannot create " + cur);
  }
}

// ---- checks ---------------------------------------------------------------------------------

int g_pass = 0, g_fail = 0, g_skip = 0;

// One reported check: many values compared, the worst deviation kept.
struct Check {
  std::string name;
  std::string measure;  // what the deviation is ("bits", "rel", ...)
  uint64_t compared = 0, failed = 0;
  double worst = 0;
  bool worst_failed = false;
  std::string worst_where;
  std::vector<std::string> examples;
  // sums where the CPU itself is off the exact value by more than the tolerance (and the
  // backend is within it): judged against the exact sum, reported as a note
  uint64_t cpu_off = 0;
  double cpu_off_worst = 0;
  std::string cpu_off_where;

  Check(std::string n, std::string m) : name(std::move(n)), measure(std::move(m)) {}
  void add(bool ok, double dev, const std::string& where) {
    ++compared;
    if (!ok) {
      ++failed;
      if (examples.size() < 6) examples.push_back(where);
    }
    // the worst: failures before passes, then the largest deviation
    const bool worse = (!ok && !worst_failed) ||
                       (!ok == worst_failed && (dev > worst || (std::isnan(dev) && !std::isnan(worst))));
    if (worse) {
      worst = dev;
      worst_failed = !ok;
      worst_where = where;
    }
  }
  void fail_all(const std::string& why) {  // nothing to compare: the run itself failed
    ++compared;
    ++failed;
    worst = INFINITY;
    worst_failed = true;
    worst_where = why;
  }
  void report() const {
    const bool ok = failed == 0 && compared > 0;
    if (ok) ++g_pass;
    else ++g_fail;
    std::string detail = strf("%llu values", static_cast<unsigned long long>(compared));
    if (failed) detail += strf(", %llu FAILED", static_cast<unsigned long long>(failed));
    if (compared == 0) detail += " (nothing compared)";
    detail += strf("; worst %s %.3g", measure.c_str(), worst);
    if (!worst_where.empty()) detail += " at " + worst_where;
    say(strf("%-7s %-46s %s", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str()));
    for (const auto& e : examples) say("          e.g. " + e);
    if (cpu_off)
      say(strf("          note: %llu sums differ from the CPU's by more than %.0e because the CPU's own sum is off "
               "the exact one (by up to %.3g, at %s); these were judged against the exact sum",
               static_cast<unsigned long long>(cpu_off), 1e-12, cpu_off_worst, cpu_off_where.c_str()));
  }
};

void report_skip(const std::string& name, const std::string& why) {
  ++g_skip;
  say(strf("%-7s %-46s %s", "SKIPPED", name.c_str(), why.c_str()));
}

bool same_bits(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return a == b && std::signbit(a) == std::signbit(b);
}
bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

std::string vals(double a, double b) { return strf("(%.17g vs %.17g)", a, b); }

// Distance in units in the last place (doubles mapped to ordered integers); 2^64 for NaN vs a number.
double ulps(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0.0 : 0x1.0p64;
  auto ordered = [](double x) {
    int64_t i;
    std::memcpy(&i, &x, 8);
    return i < 0 ? std::numeric_limits<int64_t>::min() - i : i;
  };
  const int64_t x = ordered(a), y = ordered(b);
  return std::fabs(static_cast<double>(x) - static_cast<double>(y));
}

void bits_compare(Check& c, double a, double b, const std::string& where) {
  const bool ok = same_bits(a, b);
  c.add(ok, ok ? 0.0 : std::max(1.0, ulps(a, b)), where + " " + vals(a, b));
}

// Exact fields: count, nan, inf, min, max, skipped, ...
void exact_compare(Check& c, double a, double ref, const std::string& where) {
  const bool ok = same_value(a, ref);
  c.add(ok, ok ? 0.0 : (std::isfinite(a - ref) ? std::fabs(a - ref) : INFINITY), where + " " + vals(a, ref));
}

// |a - ref| / scale <= tol; non-finite values must match exactly.
void rel_compare(Check& c, double a, double ref, double scale, double tol, const std::string& where) {
  if (!std::isfinite(a) || !std::isfinite(ref)) {
    const bool ok = same_value(a, ref);
    c.add(ok, ok ? 0.0 : INFINITY, where + " " + vals(a, ref));
    return;
  }
  double dev;
  if (a == ref) dev = 0;
  else if (!(scale > 0) || !std::isfinite(scale)) dev = INFINITY;
  else dev = std::fabs(a - ref) / scale;
  c.add(dev <= tol, dev, where + " " + vals(a, ref));
}

// Every slot of the summary layout (native/stats/summary.h), with how it is compared with the
// CPU's: exactly (counts, extremes, has_stats), relatively (sums), or as a shape statistic.
enum class Tol { Exact, Relative, Shape };
Tol tolerance_of(const std::string& field) {
  if (field == "skewness" || field == "kurtosis") return Tol::Shape;
  if (field == "mean" || field == "std" || field == "l2" || field == "absMean") return Tol::Relative;
  return Tol::Exact;
}
struct SummaryField {
  const char* name;
  double (*get)(const Summary&);
  Tol kind;
};
#define FIELD(member, name) {name, [](const Summary& s) { return s.member; }, tolerance_of(name)},
const SummaryField kSummaryFields[] = {MOTHER_SUMMARY_FIELDS(FIELD)};
#undef FIELD
constexpr double kRelTol = 1e-12, kShapeTol = 1e-9;

// Summaries against the CPU's: the tolerances of the brief (benchmarks/gpu/README.md).
void summary_tolerance(Check& c, const Summary& a, const Summary& ref, const std::string& where) {
  for (const auto& f : kSummaryFields) {
    const double x = f.get(a), r = f.get(ref);
    const std::string w = where + " " + f.name;
    if (f.kind == Tol::Exact) {
      exact_compare(c, x, r, w);
    } else if (f.kind == Tol::Relative) {
      const double floor = ref.std + std::fabs(ref.mean);
      rel_compare(c, x, r, std::max(std::fabs(r), floor), kRelTol, w);
    } else {
      rel_compare(c, x, r, std::max(1.0, std::fabs(r)), kShapeTol, w);
    }
  }
}
void summary_bits(Check& c, const Summary& a, const Summary& b, const std::string& where) {
  for (const auto& f : kSummaryFields) bits_compare(c, f.get(a), f.get(b), where + " " + f.name);
}

// ---- backends -------------------------------------------------------------------------------

struct Backends {
  GpuBackend* cuda = nullptr;
  std::string cuda_reason;  // why cuda is nullptr
  GpuBackend* emu = nullptr;
  std::string emu_reason;
};

GpuBackend* open_backend(const std::string& lib, std::string* reason) {
  try {
    return &GpuBackend::open(lib);
  } catch (const mother::Error& e) {
    *reason = e.what();
  } catch (const std::exception& e) {
    *reason = e.what();
  }
  return nullptr;
}

std::string tensor_name(const Model& m, size_t t) { return m.tensors[t].name; }

// ---- parity: per-model statistics -----------------------------------------------------------

// Values of one adversarial tensor, as float64 before encoding (or raw codes, see below).
enum class Gen { Empty, One, Normal, HeavyT3, Cauchy, Offset, NanInf, Denormal, Wide, Constant, Zeros, AllNan, Medium };

std::vector<uint8_t> gen_tensor(const Encoder& enc, Gen g, uint64_t n, uint64_t seed) {
  const DType d = enc.dtype();
  const unsigned eb = enc.bytes();
  std::vector<uint8_t> out(n * eb);
  Rng rng(seed);
  const bool f8 = eb == 1, half = eb == 2;
  const Layout lay = layout_of(d);
  const unsigned bits = 8 * eb;
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t* dst = &out[i * eb];
    double x = 0;
    switch (g) {
      case Gen::Empty: break;
      case Gen::One: x = 0.3 + rng.normal(); break;
      case Gen::Normal: x = 0.02 * rng.normal() + 0.001; break;
      case Gen::Medium: x = 0.01 + rng.normal(); break;
      case Gen::HeavyT3: x = (f8 ? 4.0 : 0.05) * rng.student_t3(); break;
      case Gen::Cauchy: x = (f8 ? 2.0 : 0.1) * rng.cauchy(); break;
      case Gen::Offset:  // mean >> std
        if (d == DType::F64 || d == DType::F32) x = 1e4 + 1e-2 * rng.normal();
        else if (d == DType::F16) x = 1000 + 2.0 * rng.normal();
        else if (d == DType::BF16) x = 1e4 + 200.0 * rng.normal();
        else x = 200 + 12.0 * rng.normal();
        break;
      case Gen::NanInf: {
        const double u = rng.uniform();
        if (u < 0.01) x = std::nan("");
        else if (u < 0.015 && enc.has_inf()) x = INFINITY;
        else if (u < 0.02 && enc.has_inf()) x = -INFINITY;
        else x = 0.5 * rng.normal();
        break;
      }
      case Gen::Denormal: {  // exponent field zero (sign and mantissa random), one in four normal
        if (rng.uniform() < 0.25) {
          x = 1e-3 * rng.normal();
          if (f8) x = rng.normal();
          break;
        }
        const uint64_t man = lay.man_bits ? rng.next() & ((1ull << lay.man_bits) - 1) : rng.next() % 4;
        const uint64_t sign = (rng.next() & 1) && lay.man_bits ? 1ull << (bits - 1) : 0;
        enc.put_code(sign | man, dst);
        continue;
      }
      case Gen::Wide:
        if (f8 || half) {  // every bit pattern, NaN and Inf included
          enc.put_code(rng.next() & ((1ull << bits) - 1), dst);
          continue;
        }
        x = std::ldexp(1.0 + rng.uniform(), static_cast<int>(rng.next() % 121) - 60) * ((rng.next() & 1) ? -1 : 1);
        break;
      case Gen::Constant: x = 0.1; break;
      case Gen::Zeros: x = (i % 3 == 0) ? -0.0 : 0.0; break;
      case Gen::AllNan: x = std::nan(""); break;
    }
    enc.put(x, dst);
  }
  return out;
}

struct ScanTensorDef {
  const char* suffix;
  Gen gen;
  std::vector<uint64_t> shape;
};

std::vector<TensorData> scan_parity_tensors() {
  const std::vector<ScanTensorDef> defs = {
      {"empty", Gen::Empty, {0}},          {"one", Gen::One, {1}},
      {"normal", Gen::Normal, {37, 29}},   {"heavy_t3", Gen::HeavyT3, {2053}},
      {"cauchy", Gen::Cauchy, {3, 1001}},  {"offset", Gen::Offset, {4099}},
      {"nan_inf", Gen::NanInf, {997}},     {"denormal", Gen::Denormal, {1031}},
      {"wide", Gen::Wide, {3, 257}},       {"constant", Gen::Constant, {300}},
      {"zeros", Gen::Zeros, {255}},        {"all_nan", Gen::AllNan, {19}},
      {"medium", Gen::Medium, {100003}},   {"tail7", Gen::Normal, {7}},
      {"rows", Gen::HeavyT3, {65, 4, 3}},
  };
  std::vector<TensorData> ts;
  uint64_t seed = 1;
  for (DType d : kStatDtypes) {
    const Encoder enc(d);
    for (const auto& def : defs) {
      TensorData t;
      t.entry = Entry{std::string(mother::dtype_name(d)) + "." + def.suffix, d, def.shape};
      t.data = gen_tensor(enc, def.gen, product(def.shape), seed++ * 7919);
      ts.push_back(std::move(t));
    }
  }
  // Large tensors: many blocks per launch, many jobs per tensor, several staging slots.
  struct Big {
    const char* name;
    DType d;
    Gen g;
    std::vector<uint64_t> shape;
  };
  const Big bigs[] = {
      {"big.F32.normal", DType::F32, Gen::Normal, {3001, 3001}},
      {"big.BF16.heavy_t3", DType::BF16, Gen::HeavyT3, {4099, 2927}},
      {"big.F64.offset", DType::F64, Gen::Offset, {2000003}},
      {"big.F16.nan_inf", DType::F16, Gen::NanInf, {1500007}},
      {"big.F8_E4M3.cauchy", DType::F8_E4M3, Gen::Cauchy, {5000011}},
  };
  for (const auto& b : bigs) {
    const Encoder enc(b.d);
    TensorData t;
    t.entry = Entry{b.name, b.d, b.shape};
    t.data = gen_tensor(enc, b.g, product(b.shape), seed++ * 7919);
    ts.push_back(std::move(t));
  }
  return ts;
}

std::vector<Summary> scan_with(const Model& m, uint64_t chunk, GpuBackend* gpu) {
  ScanOptions o;
  o.chunk_bytes = chunk;
  o.gpu = gpu;
  return mother::scan_model(m, o);
}

void scan_parity(const std::string& dir, Backends& b) {
  const std::string path = dir + "/parity_scan.safetensors";
  auto t0 = Clock::now();
  const auto tensors = scan_parity_tensors();
  write_safetensors(path, tensors);
  uint64_t bytes = 0;
  for (const auto& t : tensors) bytes += t.data.size();
  say(strf("scan parity file: %zu tensors, %.1f MB (%.1f s)", tensors.size(), bytes / 1e6, since(t0)));
  const Model model = mother::open_model({path}, "");

  struct Config {
    const char* label;
    uint64_t chunk;
  };
  const Config configs[] = {{"chunk=16MiB", 16ull << 20}, {"chunk=1MiB", 1ull << 20}, {"chunk=4099B", 4099}};
  for (const auto& cfg : configs) {
    const std::string tag = std::string("scan/") + cfg.label;
    t0 = Clock::now();
    const auto cpu = scan_with(model, cfg.chunk, nullptr);
    const double t_cpu = since(t0);
    std::vector<Summary> emu, cuda;
    double t_emu = 0, t_cuda = 0;
    std::string emu_error = b.emu ? "" : "emulator unavailable: " + b.emu_reason;
    if (b.emu) {
      t0 = Clock::now();
      try {
        emu = scan_with(model, cfg.chunk, b.emu);
      } catch (const std::exception& e) {
        emu_error = std::string("emulator: ") + e.what();
      }
      t_emu = since(t0);
    }
    std::string cuda_error;
    if (b.cuda) {
      t0 = Clock::now();
      try {
        cuda = scan_with(model, cfg.chunk, b.cuda);
      } catch (const std::exception& e) {
        cuda_error = e.what();
      }
      t_cuda = since(t0);
    }
    say(strf("%s: cpu %.2f s, emulator %.2f s, cuda %s", tag.c_str(), t_cpu, t_emu,
             b.cuda ? strf("%.2f s", t_cuda).c_str() : "-"));

    auto compare_tol = [&](Check& c, const std::vector<Summary>& x) {
      if (x.size() != cpu.size()) return c.fail_all("result count differs");
      for (size_t t = 0; t < cpu.size(); ++t) {
        if (x[t].has_stats != cpu[t].has_stats) {
          c.fail_all(tensor_name(model, t) + ": has_stats differs");
          continue;
        }
        summary_tolerance(c, x[t], cpu[t], tensor_name(model, t));
      }
    };
    if (b.cuda) {
      Check bits(tag + " cuda==emulator (bitwise)", "ulps");
      if (!cuda_error.empty()) bits.fail_all("cuda: " + cuda_error);
      else if (!emu_error.empty()) bits.fail_all(emu_error);
      else
        for (size_t t = 0; t < cuda.size(); ++t)
          summary_bits(bits, cuda[t], emu[t], tensor_name(model, t));
      bits.report();
      Check tol(tag + " cuda~cpu", "scaled dev");
      if (!cuda_error.empty()) tol.fail_all("cuda: " + cuda_error);
      else compare_tol(tol, cuda);
      tol.report();
    } else {
      report_skip(tag + " cuda==emulator (bitwise)", "CUDA unavailable: " + b.cuda_reason);
      report_skip(tag + " cuda~cpu", "CUDA unavailable: " + b.cuda_reason);
    }
    Check et(tag + " emulator~cpu", "scaled dev");
    if (!emu_error.empty()) et.fail_all(emu_error);
    else compare_tol(et, emu);
    et.report();
  }
}

// ---- parity: pairwise -----------------------------------------------------------------------

struct PwTensorDef {
  std::string name;
  std::vector<uint64_t> shape;  // base shape (rows of "embed" vary per model)
  bool sketch, moments;
};

struct Variant {
  DType dtype;
  int embed_rows_delta;
  std::vector<double> lowrank;  // singular values of a low-rank update of the square tensors
  double noise;                 // dense Gaussian noise (absolute)
  double scale;
  double nan_rate, inf_rate;    // on "big", "bias" and "sq_b"
  bool has_extra;
};

const std::vector<PwTensorDef>& pw_defs() {
  static const std::vector<PwTensorDef> defs = {
      {"model.embed", {203, 48}, false, true},  {"model.sq_a", {96, 96}, true, true},
      {"model.sq_b", {300, 300}, true, true},   {"model.big", {1501, 2003}, false, true},
      {"model.bias", {1003}, false, false},     {"model.ln", {7}, false, false},
      {"model.empty", {0, 16}, false, true},    {"model.extra", {33, 17}, false, false},
      {"model.head", {16, 300}, false, false},
  };
  return defs;
}

const std::vector<Variant>& pw_variants() {
  static const std::vector<Variant> v = {
      {DType::F32, 0, {}, 0, 1, 0, 0, true},                                // 0: the base model
      {DType::BF16, 0, {}, 0, 1, 0, 0, true},                               // 1: the base in BF16
      {DType::F32, 5, {0.5, 0.2}, 1e-4, 1, 0, 0, false},                    // 2: resized vocabulary, rank 2
      {DType::F16, 0, {0.4, 0.3, 0.1}, 0, 1, 0.002, 0.001, true},           // 3: rank 3, NaN and Inf
      {DType::F64, 0, {}, 1e-5, 1, 0, 0, false},                            // 4: dense noise
      {DType::BF16, 0, {0.3}, 0, 1, 0, 0, false},                           // 5: rank 1
      {DType::F32, 0, {}, 0, 1, 0, 0, true},                                // 6: an exact copy of 0
      {DType::F16, -13, {}, 1e-3, 1.01, 0, 0, false},                       // 7: fewer rows, scaled
      {DType::F64, 0, {0.5, 0.4, 0.3, 0.2, 0.1}, 0, 1, 0, 0, true},         // 8: rank 5
  };
  return v;
}

std::vector<double> unit_vector(Rng& r, uint64_t n) {
  std::vector<double> u(n);
  double s = 0;
  for (auto& x : u) x = r.normal(), s += x * x;
  s = std::sqrt(s);
  for (auto& x : u) x /= s;
  return u;
}

// Writes pw_<i>.safetensors for the first n variants; returns the paths.
std::vector<std::string> write_pairwise_models(const std::string& dir, size_t n) {
  const auto& defs = pw_defs();
  // base values: the largest shape each tensor takes
  std::vector<std::vector<double>> base(defs.size());
  Rng rb(42);
  for (size_t t = 0; t < defs.size(); ++t) {
    std::vector<uint64_t> shape = defs[t].shape;
    if (defs[t].name == "model.embed") shape[0] += 10;
    base[t].resize(product(shape));
    const bool norm = shape.size() == 1;
    for (auto& x : base[t]) x = norm ? 1.0 + 0.05 * rb.normal() : 0.02 * rb.normal();
  }
  std::vector<std::string> paths;
  for (size_t m = 0; m < n; ++m) {
    const Variant& v = pw_variants()[m];
    const Encoder enc(v.dtype);
    Rng r(1000 + m);
    std::vector<TensorData> ts;
    for (size_t t = 0; t < defs.size(); ++t) {
      const PwTensorDef& def = defs[t];
      if (def.name == "model.extra" && !v.has_extra) continue;
      std::vector<uint64_t> shape = def.shape;
      if (def.name == "model.embed") shape[0] = static_cast<uint64_t>(static_cast<int64_t>(shape[0]) + v.embed_rows_delta);
      const uint64_t count = product(shape);
      std::vector<double> w(base[t].begin(), base[t].begin() + static_cast<std::ptrdiff_t>(count));
      for (auto& x : w) x *= v.scale;
      if (!v.lowrank.empty() && def.sketch) {
        const uint64_t nn = shape[0];
        for (double sigma : v.lowrank) {
          const auto a = unit_vector(r, nn), b = unit_vector(r, nn);
          for (uint64_t i = 0; i < nn; ++i)
            for (uint64_t j = 0; j < nn; ++j) w[i * nn + j] += sigma * a[i] * b[j];
        }
      }
      if (v.noise > 0)
        for (auto& x : w) x += v.noise * r.normal();
      if (def.name == "model.big" || def.name == "model.bias" || def.name == "model.sq_b")
        for (auto& x : w) {
          const double u = r.uniform();
          if (u < v.nan_rate) x = std::nan("");
          else if (u < v.nan_rate + v.inf_rate) x = (r.next() & 1) ? INFINITY : -INFINITY;
        }
      TensorData td;
      td.entry = Entry{def.name, v.dtype, shape};
      td.data.resize(count * enc.bytes());
      for (uint64_t i = 0; i < count; ++i) enc.put(w[i], &td.data[i * enc.bytes()]);
      ts.push_back(std::move(td));
    }
    paths.push_back(dir + strf("/pw_%zu.safetensors", m));
    write_safetensors(paths.back(), ts);
  }
  return paths;
}

// The plan as lib/alignment.ts makes it: per name, each model's leading dimension (-1 where
// absent), the product of the trailing dimensions; sketch / moments as asked.
std::vector<PairPlanTensor> make_plan(const std::vector<Model>& models, const std::function<bool(const std::string&, const mother::TensorView&)>& sketch,
                                      const std::function<bool(const std::string&, const mother::TensorView&)>& moments,
                                      const std::function<bool(const std::string&)>& keep = nullptr) {
  std::vector<PairPlanTensor> plan;
  std::vector<std::string> names;
  for (const auto& m : models)
    for (const auto& info : m.tensors) {
      const std::string& nm = info.name;
      if (std::find(names.begin(), names.end(), nm) == names.end() && (!keep || keep(nm))) names.push_back(nm);
    }
  for (const auto& nm : names) {
    PairPlanTensor pt;
    pt.name = nm;
    bool first = true;
    for (const auto& m : models) {
      int64_t rows = -1;
      for (const auto& info : m.tensors) {
        if (info.name != nm) continue;
        rows = info.shape.empty() ? 1 : static_cast<int64_t>(info.shape[0]);
        if (first) {
          pt.row_elems = product(info.shape, 1);
          pt.sketch = sketch(nm, info);
          pt.moments = moments(nm, info);
          first = false;
        }
      }
      pt.rows.push_back(rows);
    }
    plan.push_back(pt);
  }
  return plan;
}

bool is_square(const mother::TensorView& info) { return info.shape.size() == 2 && info.shape[0] == info.shape[1] && info.shape[0] > 0; }

std::string pair_where(const PairPlanTensor& pt, size_t n, size_t p, const char* field) {
  size_t i = 0, j = 1;
  for (size_t a = 0; a < n; ++a)
    for (size_t b2 = a + 1; b2 < n; ++b2)
      if (mother::pair_index(a, b2, n) == p) i = a, j = b2;
  return strf("%s (%zu,%zu) %s", pt.name.c_str(), i, j, field);
}

// The exact sums sum (a - b)^2 and sum |a - b| of one pair (the terms rounded to float64 as both
// implementations round them, then summed with compensation in long double): the arbiter when
// a backend's sum and the CPU's differ by more than the tolerance. Decoded lazily.
class ExactPairSums {
 public:
  ExactPairSums(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan) : models_(models), plan_(plan) {}
  std::pair<double, double> get(size_t t, size_t i, size_t j) {
    const PairPlanTensor& pt = plan_[t];
    if (pt.rows[i] < 0 || pt.rows[j] < 0) return {0.0, 0.0};
    const uint64_t n = static_cast<uint64_t>(std::min(pt.rows[i], pt.rows[j])) * pt.row_elems;
    const std::vector<double>& a = decoded(t, i);
    const std::vector<double>& b = decoded(t, j);
    Neumaier sq, ab;
    for (uint64_t e = 0; e < n; ++e) {
      if (!std::isfinite(a[e]) || !std::isfinite(b[e])) continue;
      const double d = a[e] - b[e];
      sq.add(d * d);
      ab.add(std::fabs(d));
    }
    return {sq.value(), ab.value()};
  }

 private:
  struct Neumaier {
    long double s = 0, c = 0;
    void add(long double x) {
      const long double t = s + x;
      c += std::fabs(s) >= std::fabs(x) ? (s - t) + x : (x - t) + s;
      s = t;
    }
    double value() const { return static_cast<double>(s + c); }
  };
  const std::vector<double>& decoded(size_t t, size_t m) {
    const auto key = std::make_pair(t, m);
    for (auto& kv : cache_)
      if (kv.first == key) return kv.second;
    const Model& model = models_[m];
    std::vector<double> out;
    for (const auto& info : model.tensors) {
      if (info.name != plan_[t].name) continue;
      const uint8_t* p = info.data(0);
      out.resize(info.count);
      for (uint64_t e = 0; e < info.count; ++e) {
        switch (info.dtype) {
          case DType::F64: std::memcpy(&out[e], p + 8 * e, 8); break;
          case DType::F32: {
            float f;
            std::memcpy(&f, p + 4 * e, 4);
            out[e] = f;
            break;
          }
          case DType::F16: case DType::BF16: {
            uint16_t h;
            std::memcpy(&h, p + 2 * e, 2);
            out[e] = decode_code(info.dtype, h);
            break;
          }
          default: out[e] = decode_code(info.dtype, p[e]); break;
        }
      }
    }
    cache_.emplace_back(key, std::move(out));
    return cache_.back().second;
  }
  const std::vector<Model>& models_;
  const std::vector<PairPlanTensor>& plan_;
  std::deque<std::pair<std::pair<size_t, size_t>, std::vector<double>>> cache_;
};

std::pair<size_t, size_t> pair_of_index(size_t p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j)
      if (mother::pair_index(i, j, n) == p) return {i, j};
  return {0, 0};
}

void pairwise_bits(Check& c, const PairwiseResult& a, const PairwiseResult& b, const std::vector<PairPlanTensor>& plan,
                   size_t n) {
  if (a.tensors.size() != b.tensors.size()) return c.fail_all("tensor count differs");
  for (size_t m = 0; m < n; ++m)
    bits_compare(c, static_cast<double>(a.bytes_read[m]), static_cast<double>(b.bytes_read[m]), strf("bytes_read[%zu]", m));
  for (size_t t = 0; t < plan.size(); ++t) {
    const PairTensorResult &x = a.tensors[t], &y = b.tensors[t];
    const std::pair<const char*, std::vector<double> PairTensorResult::*> vecs[] = {
        {"sum_sq", &PairTensorResult::sum_sq}, {"sum_abs", &PairTensorResult::sum_abs},
        {"max_diff", &PairTensorResult::max_diff}, {"min_diff", &PairTensorResult::min_diff},
        {"count", &PairTensorResult::count}, {"skipped", &PairTensorResult::skipped},
        {"rank", &PairTensorResult::rank}, {"rank_tol", &PairTensorResult::rank_tol},
        {"sigma_max", &PairTensorResult::sigma_max}, {"mean_a", &PairTensorResult::mean_a},
        {"mean_b", &PairTensorResult::mean_b}, {"var_a", &PairTensorResult::var_a}, {"var_b", &PairTensorResult::var_b},
        {"one_minus_r", &PairTensorResult::one_minus_r}, {"r_shift1", &PairTensorResult::r_shift1},
        {"r_shift2", &PairTensorResult::r_shift2}, {"n_shift", &PairTensorResult::n_shift}};
    for (const auto& f : vecs) {
      const auto &vx = x.*f.second, &vy = y.*f.second;
      if (vx.size() != vy.size()) {
        c.fail_all(plan[t].name + " " + f.first + ": sizes differ");
        continue;
      }
      for (size_t p = 0; p < vx.size(); ++p) bits_compare(c, vx[p], vy[p], pair_where(plan[t], n, p, f.first));
    }
    if (x.moments.size() != y.moments.size()) {
      c.fail_all(plan[t].name + " moments: sizes differ");
      continue;
    }
    for (size_t m = 0; m < x.moments.size(); ++m)
      summary_bits(c, x.moments[m], y.moments[m], strf("%s moments[%zu]", plan[t].name.c_str(), m));
  }
}

// A sum against the CPU's at kRelTol; where they differ by more, the exact sum decides.
void sum_compare(Check& c, double x, double cpu, ExactPairSums* exact, size_t t, size_t p, size_t n, bool abs_field,
                 const std::string& where) {
  const bool close = same_value(x, cpu) || (std::isfinite(x) && std::isfinite(cpu) && cpu != 0 &&
                                            std::fabs(x - cpu) <= kRelTol * std::fabs(cpu));
  if (close || !exact || !std::isfinite(x) || !std::isfinite(cpu))
    return rel_compare(c, x, cpu, std::fabs(cpu), kRelTol, where);
  const auto ij = pair_of_index(p, n);
  const auto ex = exact->get(t, ij.first, ij.second);
  const double e = abs_field ? ex.second : ex.first;
  const double scale = std::fabs(e) > 0 ? std::fabs(e) : std::fabs(cpu);
  const double cpu_dev = std::fabs(cpu - e) / scale;
  rel_compare(c, x, e, scale, kRelTol, where + strf(" [exact %.17g]", e));
  if (std::fabs(x - e) <= kRelTol * scale) {
    ++c.cpu_off;
    if (cpu_dev > c.cpu_off_worst) c.cpu_off_worst = cpu_dev, c.cpu_off_where = where;
  }
}

void pairwise_tolerance(Check& c, const PairwiseResult& a, const PairwiseResult& ref,
                        const std::vector<PairPlanTensor>& plan, size_t n, ExactPairSums* exact = nullptr) {
  if (a.tensors.size() != ref.tensors.size()) return c.fail_all("tensor count differs");
  for (size_t m = 0; m < n; ++m)
    exact_compare(c, static_cast<double>(a.bytes_read[m]), static_cast<double>(ref.bytes_read[m]), strf("bytes_read[%zu]", m));
  for (size_t t = 0; t < plan.size(); ++t) {
    const PairTensorResult &x = a.tensors[t], &y = ref.tensors[t];
    auto sized = [&](const std::vector<double>& vx, const std::vector<double>& vy, const char* f) {
      if (vx.size() == vy.size()) return true;
      c.fail_all(plan[t].name + " " + f + ": sizes differ");
      return false;
    };
    if (sized(x.sum_sq, y.sum_sq, "sum_sq") && sized(x.sum_abs, y.sum_abs, "sum_abs"))
      for (size_t p = 0; p < y.sum_sq.size(); ++p) {
        sum_compare(c, x.sum_sq[p], y.sum_sq[p], exact, t, p, n, false, pair_where(plan[t], n, p, "sum_sq"));
        sum_compare(c, x.sum_abs[p], y.sum_abs[p], exact, t, p, n, true, pair_where(plan[t], n, p, "sum_abs"));
      }
    const std::pair<const char*, std::vector<double> PairTensorResult::*> exact[] = {
        {"max_diff", &PairTensorResult::max_diff}, {"min_diff", &PairTensorResult::min_diff},
        {"count", &PairTensorResult::count}, {"skipped", &PairTensorResult::skipped}, {"rank", &PairTensorResult::rank},
        {"n_shift", &PairTensorResult::n_shift}};
    for (const auto& f : exact)
      if (sized(x.*f.second, y.*f.second, f.first))
        for (size_t p = 0; p < (y.*f.second).size(); ++p)
          exact_compare(c, (x.*f.second)[p], (y.*f.second)[p], pair_where(plan[t], n, p, f.first));
    // the rank's tolerance and largest singular value: sums of n^2 products, rounded differently
    const std::pair<const char*, std::vector<double> PairTensorResult::*> sv[] = {
        {"rank_tol", &PairTensorResult::rank_tol}, {"sigma_max", &PairTensorResult::sigma_max}};
    for (const auto& f : sv)
      if (sized(x.*f.second, y.*f.second, f.first))
        for (size_t p = 0; p < (y.*f.second).size(); ++p)
          rel_compare(c, (x.*f.second)[p], (y.*f.second)[p], std::fabs((y.*f.second)[p]), 1e-9,
                      pair_where(plan[t], n, p, f.first));
    // the relatedness statistics (README "Distances between models": the CPU takes them from
    // Gram products, the GPU from two direct passes): means relative to |mean| + sd, variances
    // relative, 1 - r relative to itself (1e-9 with a floor), the shifted null absolutely
    if (sized(x.mean_a, y.mean_a, "mean_a") && sized(x.var_a, y.var_a, "var_a") && sized(x.one_minus_r, y.one_minus_r, "one_minus_r"))
      for (size_t p = 0; p < y.mean_a.size(); ++p) {
        rel_compare(c, x.mean_a[p], y.mean_a[p], std::fabs(y.mean_a[p]) + std::sqrt(std::fabs(y.var_a[p])), kRelTol, pair_where(plan[t], n, p, "mean_a"));
        rel_compare(c, x.mean_b[p], y.mean_b[p], std::fabs(y.mean_b[p]) + std::sqrt(std::fabs(y.var_b[p])), kRelTol, pair_where(plan[t], n, p, "mean_b"));
        rel_compare(c, x.var_a[p], y.var_a[p], std::fabs(y.var_a[p]), 1e-11, pair_where(plan[t], n, p, "var_a"));
        rel_compare(c, x.var_b[p], y.var_b[p], std::fabs(y.var_b[p]), 1e-11, pair_where(plan[t], n, p, "var_b"));
        rel_compare(c, x.one_minus_r[p], y.one_minus_r[p], std::max(std::fabs(y.one_minus_r[p]), 1e-12), 1e-9, pair_where(plan[t], n, p, "one_minus_r"));
      }
    if (sized(x.r_shift1, y.r_shift1, "r_shift1") && sized(x.r_shift2, y.r_shift2, "r_shift2"))
      for (size_t p = 0; p < y.r_shift1.size(); ++p) {
        rel_compare(c, x.r_shift1[p], y.r_shift1[p], 1.0, 1e-12, pair_where(plan[t], n, p, "r_shift1"));
        rel_compare(c, x.r_shift2[p], y.r_shift2[p], 1.0, 1e-12, pair_where(plan[t], n, p, "r_shift2"));
      }
    if (x.moments.size() != y.moments.size()) {
      c.fail_all(plan[t].name + " moments: sizes differ");
      continue;
    }
    for (size_t m = 0; m < y.moments.size(); ++m)
      summary_tolerance(c, x.moments[m], y.moments[m], strf("%s moments[%zu]", plan[t].name.c_str(), m));
  }
}

void pairwise_case(const std::string& tag, const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                   PairwiseOptions o, Backends& b) {
  const size_t n = models.size();
  ExactPairSums exact(models, plan);
  auto t0 = Clock::now();
  o.gpu = nullptr;
  const PairwiseResult cpu = mother::pairwise(models, plan, o);
  const double t_cpu = since(t0);
  PairwiseResult emu, cuda;
  double t_emu = 0, t_cuda = 0;
  std::string emu_error, cuda_error;
  if (b.emu) {
    t0 = Clock::now();
    o.gpu = b.emu;
    try {
      emu = mother::pairwise(models, plan, o);
    } catch (const std::exception& e) {
      emu_error = e.what();
    }
    t_emu = since(t0);
  } else {
    emu_error = "emulator unavailable: " + b.emu_reason;
  }
  if (b.cuda) {
    t0 = Clock::now();
    o.gpu = b.cuda;
    try {
      cuda = mother::pairwise(models, plan, o);
    } catch (const std::exception& e) {
      cuda_error = e.what();
    }
    t_cuda = since(t0);
  }
  say(strf("%s: cpu %.2f s, emulator %.2f s, cuda %s", tag.c_str(), t_cpu, t_emu, b.cuda ? strf("%.2f s", t_cuda).c_str() : "-"));
  if (b.cuda) {
    Check bits(tag + " cuda==emulator (bitwise)", "ulps");
    if (!cuda_error.empty()) bits.fail_all("cuda: " + cuda_error);
    else if (!emu_error.empty()) bits.fail_all("emulator: " + emu_error);
    else pairwise_bits(bits, cuda, emu, plan, n);
    bits.report();
    Check tol(tag + " cuda~cpu", "scaled dev");
    if (!cuda_error.empty()) tol.fail_all("cuda: " + cuda_error);
    else pairwise_tolerance(tol, cuda, cpu, plan, n, &exact);
    tol.report();
  } else {
    report_skip(tag + " cuda==emulator (bitwise)", "CUDA unavailable: " + b.cuda_reason);
    report_skip(tag + " cuda~cpu", "CUDA unavailable: " + b.cuda_reason);
  }
  Check et(tag + " emulator~cpu", "scaled dev");
  if (!emu_error.empty()) et.fail_all(emu_error);
  else pairwise_tolerance(et, emu, cpu, plan, n, &exact);
  et.report();
}

void pairwise_parity(const std::string& dir, Backends& b) {
  auto t0 = Clock::now();
  const auto paths = write_pairwise_models(dir, 9);
  say(strf("pairwise parity files: %zu models (%.1f s)", paths.size(), since(t0)));
  auto open_n = [&](size_t n) {
    std::vector<Model> ms;
    for (size_t m = 0; m < n; ++m) ms.push_back(mother::open_model({paths[m]}, ""));
    return ms;
  };
  auto sketch = [](const std::string&, const mother::TensorView& info) { return is_square(info); };
  auto moments = [](const std::string& nm, const mother::TensorView& info) {
    return is_square(info) || nm == "model.big" || nm == "model.embed" || nm == "model.empty";
  };
  {
    const auto models = open_n(5);
    const auto plan = make_plan(models, sketch, moments);
    PairwiseOptions o;
    o.relatedness = true;  // the shifted null too (the host computes it on the GPU path)
    pairwise_case("pairwise/N=5 default", models, plan, o, b);
    o.job_elems = 3000;
    o.chunk_elems = 512;
    pairwise_case("pairwise/N=5 job=3000", models, plan, o, b);
  }
  {
    const auto models = open_n(9);
    const auto plan = make_plan(models, sketch, moments);
    PairwiseOptions o;
    o.relatedness = true;
    pairwise_case("pairwise/N=9 default", models, plan, o, b);
    o.sketch_k = 40;
    o.job_elems = 50000;
    pairwise_case("pairwise/N=9 k=40 job=50000", models, plan, o, b);
  }
}

// ---- the CUDA runtime, for the bandwidth numbers --------------------------------------------

struct CudaRt {
  bool ok = false;
  std::string reason;
  cudaDeviceProp prop{};
  int driver = 0, runtime = 0;
};

CudaRt probe_cuda() {
  CudaRt c;
  cudaRuntimeGetVersion(&c.runtime);
  cudaDriverGetVersion(&c.driver);
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    c.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
    return c;
  }
  if (n == 0) {
    c.reason = "no CUDA device";
    return c;
  }
  if (cudaGetDeviceProperties(&c.prop, 0) != cudaSuccess || cudaSetDevice(0) != cudaSuccess) {
    c.reason = "cannot query device 0";
    return c;
  }
  c.ok = true;
  return c;
}

std::string cuda_version(int v) { return v ? strf("%d.%d", v / 1000, v % 1000 / 10) : "none"; }

#define CU(call)                                                                                              \
  do {                                                                                                        \
    cudaError_t e_ = (call);                                                                                  \
    if (e_ != cudaSuccess) throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorString(e_));       \
  } while (0)

struct Bandwidth {
  double h2d = 0, d2h = 0, d2d = 0;
  std::string error;
};

Bandwidth measure_bandwidth(bool full) {
  Bandwidth bw;
  void *host = nullptr, *dev = nullptr, *dev2 = nullptr;
  cudaStream_t st = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  try {
    const size_t hb = 256ull << 20;
    const size_t db = full ? (1ull << 30) : (256ull << 20);
    CU(cudaHostAlloc(&host, hb, cudaHostAllocDefault));
    std::memset(host, 1, hb);
    CU(cudaMalloc(&dev, db));
    CU(cudaMalloc(&dev2, db));
    CU(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    CU(cudaEventCreate(&e0));
    CU(cudaEventCreate(&e1));
    auto timed = [&](int reps, const std::function<void()>& op) {
      op();  // warm-up
      CU(cudaStreamSynchronize(st));
      CU(cudaEventRecord(e0, st));
      for (int r = 0; r < reps; ++r) op();
      CU(cudaEventRecord(e1, st));
      CU(cudaEventSynchronize(e1));
      float ms = 0;
      CU(cudaEventElapsedTime(&ms, e0, e1));
      return ms / 1e3;
    };
    const int reps = 8;
    double s = timed(reps, [&] { CU(cudaMemcpyAsync(dev, host, hb, cudaMemcpyHostToDevice, st)); });
    bw.h2d = reps * static_cast<double>(hb) / s / 1e9;
    s = timed(reps, [&] { CU(cudaMemcpyAsync(host, dev, hb, cudaMemcpyDeviceToHost, st)); });
    bw.d2h = reps * static_cast<double>(hb) / s / 1e9;
    s = timed(5, [&] { CU(cudaMemcpyAsync(dev2, dev, db, cudaMemcpyDeviceToDevice, st)); });
    bw.d2d = 5 * 2.0 * static_cast<double>(db) / s / 1e9;  // read + write
  } catch (const std::exception& e) {
    bw.error = e.what();
  }
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  if (st) cudaStreamDestroy(st);
  if (dev) cudaFree(dev);
  if (dev2) cudaFree(dev2);
  if (host) cudaFreeHost(host);
  return bw;
}

// ---- bench: synthetic LLM-like models -------------------------------------------------------

struct Scale {
  const char* name;
  unsigned models;
  uint64_t d, ffn, vocab;
  unsigned layers;
  unsigned sketch_models;
  int reps;
};
const Scale kFull = {"full", 8, 4096, 11008, 32000, 2, 8, 2};
const Scale kSmall = {"small", 4, 1024, 2816, 8000, 2, 2, 1};

struct BenchTensor {
  Entry entry;
  double mean, sigma;
};

std::vector<BenchTensor> bench_layout(const Scale& s) {
  std::vector<BenchTensor> ts;
  auto add = [&](const std::string& name, std::vector<uint64_t> shape, double mean, double sigma) {
    ts.push_back(BenchTensor{Entry{name, DType::BF16, std::move(shape)}, mean, sigma});
  };
  add("model.embed_tokens.weight", {s.vocab, s.d}, 0, 0.02);
  for (unsigned l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {s.d}, 1.0, 0.05);
    for (const char* q : {"q_proj", "k_proj", "v_proj", "o_proj"}) add(p + "self_attn." + q + ".weight", {s.d, s.d}, 0, 0.02);
    add(p + "post_attention_layernorm.weight", {s.d}, 1.0, 0.05);
    add(p + "mlp.gate_proj.weight", {s.ffn, s.d}, 0, 0.02);
    add(p + "mlp.up_proj.weight", {s.ffn, s.d}, 0, 0.02);
    add(p + "mlp.down_proj.weight", {s.d, s.ffn}, 0, 0.02);
  }
  add("model.norm.weight", {s.d}, 1.0, 0.05);
  return ts;
}

// sum of four 16-bit uniforms, centred and scaled to unit variance (Irwin-Hall, n = 4)
inline double irwin_hall(uint64_t r) {
  const double s = static_cast<double>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48)) + 2.0;
  return (s / 65536.0 - 2.0) * 1.7320508075688772;
}

// Model m = base + (m > 0) * 5% of sigma of per-model noise, BF16. Element values depend only
// on (tensor, piece, model), not on the thread count.
void write_bench_model(const std::string& path, const std::vector<BenchTensor>& layout, unsigned model, unsigned threads) {
  std::vector<Entry> es;
  for (const auto& t : layout) es.push_back(t.entry);
  std::vector<uint64_t> begin;
  uint64_t data_bytes = 0;
  const std::string header = make_header(es, &begin, &data_bytes);
  const uint64_t total = header.size() + data_bytes;
  if (file_size_is(path, total)) return;  // deterministic content: reuse
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  if (::ftruncate(fd, static_cast<off_t>(total)) != 0) throw std::runtime_error("cannot size " + tmp);
  write_all(fd, header.data(), header.size(), 0, tmp);
  constexpr uint64_t kPiece = 1ull << 21;  // elements
  struct Piece {
    size_t t;
    uint64_t first, n;
  };
  std::vector<Piece> pieces;
  for (size_t t = 0; t < layout.size(); ++t) {
    const uint64_t n = product(layout[t].entry.shape);
    for (uint64_t e = 0; e < n; e += kPiece) pieces.push_back(Piece{t, e, std::min(kPiece, n - e)});
  }
  mother::parallel_for(pieces.size(), threads, [&](size_t i) {
    const Piece& p = pieces[i];
    const BenchTensor& bt = layout[p.t];
    thread_local std::vector<uint16_t> buf;
    buf.resize(p.n);
    const uint64_t key = (static_cast<uint64_t>(p.t) << 40) ^ p.first;
    Rng base(key * 0x9E3779B97F4A7C15ull + 1);
    Rng pert(key * 0xD1B54A32D192ED03ull + model * 0x94D049BB133111EBull + 7);
    const double tweak = 0.05 * bt.sigma;
    for (uint64_t e = 0; e < p.n; ++e) {
      double w = bt.mean + bt.sigma * irwin_hall(base.next());
      if (model > 0) w += tweak * irwin_hall(pert.next());
      buf[e] = f32_to_bf16(static_cast<float>(w));
    }
    write_all(fd, buf.data(), p.n * 2, header.size() + begin[p.t] + p.first * 2, tmp);
  });
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp);
}

// Reads every file once (page cache), all threads; returns GB/s.
double warm_files(const std::vector<std::string>& paths, unsigned threads) {
  struct Part {
    size_t f;
    uint64_t off, n;
  };
  std::vector<Part> parts;
  std::vector<int> fds;
  uint64_t total = 0;
  constexpr uint64_t kPart = 8ull << 20;
  for (size_t f = 0; f < paths.size(); ++f) {
    const int fd = ::open(paths[f].c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("cannot open " + paths[f]);
    fds.push_back(fd);
    struct stat st;
    ::fstat(fd, &st);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    for (uint64_t o = 0; o < size; o += kPart) parts.push_back(Part{f, o, std::min(kPart, size - o)});
    total += size;
  }
  const auto t0 = Clock::now();
  std::atomic<uint64_t> sink{0};
  mother::parallel_for(parts.size(), threads, [&](size_t i) {
    thread_local std::vector<uint8_t> buf(kPart);
    const Part& p = parts[i];
    const ssize_t r = ::pread(fds[p.f], buf.data(), p.n, static_cast<off_t>(p.off));
    if (r > 0) sink.fetch_add(buf[static_cast<size_t>(r) - 1], std::memory_order_relaxed);
  });
  const double s = since(t0);
  for (int fd : fds) ::close(fd);
  return total / s / 1e9;
}

// The staging ceiling: a page-cached model file copied through a fresh memory map into a
// page-locked buffer on every thread, 4 MiB parts. `like_stage`: as staging.cc's stage()
// does it (populate the part's page tables in one call, memcpy, release them); otherwise a
// plain memcpy from the mapping (page faults as it goes). Returns GB/s, best of reps.
double staging_ceiling(const std::vector<std::string>& paths, unsigned threads, bool pinned, int reps, bool like_stage) {
  constexpr uint64_t kPart = 4ull << 20;
  const size_t bytes = static_cast<size_t>(threads) * kPart;
  uint8_t* buf = nullptr;
  if (pinned) {
    if (cudaHostAlloc(reinterpret_cast<void**>(&buf), bytes, cudaHostAllocDefault) != cudaSuccess) buf = nullptr;
  }
  const bool host_pinned = buf != nullptr;
  if (!buf) buf = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  std::memset(buf, 0, bytes);
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<std::unique_ptr<mother::MappedFile>> maps;
    struct Part {
      const mother::MappedFile* map;
      uint64_t off, n;
    };
    std::vector<Part> parts;
    uint64_t total = 0;
    for (const auto& path : paths) {
      maps.emplace_back(new mother::MappedFile(path));
      const mother::MappedFile& m = *maps.back();
      for (uint64_t off = 0; off < m.size(); off += kPart) parts.push_back(Part{&m, off, std::min(kPart, m.size() - off)});
      total += m.size();
    }
    std::atomic<size_t> next{0};
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (size_t i; (i = next.fetch_add(1)) < parts.size();) {
          const Part& p = parts[i];
          if (like_stage) p.map->populate(p.off, p.n);
          std::memcpy(buf + t * kPart, p.map->data() + p.off, p.n);
          if (like_stage) p.map->release(p.off, p.n);
        }
      });
    for (auto& th : pool) th.join();
    best = std::max(best, total / since(t0) / 1e9);
  }
  if (host_pinned) cudaFreeHost(buf);
  else std::free(buf);
  return best;
}

struct Row {
  std::string metric, cpu, gpu, ratio, note;
};

std::string num(double x) {
  if (!(x > 0)) return "-";
  if (x >= 100) return strf("%.0f", x);
  if (x >= 10) return strf("%.1f", x);
  return strf("%.2f", x);
}
std::string ratio(double gpu, double cpu) { return gpu > 0 && cpu > 0 ? strf("%.2fx", gpu / cpu) : ""; }

// Best-of-reps wall time of fn (seconds); 0 with *error set when fn throws (error != nullptr).
double best_time(int reps, const std::function<void()>& fn, const char* label, std::string* error);
double best_time(int reps, const std::function<void()>& fn, const char* label) { return best_time(reps, fn, label, nullptr); }

double best_time(int reps, const std::function<void()>& fn, const char* label, std::string* error) {
  double best = INFINITY;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    if (!error) {
      fn();
    } else {
      try {
        fn();
      } catch (const std::exception& e) {
        *error = e.what();
        say(strf("  %s: run %d: ERROR: %s", label, r + 1, e.what()));
        return 0;
      }
    }
    const double s = since(t0);
    say(strf("  %s: run %d: %.3f s", label, r + 1, s));
    best = std::min(best, s);
  }
  return best;
}

int bench(const std::string& dir, const Scale& sc, Backends& b, const CudaRt& rt) {
  const unsigned threads = mother::resolve_threads(0);
  const auto layout = bench_layout(sc);
  uint64_t model_bytes = 0, model_elems = 0, square_bytes = 0, square_elems = 0;
  for (const auto& t : layout) {
    const uint64_t n = product(t.entry.shape);
    model_elems += n;
    model_bytes += 2 * n;
    if (t.entry.shape.size() == 2 && t.entry.shape[0] == t.entry.shape[1]) square_bytes += 2 * n, square_elems += n;
  }
  say(strf("bench scale %s: %u models x %.3f GB BF16 (%zu tensors: d=%llu, ffn=%llu, vocab=%llu, %u layers), %u threads",
           sc.name, sc.models, model_bytes / 1e9, layout.size(), static_cast<unsigned long long>(sc.d),
           static_cast<unsigned long long>(sc.ffn), static_cast<unsigned long long>(sc.vocab), sc.layers, threads));

  std::vector<Row> rows;
  const bool full = std::string(sc.name) == "full";
  const std::string unavailable = "unavailable";
  GpuBackend* gpu = b.cuda;
  // At small scale without CUDA, the emulator stands in (a CPU emulation: its rates say nothing
  // about a GPU, but the host side and the comparisons run).
  GpuBackend* stand_in = (!gpu && std::string(sc.name) == "small") ? b.emu : nullptr;

  // generation
  auto t0 = Clock::now();
  std::vector<std::string> paths;
  for (unsigned m = 0; m < sc.models; ++m) {
    paths.push_back(dir + strf("/bench_%u.safetensors", m));
    write_bench_model(paths.back(), layout, m, threads);
  }
  const double t_gen = since(t0);
  say(strf("generated %u files, %.2f GB in %.1f s (%.2f GB/s)", sc.models, sc.models * model_bytes / 1e9, t_gen,
           sc.models * model_bytes / 1e9 / t_gen));
  const double warm = warm_files(paths, threads);
  say(strf("page cache warm-up read: %.2f GB/s", warm));

  std::vector<Model> models;
  for (const auto& p : paths) models.push_back(mother::open_model({p}, ""));
  const double total_bytes = static_cast<double>(sc.models) * model_bytes;

  // -- bandwidths
  Bandwidth bw;
  if (rt.ok) {
    bw = measure_bandwidth(full);
    if (bw.error.empty())
      say(strf("bandwidth: H2D %.2f GB/s, D2H %.2f GB/s, D2D %.1f GB/s (read+write)", bw.h2d, bw.d2h, bw.d2d));
    else
      say("bandwidth: " + bw.error);
  }
  // over 2 files at full scale (2.1 GB), all 4 at small scale (0.27 GB)
  const std::vector<std::string> stage_paths(paths.begin(), paths.begin() + std::min<size_t>(paths.size(), full ? 2 : 4));
  const double staging = staging_ceiling(stage_paths, threads, rt.ok, std::max(2, sc.reps), true);
  const double plain_copy = staging_ceiling(stage_paths, threads, rt.ok, std::max(2, sc.reps), false);
  say(strf("staging ceiling into %s memory, %u threads: %.2f GB/s as stage() (populate, memcpy, release), "
           "%.2f GB/s plain memcpy from the mapping", rt.ok ? "pinned" : "pageable", threads, staging, plain_copy));

  // -- statistics
  std::vector<std::vector<Summary>> stats_cpu(sc.models), stats_gpu(sc.models);
  auto scan_all = [&](GpuBackend* g, std::vector<std::vector<Summary>>& out) {
    for (unsigned m = 0; m < sc.models; ++m) {
      ScanOptions o;
      o.gpu = g;
      out[m] = mother::scan_model(models[m], o);
    }
  };
  say("stats (scan_model of every model):");
  const double s_cpu = best_time(sc.reps, [&] { scan_all(nullptr, stats_cpu); }, "cpu");
  double s_gpu = 0;
  GpuBackend* g_stats = gpu ? gpu : stand_in;
  std::string err_stats, err_pw, err_sk;  // a failed GPU pass: reported, and the other measurements go on
  if (g_stats)
    s_gpu = best_time(gpu ? sc.reps : 1, [&] { scan_all(g_stats, stats_gpu); }, gpu ? "gpu" : "emulator", &err_stats);
  const double stats_cpu_gbs = total_bytes / s_cpu / 1e9, stats_gpu_gbs = s_gpu > 0 ? total_bytes / s_gpu / 1e9 : 0;

  // -- pairwise, no sketch, moments of the square tensors
  auto square = [](const std::string&, const mother::TensorView& info) { return is_square(info); };
  auto never = [](const std::string&, const mother::TensorView&) { return false; };
  const auto plan = make_plan(models, never, square);
  const double pairs = static_cast<double>(mother::pair_count(sc.models));
  PairwiseResult pw_cpu, pw_gpu;
  say(strf("pairwise (N=%u, all tensors, moments on the square ones):", sc.models));
  PairwiseOptions po;
  const double p_cpu = best_time(sc.reps, [&] { pw_cpu = mother::pairwise(models, plan, po); }, "cpu");
  double p_gpu = 0;
  if (g_stats) {
    po.gpu = g_stats;
    p_gpu = best_time(gpu ? sc.reps : 1, [&] { pw_gpu = mother::pairwise(models, plan, po); }, gpu ? "gpu" : "emulator", &err_pw);
  }
  const double pw_cpu_gbs = total_bytes / p_cpu / 1e9, pw_gpu_gbs = p_gpu > 0 ? total_bytes / p_gpu / 1e9 : 0;
  const double pe = pairs * static_cast<double>(model_elems);
  const double pe_cpu = pe / p_cpu / 1e9, pe_gpu = p_gpu > 0 ? pe / p_gpu / 1e9 : 0;

  // -- pairwise with the rank sketch on the square tensors, fewer models
  const unsigned ns = sc.sketch_models;
  std::vector<Model> sk_models;
  for (unsigned m = 0; m < ns; ++m) sk_models.push_back(mother::open_model({paths[m]}, ""));
  const auto sk_plan = make_plan(sk_models, square, never, [&](const std::string& nm) {
    for (const auto& t : layout)
      if (t.entry.name == nm) return t.entry.shape.size() == 2 && t.entry.shape[0] == t.entry.shape[1];
    return false;
  });
  const double sk_bytes = static_cast<double>(ns) * square_bytes;
  PairwiseResult sk_cpu, sk_gpu;
  say(strf("pairwise + rank sketch (N=%u, the %zu square tensors, k=64):", ns, sk_plan.size()));
  PairwiseOptions so;
  const double k_cpu = best_time(sc.reps, [&] { sk_cpu = mother::pairwise(sk_models, sk_plan, so); }, "cpu");
  double k_gpu = 0;
  if (g_stats) {
    so.gpu = g_stats;
    k_gpu = best_time(gpu ? sc.reps : 1, [&] { sk_gpu = mother::pairwise(sk_models, sk_plan, so); }, gpu ? "gpu" : "emulator",
                      &err_sk);
  }
  const double sk_cpu_gbs = sk_bytes / k_cpu / 1e9, sk_gpu_gbs = k_gpu > 0 ? sk_bytes / k_gpu / 1e9 : 0;

  // -- agreement of the benchmark results
  if (g_stats) {
    const std::string who = gpu ? "cuda" : "emulator";
    Check cs("bench/stats " + who + "~cpu", "scaled dev");
    if (!err_stats.empty()) cs.fail_all(who + ": " + err_stats);
    else
      for (unsigned m = 0; m < sc.models; ++m)
        for (size_t t = 0; t < stats_cpu[m].size(); ++t)
          summary_tolerance(cs, stats_gpu[m][t], stats_cpu[m][t], strf("model %u ", m) + tensor_name(models[m], t));
    cs.report();
    Check cp("bench/pairwise " + who + "~cpu", "scaled dev");
    ExactPairSums pw_exact(models, plan), sk_exact(sk_models, sk_plan);
    if (!err_pw.empty()) cp.fail_all(who + ": " + err_pw);
    else pairwise_tolerance(cp, pw_gpu, pw_cpu, plan, sc.models, &pw_exact);
    cp.report();
    Check ck("bench/pairwise+sketch " + who + "~cpu", "scaled dev");
    if (!err_sk.empty()) ck.fail_all(who + ": " + err_sk);
    else pairwise_tolerance(ck, sk_gpu, sk_cpu, sk_plan, ns, &sk_exact);
    ck.report();
  }
  {
    // what the ranks came out as (the models differ by dense BF16-scale noise: full sketch rank)
    std::string ranks;
    for (size_t t = 0; t < std::min<size_t>(sk_plan.size(), 1); ++t)
      for (size_t p = 0; p < sk_cpu.tensors[t].rank.size(); ++p) ranks += strf(" %.0f", sk_cpu.tensors[t].rank[p]);
    say("  sketch ranks (cpu, " + (sk_plan.empty() ? std::string("-") : sk_plan[0].name) + ", per pair):" + ranks);
  }

  // -- the table
  const std::string gpu_na = gpu ? "" : unavailable;
  auto gpu_cell = [&](double v) { return gpu ? (v > 0 ? num(v) : std::string("error (see below)")) : gpu_na; };
  const std::string reps_note = strf("best of %d", sc.reps);
  rows.push_back({"stats (scan_model), GB/s", num(stats_cpu_gbs), gpu_cell(stats_gpu_gbs), gpu ? ratio(stats_gpu_gbs, stats_cpu_gbs) : "",
                  strf("%u models x %.2f GB BF16, %s", sc.models, model_bytes / 1e9, reps_note.c_str())});
  rows.push_back({strf("pairwise N=%u, GB/s of model data", sc.models), num(pw_cpu_gbs), gpu_cell(pw_gpu_gbs),
                  gpu ? ratio(pw_gpu_gbs, pw_cpu_gbs) : "", "no sketch, moments on the square tensors"});
  rows.push_back({strf("pairwise N=%u, G pair-elements/s", sc.models), num(pe_cpu), gpu_cell(pe_gpu), gpu ? ratio(pe_gpu, pe_cpu) : "",
                  strf("%.0f pairs x %.2fG elements", pairs, model_elems / 1e9)});
  rows.push_back({strf("pairwise + rank sketch N=%u, GB/s", ns), num(sk_cpu_gbs), gpu_cell(sk_gpu_gbs), gpu ? ratio(sk_gpu_gbs, sk_cpu_gbs) : "",
                  strf("%zu tensors %llux%llu, k=64", sk_plan.size(), static_cast<unsigned long long>(sc.d),
                       static_cast<unsigned long long>(sc.d))});
  if (stand_in) {
    rows.push_back({"stats via the emulator backend, GB/s", "", num(stats_gpu_gbs), "", "CPU emulation of the kernels, not a GPU"});
    rows.push_back({strf("pairwise N=%u via the emulator, GB/s", sc.models), "", num(pw_gpu_gbs), "", "CPU emulation, not a GPU"});
    rows.push_back({strf("pairwise + sketch N=%u via the emulator, GB/s", ns), "", num(sk_gpu_gbs), "", "CPU emulation, not a GPU"});
  }
  const bool bw_ok = rt.ok && bw.error.empty();
  const std::string bw_na = rt.ok ? ("error: " + bw.error) : unavailable;
  rows.push_back({"host-to-device copy, GB/s", "", bw_ok ? num(bw.h2d) : bw_na, "", "cudaMemcpyAsync from 256 MiB pinned, x8, cudaEvents"});
  rows.push_back({"device-to-host copy, GB/s", "", bw_ok ? num(bw.d2h) : bw_na, "", "256 MiB into pinned, x8"});
  rows.push_back({"device-to-device copy, GB/s", "", bw_ok ? num(bw.d2d) : bw_na, "",
                  strf("%s, read + write bytes, x5", full ? "1 GiB" : "256 MiB")});
  rows.push_back({"staging ceiling, GB/s", num(staging), "", "",
                  strf("page-cached mmap of %zu files -> %s buffer as stage() does it (populate, memcpy, release), %u threads",
                       stage_paths.size(), rt.ok ? "pinned" : "pageable", threads)});
  rows.push_back({"plain memcpy from the mmap, GB/s", num(plain_copy), "", "",
                  strf("same, without populate/release (page faults), %u threads", threads)});
  rows.push_back({"page-cache read (pread), GB/s", num(warm), "", "", "first read after writing the files"});
  if (gpu && bw_ok && bw.h2d > 0) {
    if (stats_gpu_gbs > 0)
      rows.push_back({"GPU stats / H2D bandwidth", "", strf("%.2f", stats_gpu_gbs / bw.h2d), "", "fraction of the copy bound"});
    if (pw_gpu_gbs > 0)
      rows.push_back({"GPU pairwise / H2D bandwidth", "", strf("%.2f", pw_gpu_gbs / bw.h2d), "", "fraction of the copy bound"});
    if (stats_gpu_gbs > 0 && staging > 0)
      rows.push_back({"GPU stats / staging ceiling", "", strf("%.2f", stats_gpu_gbs / staging), "", "fraction of the host-side bound"});
  }
  if (!gpu) rows.push_back({"GPU", "", "unavailable: " + b.cuda_reason, "", ""});
  for (const auto& e : {std::make_pair("stats", err_stats), std::make_pair("pairwise", err_pw), std::make_pair("pairwise + sketch", err_sk)})
    if (!e.second.empty()) rows.push_back({std::string("GPU ") + e.first + " error", "", e.second, "", ""});

  say("");
  say("| metric | CPU | GPU | ratio | note |");
  say("|---|---|---|---|---|");
  for (const auto& r : rows)
    say("| " + r.metric + " | " + r.cpu + " | " + r.gpu + " | " + r.ratio + " | " + r.note + " |");
  return 0;
}

// ---- main -----------------------------------------------------------------------------------

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const auto p = line.find(':');
      return p == std::string::npos ? line : line.substr(p + 2);
    }
  return "unknown CPU";
}

int usage(const char* why) {
  std::fprintf(stderr,
               "%s\nusage: mother_gpu_harness [--cuda-lib PATH] [--emu-lib PATH] [--data DIR] [--scale small|full] "
               "[--parity-only | --bench-only]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cuda_lib = MOTHER_DEFAULT_CUDA_LIB, emu_lib = MOTHER_DEFAULT_EMU_LIB, data, scale = "full";
  bool parity = true, run_bench = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--cuda-lib") cuda_lib = value();
      else if (a == "--emu-lib") emu_lib = value();
      else if (a == "--data") data = value();
      else if (a == "--scale") scale = value();
      else if (a == "--parity-only") run_bench = false;
      else if (a == "--bench-only") parity = false;
      else if (a == "-h" || a == "--help") return usage("mother GPU parity and benchmark harness");
      else return usage(("unknown option " + a).c_str());
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (!parity && !run_bench) return usage("--parity-only and --bench-only exclude each other");
  if (scale != "small" && scale != "full") return usage("--scale must be small or full");
  if (data.empty()) data = "/tmp/mother-gpu-harness";

  try {
    make_dirs(data);
    char date[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
    say(strf("mother GPU harness, %s", date));
    say(strf("host: %s, %u threads, CPU kernels: %s", cpu_model().c_str(), mother::resolve_threads(0),
             mother::select_kernels("")->name));
    const CudaRt rt = probe_cuda();
    say(strf("CUDA runtime (harness, static): %s, driver supports: %s", cuda_version(rt.runtime).c_str(),
             cuda_version(rt.driver).c_str()));
    if (rt.ok)
      say(strf("device 0: %s, cc %d.%d, %d SMs, %.1f GiB", rt.prop.name, rt.prop.major, rt.prop.minor,
               rt.prop.multiProcessorCount, rt.prop.totalGlobalMem / 1073741824.0));
    else
      say("device: unavailable: " + rt.reason);

    Backends b;
    b.emu = open_backend(emu_lib, &b.emu_reason);
    b.cuda = open_backend(cuda_lib, &b.cuda_reason);
    say("emulator backend: " + emu_lib + ": " + (b.emu ? "opened" : "unavailable: " + b.emu_reason));
    if (b.cuda) {
      const auto& inf = b.cuda->info();
      say(strf("cuda backend: %s: %s, cc %d.%d, %d SMs, runtime %s, driver %s, %u streams", cuda_lib.c_str(), inf.device,
               inf.cc_major, inf.cc_minor, inf.multiprocessors, cuda_version(inf.runtime_version).c_str(),
               cuda_version(inf.driver_version).c_str(), inf.streams));
    } else {
      say("cuda backend: " + cuda_lib + ": unavailable: " + b.cuda_reason);
      say("  (parity compares the emulator with the CPU only; CUDA checks are SKIPPED)");
    }
    say("");

    if (parity) {
      const auto t0 = Clock::now();
      say("== parity ==");
      const std::string dir = data + "/parity";
      make_dirs(dir);
      scan_parity(dir, b);
      pairwise_parity(dir, b);
      say(strf("parity: %d PASS, %d FAIL, %d SKIPPED (%.1f s)", g_pass, g_fail, g_skip, since(t0)));
      say("");
    }
    if (run_bench) {
      const auto t0 = Clock::now();
      say("== bench ==");
      const std::string dir = data + "/bench";
      make_dirs(dir);
      const int before = g_fail;
      bench(dir, scale == "full" ? kFull : kSmall, b, rt);
      say(strf("bench: %.1f s%s", since(t0), g_fail > before ? " (with FAILED agreement checks)" : ""));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fflush(stdout);
    return 2;
  }
  std::fflush(stdout);
  return g_fail ? 1 : 0;
}
