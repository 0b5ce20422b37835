// Singular values, values only, in three stages (Golub & Van Loan, 4th ed., 5.4.8 and 8.6):
//
// 1. Householder bidiagonalisation A = Q B P^T, blocked as LAPACK's dgebrd: the columns are
//    reduced in panels of nb; inside a panel each Householder pair touches the trailing matrix
//    only through two matrix-vector products (A^T u and A v, on the matrix as it was at the
//    start of the panel), the reflectors' effect being carried in four thin matrices,
//      A_current = A - U Y^T - X V^T,
//    and after the panel the trailing matrix takes that rank-2nb correction as one
//    matrix-matrix product (level 3). Backward stable: B is the bidiagonal of A + E with
//    ||E|| ~ p(n) eps ||A||, so every singular value is within p(n) eps sigma_max.
// 2. The singular values of B by implicit-shift QR (Demmel & Kahan, "Accurate singular values
//    of bidiagonal matrices", 1990): shifted sweeps chase the bulge from the larger end of each
//    unreduced block; the zero-shift sweep takes over when the shift would destroy the relative
//    accuracy of the smallest values; the convergence tests are the relative ones of the paper.
//    O(n^2) for values only. Its errors grow with the number of sweeps (to about n/6 eps
//    sigma_max at n = 1024), so:
// 3. each value is refined by bisection on Sturm counts of the Golub-Kahan tridiagonal of B
//    (zero diagonal, off-diagonal d1 e1 d2 e2 ...; eigenvalues +-sigma), from a bracket around
//    its QR value down to eps sigma_max. The counts are exact for B with each entry perturbed
//    by a few ulps, so every value is as accurate as B determines it: within about 2 eps
//    sigma_max of the exact values of A where those were computed (n <= 64; numpy: 4.5).
//
// Threads: the two matrix-vector products of each step, the trailing update and the refinement
// are split into chunks that a small team claims from a shared counter, so a thread the OS
// parks (the machine busy with other work) costs little: the caller does the chunks nobody
// took, and runs alone for a while when the workers fall behind. The chunks do the same
// arithmetic whoever runs them: the values do not depend on the thread count.
#include "svd.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>

#include "svd_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace mother {

