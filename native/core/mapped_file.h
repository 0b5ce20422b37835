// A read-only memory map of a whole file. Pages are touched only when read; callers that
// stream through a large file release what they have finished with (release()), so that the
// resident set stays bounded by the work in flight, not by the file size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mother {

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

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::vector<uint8_t> decoded_;  // the bytes of a decoded copy (data_ points into it)
  bool mapped_ = true;
};

}  // namespace mother
