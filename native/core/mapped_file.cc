#include "mapped_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

namespace mother {

namespace {
uint64_t page_size() {
  static const uint64_t ps = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return ps;
}
}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw Error(ErrorCode::FileOpen, path, "", path + ": cannot open: " + std::strerror(e));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(ErrorCode::FileOpen, path, "", path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorCode::FileOpen, path, "", path + ": not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(ErrorCode::FileOpen, path, "", path + ": cannot map: " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::MappedFile(const std::string& path, std::vector<uint8_t> decoded)
    : path_(path), size_(decoded.size()), decoded_(std::move(decoded)), mapped_(false) {
  data_ = decoded_.empty() ? nullptr : decoded_.data();
}

MappedFile::~MappedFile() {
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
