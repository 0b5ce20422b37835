// A standalone harness for the blocked SVD (native/pairwise/svd.cc), without Node:
//   svd_check bench [--reps R] [--threads T] [--jacobi] N...
//       median seconds of singular_values on seeded Gaussian N x N matrices (and of the
//       Jacobi reference with --jacobi)
//   svd_check values IN OUT M N [--threads T] [--jacobi]
//       reads M x N float64 row-major from IN, writes the singular values (float64) to OUT
// Built and run by native/tools/svd_check.sh (timings, and the accuracy check against numpy).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "../pairwise/svd.h"
#include "../pairwise/svd_kernels.h"
#include "../pairwise/svd_reference.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int usage() {
  std::fprintf(stderr, "usage: svd_check bench [--reps R] [--threads T] [--jacobi] N...\n"
                       "       svd_check values IN OUT M N [--threads T] [--jacobi]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  unsigned threads = 0, reps = 5;
  bool jacobi = false;
  std::vector<std::string> pos;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = static_cast<unsigned>(std::atoi(argv[++i]));
    else if (a == "--reps" && i + 1 < argc) reps = static_cast<unsigned>(std::atoi(argv[++i]));
    else if (a == "--jacobi") jacobi = true;
    else pos.push_back(a);
  }
  if (mode == "bench") {
    std::printf("kernels: %s  threads: %s\n", mother::svd_detail::svd_kernels().name,
                threads ? std::to_string(threads).c_str() : "auto");
    std::printf("%6s %12s %12s %12s %12s %8s\n", "n", "blocked s", "(min)", "(cpu s)", "jacobi s", "speedup");
    for (const std::string& ns : pos) {
      const size_t n = std::strtoul(ns.c_str(), nullptr, 10);
      std::mt19937_64 rng(n);
      std::normal_distribution<double> g;
      std::vector<double> a(n * n);
      for (double& x : a) x = g(rng);
      std::vector<double> tb, tj, tc;
      for (unsigned r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        auto s = mother::singular_values(a.data(), n, n, threads);
        tb.push_back(seconds_since(t0));
        tc.push_back(cpu_seconds() - c0);
        if (jacobi && (n <= 256 || r < 1)) {
          t0 = std::chrono::steady_clock::now();
          auto sj = mother::singular_values_jacobi(a.data(), n, n);
          tj.push_back(seconds_since(t0));
        }
      }
      const double b = median(tb), bmin = *std::min_element(tb.begin(), tb.end()), c = median(tc);
      if (jacobi) {
        const double j = median(tj);
        std::printf("%6zu %12.6f %12.6f %12.6f %12.6f %8.1f\n", n, b, bmin, c, j, j / b);
      } else {
        std::printf("%6zu %12.6f %12.6f %12.6f %12s %8s\n", n, b, bmin, c, "-", "-");
      }
      std::fflush(stdout);
    }
    return 0;
  }
  if (mode == "values") {
    if (pos.size() != 4) return usage();
    const size_t m = std::strtoul(pos[2].c_str(), nullptr, 10), n = std::strtoul(pos[3].c_str(), nullptr, 10);
    std::vector<double> a(m * n);
    FILE* in = std::fopen(pos[0].c_str(), "rb");
    if (!in || std::fread(a.data(), sizeof(double), a.size(), in) != a.size()) {
      std::fprintf(stderr, "svd_check: cannot read %zu x %zu float64 from %s\n", m, n, pos[0].c_str());
      return 1;
    }
    std::fclose(in);
    const auto s = jacobi ? mother::singular_values_jacobi(a.data(), m, n) : mother::singular_values(a.data(), m, n, threads);
    FILE* out = std::fopen(pos[1].c_str(), "wb");
    if (!out || std::fwrite(s.data(), sizeof(double), s.size(), out) != s.size()) return 1;
    std::fclose(out);
    return 0;
  }
  return usage();
}