namespace {

using svd_detail::SvdKernels;
using svd_detail::kGemmMR;
using svd_detail::kGemmNR;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How many factorisations run now in this process (pair_plan runs one per pair, on its own
// threads): a team's workers help only while their factorisation runs alone, so concurrent
// calls never multiply the threads the caller already spread the pairs over.
std::atomic<unsigned> g_active{0};

// A fork-join team for the duration of one factorisation. parallel(n, fn) runs fn(chunk, who)
// for chunk = 0..n-1, who = the participant (0 = the caller); chunks are claimed from one
// atomic word that carries the job's generation, so a late worker can only claim chunks of
// the job it saw published, and the caller waits for the chunks, never for the workers that
// took none. On a machine busy with other work the workers get little CPU (and what they spin
// is taken from the caller), or the OS parks one in the middle of a chunk: when the caller
// waits long for one, or the workers did under two thirds of their share of the last 128 jobs'
// chunks, the caller runs the next jobs alone (64, then twice as many each time it happens
// again).
class Team {
 public:
  // helping: the workers stand down while other factorisations run (automatic thread count)
  Team(unsigned n, bool helping) : n_(1), helping_(helping) {
    try {
      for (unsigned t = 1; t < n; ++t, ++n_) workers_.emplace_back([this, t] { loop(t); });
    } catch (const std::system_error&) {  // no more threads: fewer helpers
    }
  }
  ~Team() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true);
      state_.fetch_add(uint64_t{1} << 32);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;

  unsigned size() const { return n_; }

  void go_alone() {
    alone_ = backoff_;
    backoff_ = std::min<size_t>(2 * backoff_, size_t{1} << 16);
  }

  template <typename Fn>
  void parallel(size_t chunks, const Fn& fn) {
    if (chunks == 0) return;
    if (n_ == 1 || chunks == 1 || alone_ > 0 || (helping_ && g_active.load(std::memory_order_relaxed) > 1)) {
      if (alone_ > 0) --alone_;
      for (size_t c = 0; c < chunks; ++c) fn(c, 0u);
      return;
    }
    arg_.store(&fn, std::memory_order_relaxed);
    call_.store([](const void* f, size_t c, unsigned who) { (*static_cast<const Fn*>(f))(c, who); },
                std::memory_order_relaxed);
    chunks_.store(chunks, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    const uint64_t gen = (state_.load(std::memory_order_relaxed) >> 32) + 1;
    state_.store(gen << 32, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mu_);  // a worker about to sleep sees the new state or the notify
    }
    if (sleepers_.load(std::memory_order_relaxed) > 0) cv_.notify_all();
    work(gen, 0);
    published_ += chunks;
    if (++jobs_ % 128 == 0) {
      const size_t helped = helped_.load(std::memory_order_relaxed);
      // the workers' share of the chunks, against (n - 1) / n when every thread gets a core
      if (3 * n_ * (helped - helped_mark_) < 2 * (n_ - 1) * (published_ - published_mark_)) go_alone();
      helped_mark_ = helped;
      published_mark_ = published_;
    }
    if (done_.load(std::memory_order_acquire) == chunks) return;
    const auto t0 = std::chrono::steady_clock::now();
    for (unsigned spins = 0; done_.load(std::memory_order_acquire) != chunks; ++spins) {
      if (spins < 20000) cpu_relax();
      else std::this_thread::yield();
    }
    if (std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(200)) go_alone();  // a straggler
  }

 private:
  using Call = void (*)(const void*, size_t, unsigned);

  // Claims and runs chunks of job `gen` until none is left or a newer job replaced it.
  void work(uint64_t gen, unsigned who) {
    uint64_t s = state_.load(std::memory_order_acquire);
    const void* arg = arg_.load(std::memory_order_relaxed);
    const Call call = call_.load(std::memory_order_relaxed);
    const size_t chunks = chunks_.load(std::memory_order_relaxed);
    for (;;) {
      if ((s >> 32) != gen || (s & 0xffffffffu) >= chunks) return;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      call(arg, static_cast<size_t>(s & 0xffffffffu), who);
      if (who != 0) helped_.fetch_add(1, std::memory_order_relaxed);
      done_.fetch_add(1, std::memory_order_acq_rel);
      s = state_.load(std::memory_order_acquire);
    }
  }

  void loop(unsigned who) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t gen = state_.load(std::memory_order_acquire) >> 32;
      // spin about 30 us for the next job (the products of one Householder step follow each
      // other within microseconds), then sleep: spinning longer takes the CPU from the caller
      // on a busy machine
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(30);
      for (unsigned spins = 0; gen == seen && !stop_.load(std::memory_order_relaxed); ++spins) {
        if (spins % 64 != 63 || std::chrono::steady_clock::now() < spin_until) {
          cpu_relax();
        } else {
          std::unique_lock<std::mutex> lock(mu_);
          sleepers_.fetch_add(1);
          cv_.wait(lock, [&] {
            return (state_.load(std::memory_order_acquire) >> 32) != seen || stop_.load(std::memory_order_relaxed);
          });
          sleepers_.fetch_sub(1);
        }
        gen = state_.load(std::memory_order_acquire) >> 32;
      }
      if (stop_.load()) return;
      seen = gen;
      work(gen, who);
    }
  }

  unsigned n_;  // participants: the caller and the workers started
  const bool helping_;
  // the caller's: jobs still to run alone, the length of the next such run, and the counts
  // behind the decision (jobs and chunks published, and at the last check)
  size_t alone_ = 0, backoff_ = 64, jobs_ = 0, published_ = 0, published_mark_ = 0, helped_mark_ = 0;
  std::atomic<size_t> helped_{0};  // chunks the workers ran
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> state_{0};  // generation << 32 | next chunk
  std::atomic<const void*> arg_{nullptr};
  std::atomic<Call> call_{nullptr};
  std::atomic<size_t> chunks_{0};
  std::atomic<size_t> done_{0};
  std::atomic<unsigned> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

// 64-byte aligned scratch.
class Scratch {
 public:
  explicit Scratch(size_t n) : raw_(n + 8) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(raw_.data());
    data_ = raw_.data() + ((64 - p % 64) % 64) / sizeof(double);
  }
  double* data() { return data_; }

 private:
  std::vector<double> raw_;
  double* data_;
};

struct Context {
  const SvdKernels& k;
  Team& team;
};

// The automatic thread count uses every core from this size (min(m, n)) on.
constexpr size_t kThreadsFrom = 192;

// Products below this many multiply-adds run on the caller alone: a chunk is worth a few us.
constexpr size_t kParallelMin = 24 * 1024;

inline size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

// out[c] = A(:, c) . u, columns in chunks.
void par_gemv_t(Context& cx, size_t rows, size_t cols, const double* a, size_t lda, const double* u, double* out) {
  if (cx.team.size() == 1 || rows * cols < kParallelMin) return cx.k.gemv_t(rows, cols, a, lda, u, out);
  const size_t target = std::max<size_t>(16, div_up(cols, 4 * cx.team.size()));
  const size_t chunk = div_up(target, 4) * 4, chunks = div_up(cols, chunk);
  cx.team.parallel(chunks, [&](size_t c, unsigned) {
    const size_t c0 = c * chunk, n = std::min(chunk, cols - c0);
    cx.k.gemv_t(rows, n, a + c0 * lda, lda, u, out + c0);
  });
}

