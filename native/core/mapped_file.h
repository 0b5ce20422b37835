// A read-only memory map of a whole file. Pages are touched only when read; callers that
// stream through a large file release what they have finished with (release()), so that the
// resident set stays bounded by the work in flight, not by the file size.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mother {

// Opens `path` read-only for mapping or reading, only if it is a regular file: stat first (a
// FIFO, socket or device is refused before open, so no open blocks), then open with
// O_NONBLOCK | O_CLOEXEC and fstat again (the path may have been swapped in between).
// Returns the descriptor; throws Error(NotFound / FileOpen / NotAFile), or with `quiet`
// returns -1 instead of throwing.
int open_regular_file(const std::string& path, bool quiet = false);

// Where the process-wide SIGBUS guard records a fault inside one mapping (mapped_file.cc).
struct GuardSlot;

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error(FileOpen)
  // Not a map: values a reader had to decode (ONNX tensors stored as protobuf varints), owned
  // by this object and seen through the same interface; `path` names the file they came from.
  // release() and populate() do nothing on it.
  MappedFile(const std::string& path, std::vector<uint8_t> decoded);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops the page-table entries of the whole pages inside [offset, offset + len): the data
  // stays in the page cache but no longer counts in this process's resident set.
  void release(uint64_t offset, uint64_t len) const;
  // Maps [offset, offset + len) into the page tables in one call (MADV_POPULATE_READ,
  // Linux >= 5.14; elsewhere a MADV_WILLNEED hint): one system call instead of a page fault
  // every 64 KiB. Faults are not overlapped with computation, so this is most of the gap
  // between reading a mapped file and reading memory.
  void populate(uint64_t offset, uint64_t len) const;

  // A file that shrinks while it is mapped makes reads of its vanished pages raise SIGBUS.
  // Mapping a file installs (once per process) a SIGBUS handler that, for a fault inside a
  // live mapping, maps zero pages over the rest of that mapping, records the fault and lets
  // the read go on; faults anywhere else go to the handler that was there before (Node's, or
  // the default action). So no read ever dies: a pass reads zeros from there on, and its
  // checks (faulted(), check_unchanged()) turn that into Error(FileChanged).
  bool faulted() const;
  // Throws Error(FileChanged) naming the file (and `tensor`, when given) when a read has
  // faulted, or when the file's size, modification time, device or inode is no longer what
  // it was at open (rewritten in place, grown, truncated, replaced, removed). Decoded copies:
  // never.
  void check_unchanged(const std::string& tensor = "") const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::vector<uint8_t> decoded_;  // the bytes of a decoded copy (data_ points into it)
  bool mapped_ = true;
  GuardSlot* slot_ = nullptr;  // the guard's record of this mapping (nullptr: not mapped)
  // At open: st_dev, st_ino, st_size, st_mtim.
  uint64_t dev_ = 0, ino_ = 0, mtime_ns_ = 0;
};

}  // namespace mother
