#include "mapped_file.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>
#include <cstring>
#include <utility>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif
#include <unistd.h>

#include "error.h"

namespace mother {

namespace {
uint64_t page_size() {
  static const uint64_t ps = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return ps;
}

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

uint64_t mtime_ns(const struct stat& st) {
#if defined(__APPLE__)
  const struct timespec& t = st.st_mtimespec;
#else
  const struct timespec& t = st.st_mtim;
#endif
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}
}  // namespace

int open_regular_file(const std::string& path, bool quiet) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (quiet) return -1;
    int e = errno;
    throw Error(ErrorCode::FileOpen, path, "", path + ": cannot open: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    if (quiet) return -1;
    throw Error(ErrorCode::NotAFile, path, "", path + ": " + kind_of(st.st_mode) + ", not a regular file: not read");
  }
  // O_NONBLOCK: should the path have become a FIFO since the stat, open does not wait for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (quiet) return -1;
    int e = errno;
    throw Error(ErrorCode::FileOpen, path, "", path + ": cannot open: " + std::strerror(e));
  }
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    if (quiet) return -1;
    throw Error(ErrorCode::FileOpen, path, "", path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    if (quiet) return -1;
    throw Error(ErrorCode::NotAFile, path, "", path + ": " + kind_of(st.st_mode) + ", not a regular file: not read");
  }
  return fd;
}

// ---- the SIGBUS guard ---------------------------------------------------------------------
// Every live mapping has a slot: its address range and a fault flag. Slots sit in chunks that
// are never freed, linked by atomic pointers, so the handler can walk them without locks while
// other threads register and unregister mappings (under a mutex among themselves).
struct GuardSlot {
  std::atomic<uintptr_t> begin{0};  // 0: free
  std::atomic<uintptr_t> end{0};    // rounded up to a whole page
  std::atomic<int> faulted{0};
};

namespace {
constexpr size_t kSlotsPerChunk = 512;
struct GuardChunk {
  GuardSlot slots[kSlotsPerChunk];
  std::atomic<GuardChunk*> next{nullptr};
};
std::atomic<GuardChunk*> g_chunks{nullptr};
std::mutex g_guard_mu;
struct sigaction g_previous;  // the SIGBUS disposition before ours
uintptr_t g_page_mask = 0;

void chain_sigbus(int sig, siginfo_t* info, void* ctx) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) {
      g_previous.sa_sigaction(sig, info, ctx);
      return;
    }
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // The default action (a SIGBUS cannot be ignored meaningfully: the read would fault again):
  // restore it and raise; the signal is blocked until this handler returns, then kills.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

void on_sigbus(int sig, siginfo_t* info, void* ctx) {
  const int saved_errno = errno;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info ? info->si_addr : nullptr);
  if (info && info->si_code > 0) {  // raised by a fault, not sent by kill()
    for (GuardChunk* c = g_chunks.load(std::memory_order_acquire); c; c = c->next.load(std::memory_order_acquire)) {
      for (GuardSlot& s : c->slots) {
        const uintptr_t b = s.begin.load(std::memory_order_acquire);
        if (b == 0 || addr < b) continue;
        const uintptr_t e = s.end.load(std::memory_order_acquire);
        if (addr >= e) continue;
        s.faulted.store(1, std::memory_order_release);
        // Zero pages over [the faulting page, the end of the mapping): the pages past the new
        // end of file are all gone, and one call covers them all. mmap is a plain system call
        // on Linux (no lock taken in user space), safe here.
        const uintptr_t page = addr & g_page_mask;
#if defined(__linux__) && defined(SYS_mmap)
        void* r = reinterpret_cast<void*>(::syscall(SYS_mmap, page, e - page, PROT_READ,
                                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
#else
        void* r = ::mmap(reinterpret_cast<void*>(page), e - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
#endif
        errno = saved_errno;
        if (r != MAP_FAILED) return;  // the faulting read restarts, on zeros
        chain_sigbus(sig, info, ctx);
        return;
      }
    }
  }
  errno = saved_errno;
  chain_sigbus(sig, info, ctx);
}

void install_guard() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_page_mask = ~static_cast<uintptr_t>(page_size() - 1);
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous);
  });
}