// out += A v, rows in chunks.
void par_gemv_n(Context& cx, size_t rows, size_t cols, const double* a, size_t lda, const double* v, double* out) {
  if (cx.team.size() == 1 || rows * cols < kParallelMin) return cx.k.gemv_n(rows, cols, a, lda, v, out);
  const size_t target = std::max<size_t>(32, div_up(rows, 4 * cx.team.size()));
  const size_t chunk = div_up(target, 8) * 8, chunks = div_up(rows, chunk);
  cx.team.parallel(chunks, [&](size_t c, unsigned) {
    const size_t r0 = c * chunk, n = std::min(chunk, rows - r0);
    cx.k.gemv_n(n, cols, a + r0, lda, v, out + r0);
  });
}

// C -= W Z^T (C rows x cols, W rows x depth, Z cols x depth, all column-major): both operands
// packed once (in parallel), then column chunks of C.
void par_gemm_nt_sub(Context& cx, size_t rows, size_t cols, size_t depth, const double* w, size_t ldw,
                     const double* z, size_t ldz, double* c, size_t ldc, double* pack) {
  if (rows == 0 || cols == 0 || depth == 0) return;
  const size_t mp = div_up(rows, kGemmMR), np = div_up(cols, kGemmNR);
  double* wp = pack;
  double* zp = pack + mp * kGemmMR * depth;
  const size_t teams = cx.team.size();
  const bool par = teams > 1 && rows * cols * depth >= 4 * kParallelMin;
  // packing: chunk p < pw packs row panels, the others column panels
  const size_t pw = par ? 2 * teams : 1, pz = par ? 2 * teams : 1;
  const size_t wstep = div_up(mp, pw), zstep = div_up(np, pz);
  auto pack_chunk = [&](size_t ch, unsigned) {
    if (ch < pw) {
      const size_t p0 = std::min(mp, ch * wstep), p1 = std::min(mp, p0 + wstep);
      svd_detail::pack_panels(rows, depth, w, ldw, kGemmMR, p0, p1, wp);
    } else {
      const size_t q0 = std::min(np, (ch - pw) * zstep), q1 = std::min(np, q0 + zstep);
      svd_detail::pack_panels(cols, depth, z, ldz, kGemmNR, q0, q1, zp);
    }
  };
  // compute: column chunks of whole NR panels
  const size_t qstep = par ? std::max<size_t>(1, div_up(np, 4 * teams)) : np;
  const size_t cchunks = div_up(np, qstep);
  auto compute_chunk = [&](size_t ch, unsigned) {
    const size_t q0 = ch * qstep, q1 = std::min(np, q0 + qstep);
    const size_t c0 = q0 * kGemmNR, n = std::min(cols, q1 * kGemmNR) - c0;
    cx.k.gemm_packed(rows, n, depth, wp, zp + q0 * kGemmNR * depth, c + c0 * ldc, ldc);
  };
  if (!par) {
    pack_chunk(0, 0);
    pack_chunk(1, 0);
    compute_chunk(0, 0);
    return;
  }
  cx.team.parallel(pw + pz, pack_chunk);
  cx.team.parallel(cchunks, compute_chunk);
}

