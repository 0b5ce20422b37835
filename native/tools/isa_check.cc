// Every kernel set this CPU (or emulator) runs against the scalar one: the pairwise pass's row
// kernels on raw rows, and the whole pass on a few small models it writes itself (mixed dtypes,
// NaN/Inf, mean >> std, exact copies). Built and run by native/tools/check-arm64.sh under
// qemu-aarch64 (the NEON kernels) and usable on any host:
//   g++ -std=c++17 -O2 -I. native/tools/isa_check.cc native/{core,formats,stats,pairwise}/*.cc
//       native/gpu/gpu_backend.cc native/gpu/staging.cc -ldl -lpthread && ./a.out
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <cstdio>
#include <random>
#include <vector>
#include "native/stats/dispatch.h"
#include "native/formats/reader.h"
#include "native/pairwise/pairwise.h"
using namespace mother;
static int fails = 0;

// Six models of five tensors (F32, BF16, F16, F64, F32), perturbations of one base, NaN/Inf in
// one, mean >> std in one tensor, tensor "e" equal in every model; in $TMPDIR.
static std::vector<std::string> write_models() {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> nd;
  struct T { const char* name; const char* dtype; std::vector<uint64_t> shape; double mean, sd; };
  const T ts[] = {{"a", "F32", {40, 16}, 0, .02}, {"b", "BF16", {1031}, 0, .02}, {"c", "F16", {33, 29}, 0, .02},
                  {"d", "F64", {3, 5, 7}, 100, 1e-3}, {"e", "F32", {300, 16}, 0, .02}};
  std::vector<std::vector<double>> base;
  for (const T& t : ts) {
    uint64_t n = 1;
    for (auto s : t.shape) n *= s;
    std::vector<double> v(n);
    for (auto& x : v) x = t.mean + t.sd * nd(rng);
    base.push_back(v);
  }
  const char* tmp = std::getenv("TMPDIR");
  std::vector<std::string> files;
  for (int m = 0; m < 6; ++m) {
    std::string header = "{", blob;
    for (size_t t = 0; t < 5; ++t) {
      std::string raw;
      for (size_t e = 0; e < base[t].size(); ++e) {
        double x = base[t][e] + (t == 4 ? 0.0 : 1e-4 * (m % 3) * ts[t].sd * nd(rng));
        if (t == 2 && m == 2 && e == 7) x = NAN;
        if (t == 2 && m == 2 && e == 100) x = INFINITY;
        const std::string d = ts[t].dtype;
        if (d == "F64") raw.append(reinterpret_cast<const char*>(&x), 8);
        else {
          const float f = static_cast<float>(x);
          uint32_t u;
          std::memcpy(&u, &f, 4);
          if (d == "F32") raw.append(reinterpret_cast<const char*>(&f), 4);
          else if (d == "BF16") { const uint16_t h = static_cast<uint16_t>(u >> 16); raw.append(reinterpret_cast<const char*>(&h), 2); }
          else {  // F16: a value on the F16 grid near x (exact decoding is all that is tested)
            const uint16_t h = static_cast<uint16_t>(0x2000 + (e * 37 + m) % 0x3000);
            raw.append(reinterpret_cast<const char*>(&h), 2);
          }
        }
      }
      std::string shape;
      for (size_t k = 0; k < ts[t].shape.size(); ++k) shape += (k ? "," : "") + std::to_string(ts[t].shape[k]);
      header += std::string(t ? "," : "") + "\"" + ts[t].name + "\":{\"dtype\":\"" + ts[t].dtype + "\",\"shape\":[" + shape +
                "],\"data_offsets\":[" + std::to_string(blob.size()) + "," + std::to_string(blob.size() + raw.size()) + "]}";
      blob += raw;
    }
    header += "}";
    while (header.size() % 8) header += ' ';
    const std::string f = std::string(tmp ? tmp : "/tmp") + "/mother-isa-check-" + std::to_string(m) + ".safetensors";
    std::ofstream out(f, std::ios::binary);
    const uint64_t hl = header.size();
    out.write(reinterpret_cast<const char*>(&hl), 8);
    out << header << blob;
    files.push_back(f);
  }
  return files;
}
static void check(bool ok, const char* what, double a, double b) { if (!ok) { ++fails; if (fails < 20) printf("FAIL %s: %.17g vs %.17g\n", what, a, b); } }
int main(int argc, char** argv) {
  auto ks = available_kernels();
  const Kernels* sc = ks[0];
  std::mt19937_64 rng(1);
  std::normal_distribution<double> nd;
  for (auto k : ks) {
    printf("kernel set %s\n", k->name);
    for (size_t m : {1, 2, 3, 4, 5, 7, 9, 13}) for (size_t n : {0, 1, 2, 3, 5, 8, 9, 17, 64, 1031}) {
      std::vector<std::vector<double>> rows(m, std::vector<double>(n + 1));
      std::vector<const double*> p(m);
      for (size_t i = 0; i < m; ++i) { for (auto& x : rows[i]) x = std::round(16 * nd(rng)); p[i] = rows[i].data(); }
      std::vector<double> g(m * m, NAN), c(m * m, NAN), g0(m * m, NAN);
      k->gram(p.data(), m, n, g.data());
      k->cross_upper(p.data(), p.data(), m, n, c.data());
      sc->gram(p.data(), m, n, g0.data());
      for (size_t i = 0; i < m; ++i) for (size_t j = i; j < m; ++j) { check(g[i*m+j] == g0[i*m+j], "gram", g[i*m+j], g0[i*m+j]); check(c[i*m+j] == g0[i*m+j], "cross", c[i*m+j], g0[i*m+j]); }
      for (size_t i = 0; i < m; ++i) for (size_t j = 0; j < i; ++j) check(std::isnan(g[i*m+j]), "lower", g[i*m+j], NAN);
    }
    for (size_t n : {1, 2, 5, 8, 33, 1000}) {
      std::vector<double> a(n), b(n), y(n), y0(n);
      for (size_t e = 0; e < n; ++e) { a[e] = 3 + nd(rng); b[e] = a[e] + 1e-3 * nd(rng); }
      double o[4], o0[4];
      k->pair_dd(a.data(), b.data(), n, o); sc->pair_dd(a.data(), b.data(), n, o0);
      for (int q = 0; q < 4; ++q) check(std::fabs(o[q] - o0[q]) <= 1e-12 * (std::fabs(o0[q]) + 1e-300) || std::fabs(o[q] - o0[q]) < 1e-18, "pair_dd", o[q], o0[q]);
      double m2[2], m20[2]; k->moments2(a.data(), n, m2); sc->moments2(a.data(), n, m20);
      check(std::fabs(m2[0] - m20[0]) <= 1e-14 * std::fabs(m20[0]), "moments2 mean", m2[0], m20[0]);
      check(n < 2 || std::fabs(m2[1] - m20[1]) <= 1e-12 * m20[1], "moments2 m2", m2[1], m20[1]);
      double s = k->center(a.data(), b.data(), n, y.data()), s0 = sc->center(a.data(), b.data(), n, y0.data());
      for (size_t e = 0; e < n; ++e) check(y[e] == y0[e], "center", y[e], y0[e]);
      check(std::fabs(s - s0) <= 1e-13 * std::fabs(s0) + 1e-15, "center sum", s, s0);
      s = k->shift(a.data(), 3.0, n, y.data()); s0 = sc->shift(a.data(), 3.0, n, y0.data());
      for (size_t e = 0; e < n; ++e) check(y[e] == y0[e], "shift", y[e], y0[e]);
      check(std::fabs(k->sum(a.data(), n) - sc->sum(a.data(), n)) <= 1e-13 * std::fabs(sc->sum(a.data(), n)), "sum", 0, 0);
      // decode_center on F32 / BF16 / F16 bytes
      std::vector<uint8_t> raw(n * 4);
      for (size_t e = 0; e < n; ++e) { float f = (float)a[e]; std::memcpy(&raw[4 * e], &f, 4); }
      for (DType d : {DType::F32, DType::BF16, DType::F16}) {
        std::vector<uint8_t> bytes(raw);
        if (d != DType::F32) { for (size_t e = 0; e < n; ++e) { float f; std::memcpy(&f, &raw[4*e], 4); uint32_t u; std::memcpy(&u, &f, 4); uint16_t h = d == DType::BF16 ? (uint16_t)(u >> 16) : (uint16_t)0x3c00 + (uint16_t)(e % 1000); std::memcpy(&bytes[2*e], &h, 2);} }
        double su, su0;
        bool bad = k->decode_center(d, bytes.data(), n, b.data(), y.data(), &su), bad0 = sc->decode_center(d, bytes.data(), n, b.data(), y0.data(), &su0);
        check(bad == bad0, "decode_center bad", bad, bad0);
        for (size_t e = 0; e < n; ++e) check(y[e] == y0[e], "decode_center", y[e], y0[e]);
        check(std::fabs(su - su0) <= 1e-12 * std::fabs(su0) + 1e-12, "decode_center sum", su, su0);
      }
    }
  }
  // the whole pass on small models: every kernel set against scalar
  {
    std::vector<std::string> files = argc > 1 ? std::vector<std::string>(argv + 1, argv + argc) : write_models();
    std::vector<Model> models;
    for (const auto& f : files) models.push_back(open_model({f}, ""));
    std::vector<PairPlanTensor> plan;
    for (auto& v : models[0].tensors) { PairPlanTensor t; t.name = v.name; t.row_elems = v.shape.empty() ? 1 : v.count / v.shape[0]; t.rows.assign(models.size(), v.shape.empty() ? 1 : v.shape[0]); plan.push_back(t); }
    for (int rel = 0; rel < 2; ++rel) for (int diffs = 0; diffs < 2; ++diffs) {
      PairwiseOptions o; o.threads = 2; o.chunk_elems = 64; o.job_elems = 256; o.relatedness = rel; o.differences = diffs;
      o.kernels = sc; auto r0 = pairwise(models, plan, o);
      for (auto k : ks) {
        o.kernels = k; auto r = pairwise(models, plan, o);
        for (size_t t = 0; t < plan.size(); ++t) {
          auto& x = r.tensors[t]; auto& y = r0.tensors[t];
          for (size_t p = 0; p < x.sum_sq.size(); ++p) {
            check(std::fabs(x.sum_sq[p] - y.sum_sq[p]) <= 1e-12 * y.sum_sq[p], "pass sum_sq", x.sum_sq[p], y.sum_sq[p]);
            check(x.count[p] == y.count[p] && x.skipped[p] == y.skipped[p], "pass count", x.count[p], y.count[p]);
            check(std::isnan(y.one_minus_r[p]) ? std::isnan(x.one_minus_r[p]) : std::fabs(x.one_minus_r[p] - y.one_minus_r[p]) <= 1e-10 * std::fabs(y.one_minus_r[p]) + 1e-14, "pass 1-r", x.one_minus_r[p], y.one_minus_r[p]);
            check(std::isnan(y.var_a[p]) ? std::isnan(x.var_a[p]) : std::fabs(x.var_a[p] - y.var_a[p]) <= 1e-12 * y.var_a[p], "pass var", x.var_a[p], y.var_a[p]);
            if (rel) check(std::isnan(y.r_shift1[p]) ? std::isnan(x.r_shift1[p]) : std::fabs(x.r_shift1[p] - y.r_shift1[p]) <= 1e-12, "pass rshift", x.r_shift1[p], y.r_shift1[p]);
            if (diffs) check(x.max_diff[p] == y.max_diff[p] && std::fabs(x.sum_abs[p] - y.sum_abs[p]) <= 1e-12 * y.sum_abs[p], "pass diffs", x.sum_abs[p], y.sum_abs[p]);
          }
        }
      }
    }
    printf("whole pass: %zu models, %zu tensors, every kernel set\n", models.size(), plan.size());
    if (argc <= 1)
      for (const auto& f : files) std::remove(f.c_str());
  }
  printf(fails ? "%d FAILURES\n" : "all kernel sets agree\n", fails);
  return fails ? 1 : 0;
}