GuardSlot* guard_register(uintptr_t begin, uintptr_t end) {
  install_guard();
  std::lock_guard<std::mutex> lock(g_guard_mu);
  GuardChunk* last = nullptr;
  for (GuardChunk* c = g_chunks.load(std::memory_order_acquire); c; c = c->next.load(std::memory_order_acquire)) {
    last = c;
    for (GuardSlot& s : c->slots)
      if (s.begin.load(std::memory_order_relaxed) == 0) {
        s.faulted.store(0, std::memory_order_relaxed);
        s.end.store(end, std::memory_order_release);
        s.begin.store(begin, std::memory_order_release);
        return &s;
      }
  }
  GuardChunk* c = new GuardChunk();  // never freed: the handler may be walking the list
  GuardSlot& s = c->slots[0];
  s.end.store(end, std::memory_order_relaxed);
  s.begin.store(begin, std::memory_order_relaxed);
  if (last) last->next.store(c, std::memory_order_release);
  else g_chunks.store(c, std::memory_order_release);
  return &s;
}

void guard_unregister(GuardSlot* s) {
  std::lock_guard<std::mutex> lock(g_guard_mu);
  s->begin.store(0, std::memory_order_release);
}
}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = open_regular_file(path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(ErrorCode::FileOpen, path, "", path + ": cannot stat: " + std::strerror(e));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  dev_ = static_cast<uint64_t>(st.st_dev);
  ino_ = static_cast<uint64_t>(st.st_ino);
  mtime_ns_ = mtime_ns(st);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(ErrorCode::FileOpen, path, "", path + ": cannot map: " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
    const uintptr_t b = reinterpret_cast<uintptr_t>(p);
    slot_ = guard_register(b, b + (size_ + page_size() - 1) / page_size() * page_size());
  }
  ::close(fd);
}

bool MappedFile::faulted() const { return slot_ && slot_->faulted.load(std::memory_order_acquire) != 0; }

void MappedFile::check_unchanged(const std::string& tensor) const {
  if (!mapped_) return;
  const std::string where = tensor.empty() ? "" : "tensor \"" + tensor + "\": ";
  if (faulted())
    throw Error(ErrorCode::FileChanged, path_, tensor,
                path_ + ": " + where + "the file shrank while it was read (pages past its new end vanished)");
  struct stat st;
  std::string what;
  if (::stat(path_.c_str(), &st) != 0) what = std::string("it can no longer be found: ") + std::strerror(errno);
  else if (static_cast<uint64_t>(st.st_dev) != dev_ || static_cast<uint64_t>(st.st_ino) != ino_) what = "it was replaced by another file";
  else if (static_cast<uint64_t>(st.st_size) != size_)
    what = "its size changed from " + std::to_string(size_) + " to " + std::to_string(st.st_size) + " bytes";
  else if (mtime_ns(st) != mtime_ns_) what = "it was rewritten (its modification time changed)";
  if (!what.empty()) throw Error(ErrorCode::FileChanged, path_, tensor, path_ + ": " + where + "the file changed while it was read: " + what);
}

MappedFile::MappedFile(const std::string& path, std::vector<uint8_t> decoded)
    : path_(path), size_(decoded.size()), decoded_(std::move(decoded)), mapped_(false) {
  data_ = decoded_.empty() ? nullptr : decoded_.data();
}

MappedFile::~MappedFile() {
  if (slot_) guard_unregister(slot_);
  if (mapped_ && data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::release(uint64_t offset, uint64_t len) const {
  if (!mapped_ || !data_ || len == 0 || offset >= size_) return;
  const uint64_t ps = page_size();
  uint64_t begin = (offset + ps - 1) / ps * ps;
  uint64_t end = offset + len;
  if (end > size_) end = size_;
  end = end == size_ ? (size_ + ps - 1) / ps * ps : end / ps * ps;  // the file's last page may be partial
  if (end <= begin) return;
  ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

void MappedFile::populate(uint64_t offset, uint64_t len) const {
  if (!mapped_ || !data_ || len == 0 || offset >= size_) return;
  const uint64_t ps = page_size();
  uint64_t begin = offset / ps * ps;
  uint64_t end = offset + len > size_ ? size_ : offset + len;
  static std::atomic<bool> unsupported{false};
  if (!unsupported.load(std::memory_order_relaxed)) {
    if (::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_POPULATE_READ) == 0) return;
    if (errno == EINVAL) unsupported.store(true);  // kernel older than 5.14
    else return;  // e.g. EFAULT past a truncated file: let the read fault report it
  }
  ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_WILLNEED);
}

}  // namespace mother