// ||x||_2, by a plain sum of squares unless that underflows or overflows.
double norm2(const SvdKernels& k, const double* x, size_t n) {
  if (n == 0) return 0;
  double s = 0;
  k.gemv_t(n, 1, x, n, x, &s);
  if (s > 1e-280 && s < 1e280) return std::sqrt(s);
  double amax = 0;
  for (size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (amax == 0 || !std::isfinite(amax)) return amax;
  double t = 0;
  for (size_t i = 0; i < n; ++i) {
    const double y = x[i] / amax;
    t += y * y;
  }
  return amax * std::sqrt(t);
}

// The Householder reflector H = I - tau u u^T, u = (1, x / (alpha - beta)), that maps
// (alpha, x) to (beta, 0): scales x in place, returns tau (0: H = I, beta = alpha).
double householder(const SvdKernels& k, double alpha, double* x, size_t n, double* beta) {
  const double xnorm = norm2(k, x, n);
  if (xnorm == 0) {
    *beta = alpha;
    return 0;
  }
  const double b = -std::copysign(std::hypot(alpha, xnorm), alpha);
  if (std::fabs(b) < 1e-290) {  // below any rank decision (the matrix is scaled to max |a| ~ 1)
    *beta = alpha;
    return 0;
  }
  const double scale = 1 / (alpha - b);
  for (size_t i = 0; i < n; ++i) x[i] *= scale;
  *beta = b;
  return (b - alpha) / b;
}

// Reduces the M x N column-major matrix A (M >= N, leading dimension lda) to upper bidiagonal
// form: d[0..N), e[0..N-1). A is overwritten (with its original trailing values and updates,
// nothing a caller needs).
void bidiagonalize(Context& cx, double* A, size_t lda, size_t M, size_t N, double* d, double* e) {
  const SvdKernels& k = cx.k;
  const size_t nb = std::min<size_t>(32, N);
  Scratch ux_buf(M * 2 * nb), yv_buf(N * 2 * nb);
  std::vector<double> t1(2 * nb + 8), t2(2 * nb + 8);
  Scratch pack_buf(svd_detail::gemm_pack_size(M, N, 2 * nb));
  for (size_t j0 = 0; j0 < N; j0 += nb) {
    const size_t b = std::min(nb, N - j0);
    const size_t mr = M - j0, nc = N - j0;
    double* Ab = A + j0 * lda + j0;
    double* U = ux_buf.data();   // mr x b, ld mr: the left reflectors' vectors
    double* X = U + b * mr;      // mr x b: A v tau (corrected)
    double* Y = yv_buf.data();   // nc x b, ld nc: A^T u tau (corrected)
    double* V = Y + b * nc;      // nc x b: the right reflectors' vectors
    for (size_t i = 0; i < b; ++i) {
      // 1. column i of the current matrix, rows i..mr-1: A - U Y^T - X V^T
      double* u = U + i * mr;
      std::fill(u, u + i, 0.0);
      std::memcpy(u + i, Ab + i * lda + i, (mr - i) * sizeof(double));
      if (i > 0) {
        for (size_t q = 0; q < i; ++q) {
          t1[q] = -Y[q * nc + i];
          t2[q] = -V[q * nc + i];
        }
        k.gemv_n(mr - i, i, U + i, mr, t1.data(), u + i);
        k.gemv_n(mr - i, i, X + i, mr, t2.data(), u + i);
      }
      // 2. the left reflector: zeros below the diagonal
      const double tauq = householder(k, u[i], u + i + 1, mr - i - 1, &d[j0 + i]);
      u[i] = 1;
      // 3. y = tauq (A - U Y^T - X V^T)^T u, entries i+1..nc-1
      double* y = Y + i * nc;
      std::fill(y, y + nc, 0.0);
      if (i + 1 < nc && tauq != 0) {
        par_gemv_t(cx, mr - i, nc - i - 1, Ab + (i + 1) * lda + i, lda, u + i, y + i + 1);
        if (i > 0) {
          k.gemv_t(mr - i, i, U + i, mr, u + i, t1.data());
          k.gemv_t(mr - i, i, X + i, mr, u + i, t2.data());
          for (size_t q = 0; q < i; ++q) {
            t1[q] = -t1[q];
            t2[q] = -t2[q];
          }
          k.gemv_n(nc - i - 1, i, Y + i + 1, nc, t1.data(), y + i + 1);
          k.gemv_n(nc - i - 1, i, V + i + 1, nc, t2.data(), y + i + 1);
        }
        for (size_t c = i + 1; c < nc; ++c) y[c] *= tauq;
      }
      // 4. row i of the current matrix, columns i+1..nc-1: A - U Y^T - X V^T (U, Y now i+1 wide)
      double* v = V + i * nc;
      std::fill(v, v + nc, 0.0);
      double* x = X + i * mr;
      std::fill(x, x + mr, 0.0);
      if (i + 1 >= nc) continue;  // the last column: no right reflector
      for (size_t c = i + 1; c < nc; ++c) v[c] = Ab[c * lda + i];
      for (size_t q = 0; q <= i; ++q) t1[q] = -U[q * mr + i];
      for (size_t q = 0; q < i; ++q) t2[q] = -X[q * mr + i];
      k.gemv_n(nc - i - 1, i + 1, Y + i + 1, nc, t1.data(), v + i + 1);
      k.gemv_n(nc - i - 1, i, V + i + 1, nc, t2.data(), v + i + 1);
      // 5. the right reflector: zeros right of the superdiagonal
      const double taup = householder(k, v[i + 1], v + i + 2, nc - i - 2, &e[j0 + i]);
      v[i + 1] = 1;
      if (taup == 0) continue;
      // 6. x = taup (A - U Y^T - X V^T) v, entries i+1..mr-1
      par_gemv_n(cx, mr - i - 1, nc - i - 1, Ab + (i + 1) * lda + i + 1, lda, v + i + 1, x + i + 1);
      k.gemv_t(nc - i - 1, i + 1, Y + i + 1, nc, v + i + 1, t1.data());
      k.gemv_t(nc - i - 1, i, V + i + 1, nc, v + i + 1, t2.data());
      for (size_t q = 0; q <= i; ++q) t1[q] = -t1[q];
      for (size_t q = 0; q < i; ++q) t2[q] = -t2[q];
      k.gemv_n(mr - i - 1, i + 1, U + i + 1, mr, t1.data(), x + i + 1);
      k.gemv_n(mr - i - 1, i, X + i + 1, mr, t2.data(), x + i + 1);
      for (size_t r = i + 1; r < mr; ++r) x[r] *= taup;
    }
    // the trailing matrix: A22 -= [U X] [Y V]^T (rows and columns past the panel)
    if (b < nc)
      par_gemm_nt_sub(cx, mr - b, nc - b, 2 * b, U + b, mr, Y + b, nc, Ab + b * lda + b, lda, pack_buf.data());
  }
}

// Singular values of [f g; 0 h]: *smin, *smax (LAWN-style, no overflow for finite input).
void sv2x2(double f, double g, double h, double* smin, double* smax) {
  const double fa = std::fabs(f), ga = std::fabs(g), ha = std::fabs(h);
  const double fhmn = std::min(fa, ha), fhmx = std::max(fa, ha);
  if (fhmn == 0) {
    *smin = 0;
    if (fhmx == 0) *smax = ga;
    else {
      const double big = std::max(fhmx, ga), small = std::min(fhmx, ga);
      *smax = big * std::sqrt(1 + (small / big) * (small / big));
    }
    return;
  }
  if (ga < fhmx) {
    const double as = 1 + fhmn / fhmx, at = (fhmx - fhmn) / fhmx, au = (ga / fhmx) * (ga / fhmx);
    const double c = 2 / (std::sqrt(as * as + au) + std::sqrt(at * at + au));
    *smin = fhmn * c;
    *smax = fhmx / c;
    return;
  }
  const double au = fhmx / ga;
  if (au == 0) {  // ga overwhelms: avoid forming fhmx / ga squared
    *smin = (fhmn * fhmx) / ga;
    *smax = ga;
    return;
  }
  const double as = 1 + fhmn / fhmx, at = (fhmx - fhmn) / fhmx;
  const double c = 1 / (std::sqrt(1 + (as * au) * (as * au)) + std::sqrt(1 + (at * au) * (at * au)));
  *smin = 2 * (fhmn * c) * au;
  *smax = ga / (c + c);
}

// A plane rotation [c s; -s c] with [c s; -s c] (f, g) = (r, 0), r of the sign of f.
inline void rotation(double f, double g, double* c, double* s, double* r) {
  if (g == 0) {
    *c = 1;
    *s = 0;
    *r = f;
    return;
  }
  if (f == 0) {
    *c = 0;
    *s = 1;
    *r = g;
    return;
  }
  const double h2 = f * f + g * g;
  if (h2 > 0x1p-1000 && h2 < 0x1p+1000) {  // no harmful underflow or overflow in f^2 + g^2
    const double h = std::copysign(std::sqrt(h2), f), inv = 1 / h;
    *c = f * inv;
    *s = g * inv;
    *r = h;
    return;
  }
  const double u = std::max(std::fabs(f), std::fabs(g));
  const double fs = f / u, gs = g / u;
  const double h = std::copysign(std::sqrt(fs * fs + gs * gs), f);
  *c = fs / h;
  *s = gs / h;
  *r = h * u;
}

// Refines the singular values s[0..n) (largest first, from the QR iteration) of the upper
// bidiagonal (d, e) to within about eps s[0] each: bisection on Sturm counts of the Golub-Kahan
// tridiagonal, which are exact for a matrix whose entries are each perturbed by a few ulps
// (Kahan; Demmel & Kahan 1990), so the values come out as accurate as the bidiagonal
// determines them. Each value starts from a bracket of its QR approximation, widened until the
// counts confirm it; eight values at a time share the passes over the entries.
void refine_values(Context& cx, const double* d, const double* e, size_t n, double* s) {
  if (n < 2 || !(s[0] > 0) || !std::isfinite(s[0])) return;
  const size_t len = 2 * n - 1;
  std::vector<double> a2(len);
  double amax2 = 0;
  for (size_t i = 0; i < n; ++i) {
    a2[2 * i] = d[i] * d[i];
    if (i + 1 < n) a2[2 * i + 1] = e[i] * e[i];
  }
  for (double x : a2) amax2 = std::max(amax2, x);
  const double pivmin = std::numeric_limits<double>::min() * std::max(1.0, amax2);
  const double eps = std::numeric_limits<double>::epsilon();
  const double unit = eps * s[0];
  const double delta0 = (8 + 0.25 * static_cast<double>(n)) * unit;  // the QR error grows about as n / 6
  const int64_t nn = static_cast<int64_t>(n);
  auto batch = [&](size_t b, unsigned) {
    double lo[8], hi[8], x[8];
    int64_t want[8], cnt[8];
    size_t idx[8];
    for (size_t l = 0; l < 8; ++l) {
      idx[l] = std::min(b * 8 + l, n - 1);
      const double v = s[idx[l]];
      want[l] = nn - static_cast<int64_t>(idx[l]);  // bracket: #{sigma < lo} < want <= #{sigma < hi}
      lo[l] = std::max(0.0, v - delta0);
      hi[l] = v + delta0;
    }
    // widen each bracket until the counts confirm it (#{sigma < 0} = 0)
    for (int it = 0; it < 64; ++it) {
      bool ok = true;
      for (size_t l = 0; l < 8; ++l) x[l] = lo[l] > 0 ? lo[l] : hi[l];
      cx.k.sturm_count8(len, a2.data(), pivmin, x, cnt);
      for (size_t l = 0; l < 8; ++l)
        if (lo[l] > 0 && cnt[l] - nn >= want[l]) {
          lo[l] = std::max(0.0, lo[l] - 2 * (hi[l] - lo[l]));
          ok = false;
        }
      if (ok) break;
    }
    for (int it = 0; it < 64; ++it) {
      bool ok = true;
      cx.k.sturm_count8(len, a2.data(), pivmin, hi, cnt);
      for (size_t l = 0; l < 8; ++l)
        if (cnt[l] - nn < want[l]) {
          hi[l] += 2 * (hi[l] - lo[l]);
          ok = false;
        }
      if (ok) break;
    }
    // bisect down to max(eps s[0], 2 ulps)
    for (int it = 0; it < 200; ++it) {
      bool done = true;
      for (size_t l = 0; l < 8; ++l) {
        if (hi[l] - lo[l] > std::max(unit, 2 * eps * hi[l])) done = false;
        x[l] = 0.5 * (lo[l] + hi[l]);
      }
      if (done) break;
      cx.k.sturm_count8(len, a2.data(), pivmin, x, cnt);
      for (size_t l = 0; l < 8; ++l) {
        if (cnt[l] - nn < want[l]) lo[l] = x[l];
        else hi[l] = x[l];
      }
    }
    // keep the QR value where the bracket holds it (exact zeros stay zero)
    for (size_t l = 0; l < 8; ++l) {
      if (b * 8 + l >= n) break;
      double& v = s[idx[l]];
      if (!(lo[l] <= v && v <= hi[l])) v = 0.5 * (lo[l] + hi[l]);
    }
  };
  const size_t batches = div_up(n, 8);
  if (cx.team.size() == 1 || n < 256) {
    for (size_t b = 0; b < batches; ++b) batch(b, 0);
    return;
  }
  const size_t per = std::max<size_t>(1, div_up(batches, 8 * cx.team.size()));
  cx.team.parallel(div_up(batches, per), [&](size_t c, unsigned who) {
    for (size_t b = c * per; b < std::min(batches, (c + 1) * per); ++b) batch(b, who);
  });
}

}  // namespace

