// A bounded reader of ZIP archives (PKWARE APPNOTE 6.3: end of central directory record, the
// ZIP64 end record and its locator, central directory headers, local headers and data
// descriptors), for the containers PyTorch writes with torch.save: stored (uncompressed)
// entries whose bytes are used in place, in the memory map. Every offset and size read from
// the file is checked against the file and against the structure that contains it; names are
// capped; entries may not overlap each other or the central directory; local headers must
// agree with the central directory. Anything compressed, encrypted or spread over several
// disks is refused (ERR_ZIP_UNSUPPORTED) naming the entry; anything inconsistent is
// ERR_ZIP_INVALID. CRC-32s are compared between the central directory, local headers and data
// descriptors, but not computed over the data (that would read every byte once more).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mother {

constexpr uint64_t kMaxZipEntries = 1u << 20;  // central directory entries
constexpr uint32_t kMaxZipName = 4096;         // bytes of one entry name

struct ZipEntry {
  std::string name;
  uint64_t header_offset = 0;  // the local header
  uint64_t data_offset = 0;    // first byte of the entry's data
  uint64_t size = 0;           // bytes of data (stored: compressed size = uncompressed size)
  uint64_t end = 0;            // end of the entry's record (data and data descriptor)
  uint32_t crc32 = 0;          // as the central directory states it (not verified)
};

struct ZipArchive {
  std::vector<ZipEntry> entries;  // central directory order
  uint64_t cd_offset = 0;         // the central directory: [cd_offset, cd_offset + cd_size)
  uint64_t cd_size = 0;
  uint64_t tail_offset = 0;       // first byte after the entries' records (the central directory)
  bool zip64 = false;             // a ZIP64 end of central directory record was used

  // The entry named exactly `name`, or nullptr (binary search over a sorted index).
  const ZipEntry* find(const std::string& name) const;

  std::vector<uint32_t> by_name;  // entry indices sorted by name
};

// True if the bytes start like a ZIP archive (a local file header, or the end record of an
// empty archive).
bool looks_like_zip(const uint8_t* data, uint64_t size);

// Parses and validates the archive [data, data + size). `path` is used in error messages only.
// Throws Error(ZipInvalid | ZipUnsupported).
ZipArchive parse_zip(const uint8_t* data, uint64_t size, const std::string& path);

}  // namespace mother