namespace svd_detail {

bool bidiagonal_singular_values(double* d, double* e, size_t n_) {
  if (n_ == 0) return true;
  const long n = static_cast<long>(n_);
  const double eps = std::numeric_limits<double>::epsilon() / 2;  // unit roundoff
  const double unfl = std::numeric_limits<double>::min();
  // relative accuracy: tol = tolmul eps, tolmul in [10, 100] (Demmel & Kahan)
  const double tol = std::max(10.0, std::min(100.0, std::pow(eps, -0.125))) * eps;
  const long maxitr = 6;
  bool ok = true;
  if (n > 1) {
    // threshold for the splits: tol times a lower bound of the smallest singular value
    double sminoa = std::fabs(d[0]);
    if (sminoa != 0) {
      double mu = sminoa;
      for (long i = 1; i < n; ++i) {
        mu = std::fabs(d[i]) * (mu / (mu + std::fabs(e[i - 1])));
        sminoa = std::min(sminoa, mu);
        if (sminoa == 0) break;
      }
    }
    sminoa = sminoa / std::sqrt(static_cast<double>(n));
    const double thresh = std::max(tol * sminoa, static_cast<double>(maxitr) * n * n * unfl);
    const long maxit = maxitr * n * n;
    long iter = 0, oldll = -1, oldm = -1, m = n - 1;
    int idir = 0;
    while (m > 0) {
      if (iter > maxit) {
        ok = false;
        break;
      }
      // the unreduced block ll..m at the bottom: scan up for a negligible superdiagonal
      double smax = std::fabs(d[m]);
      long ll = -1;
      for (long l = m - 1; l >= 0; --l) {
        const double abss = std::fabs(d[l]), abse = std::fabs(e[l]);
        if (abse <= thresh) {
          ll = l;
          break;
        }
        smax = std::max(smax, std::max(abss, abse));
      }
      if (ll >= 0) {
        e[ll] = 0;
        if (ll == m - 1) {  // d[m] is a singular value
          --m;
          continue;
        }
      }
      ++ll;
      if (ll == m - 1) {  // a 2 x 2 block
        double smin2, smax2;
        sv2x2(d[m - 1], e[m - 1], d[m], &smin2, &smax2);
        d[m - 1] = smax2;
        e[m - 1] = 0;
        d[m] = smin2;
        m -= 2;
        continue;
      }
      // a block not worked on before: chase the bulge from the larger end
      if (ll > oldm || m < oldll) idir = std::fabs(d[ll]) >= std::fabs(d[m]) ? 1 : 2;
      // convergence tests (relative), and a lower bound sminl of the block's smallest value
      double sminl = 0;
      bool split = false;
      if (idir == 1) {
        if (std::fabs(e[m - 1]) <= tol * std::fabs(d[m])) {
          e[m - 1] = 0;
          continue;
        }
        double mu = std::fabs(d[ll]);
        sminl = mu;
        for (long l = ll; l < m; ++l) {
          if (std::fabs(e[l]) <= tol * mu) {
            e[l] = 0;
            split = true;
            break;
          }
          mu = std::fabs(d[l + 1]) * (mu / (mu + std::fabs(e[l])));
          sminl = std::min(sminl, mu);
        }
      } else {
        if (std::fabs(e[ll]) <= tol * std::fabs(d[ll])) {
          e[ll] = 0;
          continue;
        }
        double mu = std::fabs(d[m]);
        sminl = mu;
        for (long l = m - 1; l >= ll; --l) {
          if (std::fabs(e[l]) <= tol * mu) {
            e[l] = 0;
            split = true;
            break;
          }
          mu = std::fabs(d[l]) * (mu / (mu + std::fabs(e[l])));
          sminl = std::min(sminl, mu);
        }
      }
      if (split) continue;
      oldll = ll;
      oldm = m;
      // the shift: zero when it would cost the smallest values their relative accuracy
      double shift = 0;
      if (static_cast<double>(n) * tol * (sminl / smax) > std::max(eps, 0.01 * tol)) {
        double sll, other;
        if (idir == 1) {
          sll = std::fabs(d[ll]);
          sv2x2(d[m - 1], e[m - 1], d[m], &shift, &other);
        } else {
          sll = std::fabs(d[m]);
          sv2x2(d[ll], e[ll], d[ll + 1], &shift, &other);
        }
        if (sll > 0 && (shift / sll) * (shift / sll) < eps) shift = 0;
      }
      iter += m - ll;
      if (shift == 0) {
        // the zero-shift sweep (Demmel & Kahan): every quantity computed without cancellation
        if (idir == 1) {
          double cs = 1, oldcs = 1, sn = 0, oldsn = 0, r;
          for (long i = ll; i < m; ++i) {
            rotation(d[i] * cs, e[i], &cs, &sn, &r);
            if (i > ll) e[i - 1] = oldsn * r;
            rotation(oldcs * r, d[i + 1] * sn, &oldcs, &oldsn, &d[i]);
          }
          const double h = d[m] * cs;
          d[m] = h * oldcs;
          e[m - 1] = h * oldsn;
          if (std::fabs(e[m - 1]) <= thresh) e[m - 1] = 0;
        } else {
          double cs = 1, oldcs = 1, sn = 0, oldsn = 0, r;
          for (long i = m; i > ll; --i) {
            rotation(d[i] * cs, e[i - 1], &cs, &sn, &r);
            if (i < m) e[i] = oldsn * r;
            rotation(oldcs * r, d[i - 1] * sn, &oldcs, &oldsn, &d[i]);
          }
          const double h = d[ll] * cs;
          d[ll] = h * oldcs;
          e[ll] = h * oldsn;
          if (std::fabs(e[ll]) <= thresh) e[ll] = 0;
        }
      } else {
        // the shifted implicit QR sweep
        if (idir == 1) {
          double f = (std::fabs(d[ll]) - shift) * (std::copysign(1.0, d[ll]) + shift / d[ll]);
          double g = e[ll];
          for (long i = ll; i < m; ++i) {
            double cr, sr, cl, sl, r;
            rotation(f, g, &cr, &sr, &r);
            if (i > ll) e[i - 1] = r;
            f = cr * d[i] + sr * e[i];
            e[i] = cr * e[i] - sr * d[i];
            g = sr * d[i + 1];
            d[i + 1] = cr * d[i + 1];
            rotation(f, g, &cl, &sl, &r);
            d[i] = r;
            f = cl * e[i] + sl * d[i + 1];
            d[i + 1] = cl * d[i + 1] - sl * e[i];
            if (i < m - 1) {
              g = sl * e[i + 1];
              e[i + 1] = cl * e[i + 1];
            }
          }
          e[m - 1] = f;
          if (std::fabs(e[m - 1]) <= thresh) e[m - 1] = 0;
        } else {
          double f = (std::fabs(d[m]) - shift) * (std::copysign(1.0, d[m]) + shift / d[m]);
          double g = e[m - 1];
          for (long i = m; i > ll; --i) {
            double cr, sr, cl, sl, r;
            rotation(f, g, &cr, &sr, &r);
            if (i < m) e[i] = r;
            f = cr * d[i] + sr * e[i - 1];
            e[i - 1] = cr * e[i - 1] - sr * d[i];
            g = sr * d[i - 1];
            d[i - 1] = cr * d[i - 1];
            rotation(f, g, &cl, &sl, &r);
            d[i] = r;
            f = cl * e[i - 1] + sl * d[i - 1];
            d[i - 1] = cl * d[i - 1] - sl * e[i - 1];
            if (i > ll + 1) {
              g = sl * e[i - 2];
              e[i - 2] = cl * e[i - 2];
            }
          }
          e[ll] = f;
          if (std::fabs(e[ll]) <= thresh) e[ll] = 0;
        }
      }
    }
  }
  for (long i = 0; i < n; ++i) d[i] = std::fabs(d[i]);
  return ok;
}

}  // namespace svd_detail

namespace svd_detail {

std::vector<double> singular_values_using(const SvdKernels& kernels, const double* a, size_t m, size_t n,
                                          unsigned threads) {
  const size_t N = std::min(m, n), M = std::max(m, n);
  std::vector<double> s(N, 0.0);
  if (N == 0) return s;
  double amax = 0;
  for (size_t i = 0; i < m * n; ++i) {
    const double x = std::fabs(a[i]);
    if (!(x <= amax)) amax = x;  // NaN propagates
  }
  if (!std::isfinite(amax)) return std::vector<double>(N, std::nan(""));
  if (amax == 0) return s;
  // scale by a power of two (exact) to max |a| in [1, 2): no overflow or harmful underflow later
  int ex;
  std::frexp(amax, &ex);
  const double scale = std::ldexp(1.0, 1 - ex), unscale = std::ldexp(1.0, ex - 1);
  // Column-major M x N with M >= N: a row-major m x n matrix read column-major is its
  // transpose (same singular values), so only m > n needs a transposing copy.
  size_t lda = (M + 7) / 8 * 8;
  if (lda % 256 == 0) lda += 8;  // rows of a power-of-two stride would share cache sets
  Scratch A(lda * N);
  double* A0 = A.data();
  if (m <= n) {
    for (size_t j = 0; j < N; ++j)
      for (size_t i = 0; i < M; ++i) A0[j * lda + i] = a[j * n + i] * scale;
  } else {
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n; ++j) A0[j * lda + i] = a[i * n + j] * scale;
  }
  unsigned t = threads;
  if (t == 0) t = N >= kThreadsFrom ? std::max(1u, std::thread::hardware_concurrency()) : 1;
  t = std::min(t, 64u);
  struct Active {
    Active() { g_active.fetch_add(1); }
    ~Active() { g_active.fetch_sub(1); }
  } active;
  Team team(t, threads == 0);
  Context cx{kernels, team};
  std::vector<double> e(N, 0.0);
  bidiagonalize(cx, A0, lda, M, N, s.data(), e.data());
  const std::vector<double> d0(s), e0(e);
  bidiagonal_singular_values(s.data(), e.data(), N);
  const auto descending = [](double x, double y) { return x > y; };
  std::sort(s.begin(), s.end(), descending);
  refine_values(cx, d0.data(), e0.data(), N, s.data());
  std::sort(s.begin(), s.end(), descending);
  for (double& x : s) x *= unscale;
  return s;
}

}  // namespace svd_detail

std::vector<double> singular_values(const double* a, size_t m, size_t n, unsigned threads) {
  return svd_detail::singular_values_using(svd_detail::svd_kernels(), a, m, n, threads);
}

}  // namespace mother
