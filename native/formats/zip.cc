#include "zip.h"

#include <algorithm>
#include <cstring>

#include "reader.h"

namespace mother {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr uint32_t kDescriptorSig = 0x08074b50;
constexpr uint64_t kEndBytes = 22;          // end of central directory record without its comment
constexpr uint64_t kEnd64LocatorBytes = 20;
constexpr uint64_t kEnd64Bytes = 56;        // ZIP64 end record without extensible data
constexpr uint64_t kCentralBytes = 46;
constexpr uint64_t kLocalBytes = 30;
constexpr uint32_t k32 = 0xFFFFFFFFu;
constexpr uint16_t k16 = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t u64(const uint8_t* p) { return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

std::string num(uint64_t v) { return std::to_string(v); }

// A printable form of an entry name for messages (names are not trusted: no control bytes).
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return quoted(out);
}

[[noreturn]] void invalid(const std::string& path, const std::string& what) {
  fail(ErrorCode::ZipInvalid, path, "", "ZIP archive: " + what);
}
[[noreturn]] void unsupported(const std::string& path, const std::string& what) {
  fail(ErrorCode::ZipUnsupported, path, "", "ZIP archive: " + what);
}

// The values a ZIP64 extended information extra field (0x0001) replaces: each is read from the
// field only where the 32-bit (16-bit for the disk) value in the header is all ones, in this order.
struct Zip64Values {
  uint64_t uncompressed, compressed, offset;
  uint32_t disk;
  bool present = false;
};

// Walks the extra field [p, p + len): well-formed (id, size, data) records filling it exactly;
// applies a ZIP64 record to `v` (whose fields hold the header's values on entry).
void read_extra(const uint8_t* p, uint64_t len, Zip64Values* v, bool has_offset_and_disk, const std::string& path,
                const std::string& where) {
  uint64_t at = 0;
  bool seen64 = false;
  const bool need_u = v->uncompressed == k32, need_c = v->compressed == k32;
  const bool need_o = has_offset_and_disk && v->offset == k32, need_d = has_offset_and_disk && v->disk == k16;
  while (at < len) {
    if (len - at < 4) invalid(path, where + ": extra field ends inside a record header");
    const uint16_t id = u16(p + at), size = u16(p + at + 2);
    if (size > len - at - 4) invalid(path, where + ": extra field record of " + num(size) + " bytes runs past the extra field");
    if (id == kZip64ExtraId) {
      if (seen64) invalid(path, where + ": two ZIP64 extra fields");
      seen64 = true;
      const uint8_t* q = p + at + 4;
      uint64_t left = size;
      auto take8 = [&](uint64_t* out) {
        if (left < 8) invalid(path, where + ": ZIP64 extra field too short for the values it must hold");
        *out = u64(q);
        q += 8;
        left -= 8;
      };
      if (need_u) take8(&v->uncompressed);
      if (need_c) take8(&v->compressed);
      if (need_o) take8(&v->offset);
      if (need_d) {
        if (left < 4) invalid(path, where + ": ZIP64 extra field too short for the values it must hold");
        v->disk = u32(q);
      }
      v->present = true;
    }
    at += 4 + static_cast<uint64_t>(size);
  }
  if ((need_u || need_c || need_o || need_d) && !seen64)
    invalid(path, where + ": a size or offset is 0xFFFFFFFF but there is no ZIP64 extra field");
}

struct EndRecords {
  uint64_t entries, cd_size, cd_offset;
  uint64_t tail;  // where the end records start: the central directory must end here
  bool zip64;
};

EndRecords read_end(const uint8_t* d, uint64_t size, const std::string& path) {
  if (size < kEndBytes) invalid(path, "file is " + num(size) + " bytes, too small for an end of central directory record");
  // The record is 22 bytes plus a comment of up to 65535 bytes that ends the file exactly.
  const uint64_t lowest = size - kEndBytes > 0xFFFF ? size - kEndBytes - 0xFFFF : 0;
  uint64_t eocd = UINT64_MAX;
  for (uint64_t pos = size - kEndBytes + 1; pos-- > lowest;) {
    if (u32(d + pos) == kEndSig && u16(d + pos + 20) == size - pos - kEndBytes) {
      eocd = pos;
      break;
    }
  }
  if (eocd == UINT64_MAX) invalid(path, "no end of central directory record (not a ZIP archive, or truncated)");
  const uint8_t* e = d + eocd;
  const uint16_t disk = u16(e + 4), cd_disk = u16(e + 6), n_disk = u16(e + 8), n_total = u16(e + 10);
  const uint32_t cd_size = u32(e + 12), cd_offset = u32(e + 16);
  EndRecords r{n_total, cd_size, cd_offset, eocd, false};
  if (eocd >= kEnd64LocatorBytes && u32(d + eocd - kEnd64LocatorBytes) == kEnd64LocatorSig) {
    const uint64_t loc = eocd - kEnd64LocatorBytes;
    const uint8_t* l = d + loc;
    const uint32_t z_disk = u32(l + 4), total_disks = u32(l + 16);
    const uint64_t z_off = u64(l + 8);
    if (z_disk != 0 || total_disks > 1) unsupported(path, "spans several disks (ZIP64 locator: " + num(total_disks) + " disks)");
    if (z_off > loc || loc - z_off < kEnd64Bytes)
      invalid(path, "the ZIP64 end of central directory record at offset " + num(z_off) + " does not fit before its locator at " + num(loc));
    const uint8_t* z = d + z_off;
    if (u32(z) != kEnd64Sig) invalid(path, "no ZIP64 end of central directory record at offset " + num(z_off));
    const uint64_t rec = u64(z + 4);
    if (rec < kEnd64Bytes - 12 || rec != loc - z_off - 12)
      invalid(path, "the ZIP64 end of central directory record size " + num(rec) + " does not end at its locator");
    const uint32_t z_this = u32(z + 16), z_cd_disk = u32(z + 20);
    const uint64_t z_n_disk = u64(z + 24), z_n_total = u64(z + 32), z_cd_size = u64(z + 40), z_cd_offset = u64(z + 48);
    if (z_this != 0 || z_cd_disk != 0) unsupported(path, "spans several disks");
    if (z_n_disk != z_n_total) unsupported(path, "spans several disks (entries on this disk differ from the total)");
    // The 32-bit fields hold either the value or the all-ones marker that defers to ZIP64.
    if ((n_total != k16 && n_total != z_n_total) || (n_disk != k16 && n_disk != z_n_disk) ||
        (cd_size != k32 && cd_size != z_cd_size) || (cd_offset != k32 && cd_offset != z_cd_offset) ||
        (disk != k16 && disk != 0) || (cd_disk != k16 && cd_disk != 0))
      invalid(path, "the end of central directory record disagrees with the ZIP64 end record");
    r = EndRecords{z_n_total, z_cd_size, z_cd_offset, z_off, true};
  } else {
    if (disk != 0 || cd_disk != 0) unsupported(path, "spans several disks (disk " + num(disk) + ")");
    if (n_disk != n_total) unsupported(path, "spans several disks (entries on this disk differ from the total)");
  }
  if (r.cd_offset > r.tail || r.cd_size != r.tail - r.cd_offset)
    invalid(path, "the central directory [" + num(r.cd_offset) + ", +" + num(r.cd_size) + ") does not end where the end records begin (" +
                      num(r.tail) + ")");
  if (r.entries > kMaxZipEntries)
    invalid(path, "the central directory claims " + num(r.entries) + " entries (limit " + num(kMaxZipEntries) + ")");
  if (r.entries > r.cd_size / kCentralBytes)
    invalid(path, "the central directory of " + num(r.cd_size) + " bytes cannot hold " + num(r.entries) + " entries");
  return r;
}

// Finds the data descriptor after an entry's data (flag bit 3): [signature] crc32, then the
// compressed and uncompressed sizes in 4 or 8 bytes each; returns its length, or 0 if none of
// those forms matches the central directory's values within `room` bytes.
uint64_t descriptor_length(const uint8_t* p, uint64_t room, uint32_t crc, uint64_t size) {
  for (int with_sig = 1; with_sig >= 0; --with_sig) {
    for (int wide = 0; wide <= 1; ++wide) {
      const uint64_t len = (with_sig ? 4 : 0) + 4 + (wide ? 16 : 8);
      if (len > room) continue;
      const uint8_t* q = p;
      if (with_sig) {
        if (u32(q) != kDescriptorSig) continue;
        q += 4;
      }
      if (u32(q) != crc) continue;
      const uint64_t c = wide ? u64(q + 4) : u32(q + 4), u = wide ? u64(q + 12) : u32(q + 8);
      if (c == size && u == size) return len;
    }
  }
  return 0;
}

}  // namespace

bool looks_like_zip(const uint8_t* data, uint64_t size) {
  // a local file header, or the end record of an archive with no entries
  return size >= 4 && (u32(data) == kLocalSig || (size >= kEndBytes && u32(data) == kEndSig));
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = std::lower_bound(by_name.begin(), by_name.end(), name,
                             [this](uint32_t i, const std::string& n) { return entries[i].name < n; });
  return it != by_name.end() && entries[*it].name == name ? &entries[*it] : nullptr;
}

ZipArchive parse_zip(const uint8_t* d, uint64_t size, const std::string& path) {
  const EndRecords end = read_end(d, size, path);
  ZipArchive z;
  z.cd_offset = end.cd_offset;
  z.cd_size = end.cd_size;
  z.tail_offset = end.cd_offset;
  z.zip64 = end.zip64;
  z.entries.reserve(static_cast<size_t>(end.entries));
  const uint64_t cd_end = end.cd_offset + end.cd_size;  // = end.tail <= size
  uint64_t at = end.cd_offset;
  for (uint64_t i = 0; i < end.entries; ++i) {
    const std::string where = "central directory entry " + num(i);
    if (cd_end - at < kCentralBytes) invalid(path, where + " runs past the end of the central directory");
    const uint8_t* c = d + at;
    if (u32(c) != kCentralSig) invalid(path, where + ": bad signature at offset " + num(at));
    const uint16_t flags = u16(c + 8), method = u16(c + 10);
    const uint32_t crc = u32(c + 16);
    const uint16_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    const uint64_t record = kCentralBytes + name_len + extra_len + comment_len;
    if (record > cd_end - at) invalid(path, where + " (name, extra field and comment) runs past the end of the central directory");
    if (name_len == 0) invalid(path, where + " has an empty name");
    if (name_len > kMaxZipName) invalid(path, where + " has a name of " + num(name_len) + " bytes (limit " + num(kMaxZipName) + ")");
    ZipEntry e;
    e.name.assign(reinterpret_cast<const char*>(c + kCentralBytes), name_len);
    if (e.name.find('\0') != std::string::npos) invalid(path, where + ": the name contains a NUL byte");
    const std::string ename = "entry " + printable(e.name);
    Zip64Values v{u32(c + 24), u32(c + 20), u32(c + 42), u16(c + 34)};
    read_extra(c + kCentralBytes + name_len, extra_len, &v, true, path, ename + " (central directory)");
    if (flags & 0x0001) unsupported(path, ename + " is encrypted");
    if (flags & 0x0040) unsupported(path, ename + " uses strong encryption");
    if (flags & 0x2000) unsupported(path, ename + " has an encrypted central directory");
    if (method != 0)
      unsupported(path, ename + " is compressed (method " + num(method) + (method == 8 ? ", deflate" : "") +
                            "); only stored (uncompressed) entries are read in place, as torch.save writes them");
    if (v.compressed != v.uncompressed)
      invalid(path, ename + " is stored but its compressed size " + num(v.compressed) + " differs from its size " + num(v.uncompressed));
    if (v.disk != 0) unsupported(path, ename + " starts on disk " + num(v.disk));
    e.size = v.uncompressed;
    e.crc32 = crc;
    e.header_offset = v.offset;

    // The local header: inside the entries' area, agreeing with the central directory.
    const uint64_t lh = v.offset;
    if (lh > end.cd_offset || end.cd_offset - lh < kLocalBytes)
      invalid(path, ename + ": local header offset " + num(lh) + " is not before the central directory at " + num(end.cd_offset));
    const uint8_t* l = d + lh;
    if (u32(l) != kLocalSig) invalid(path, ename + ": no local header at offset " + num(lh));
    const uint16_t l_flags = u16(l + 6), l_method = u16(l + 8), l_name_len = u16(l + 26), l_extra_len = u16(l + 28);
    const uint64_t l_record = kLocalBytes + l_name_len + l_extra_len;
    if (l_record > end.cd_offset - lh) invalid(path, ename + ": local header runs into the central directory");
    if (l_name_len != name_len || std::memcmp(l + kLocalBytes, c + kCentralBytes, name_len) != 0)
      invalid(path, ename + ": the local header names a different entry");
    if (l_method != method) invalid(path, ename + ": the local header's compression method differs from the central directory's");
    if ((l_flags & 0x0009) != (flags & 0x0009))
      invalid(path, ename + ": the local header's flags (encryption, data descriptor) differ from the central directory's");
    Zip64Values lv{u32(l + 22), u32(l + 18), 0, 0};
    read_extra(l + kLocalBytes + l_name_len, l_extra_len, &lv, false, path, ename + " (local header)");
    const uint32_t l_crc = u32(l + 14);
    const bool deferred = (flags & 0x0008) != 0;  // sizes and CRC in a data descriptor after the data
    auto agrees = [&](uint32_t lc, uint64_t lcomp, uint64_t lunc) {
      return lc == crc && lcomp == e.size && lunc == e.size;
    };
    if (!deferred ? !agrees(l_crc, lv.compressed, lv.uncompressed)
                  : !(agrees(l_crc, lv.compressed, lv.uncompressed) || (l_crc == 0 && lv.compressed == 0 && lv.uncompressed == 0)))
      invalid(path, ename + ": the local header's CRC or sizes differ from the central directory's");
    e.data_offset = lh + l_record;
    if (e.size > end.cd_offset - e.data_offset)
      invalid(path, ename + ": its " + num(e.size) + " bytes of data at offset " + num(e.data_offset) + " run into the central directory at " +
                        num(end.cd_offset));
    e.end = e.data_offset + e.size;
    if (deferred) {
      const uint64_t len = descriptor_length(d + e.end, end.cd_offset - e.end, crc, e.size);
      if (len == 0) invalid(path, ename + ": no data descriptor agreeing with the central directory after its data");
      e.end += len;
    }
    z.entries.push_back(std::move(e));
    at += record;
  }
  if (at != cd_end) invalid(path, num(cd_end - at) + " bytes after the last central directory entry");

  // Records may not overlap one another (they are all before the central directory).
  std::vector<uint32_t> by_offset(z.entries.size());
  for (uint32_t i = 0; i < by_offset.size(); ++i) by_offset[i] = i;
  std::sort(by_offset.begin(), by_offset.end(),
            [&](uint32_t a, uint32_t b) { return z.entries[a].header_offset < z.entries[b].header_offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const ZipEntry& prev = z.entries[by_offset[k - 1]];
    const ZipEntry& next = z.entries[by_offset[k]];
    if (next.header_offset < prev.end)
      invalid(path, "entry " + printable(next.name) + " at offset " + num(next.header_offset) + " overlaps entry " + printable(prev.name) +
                        " [" + num(prev.header_offset) + ", " + num(prev.end) + ")");
  }
  z.by_name.resize(z.entries.size());
  for (uint32_t i = 0; i < z.by_name.size(); ++i) z.by_name[i] = i;
  std::sort(z.by_name.begin(), z.by_name.end(), [&](uint32_t a, uint32_t b) { return z.entries[a].name < z.entries[b].name; });
  for (size_t k = 1; k < z.by_name.size(); ++k)
    if (z.entries[z.by_name[k]].name == z.entries[z.by_name[k - 1]].name)
      invalid(path, "entry " + printable(z.entries[z.by_name[k]].name) + " appears twice");
  return z;
}

}  // namespace mother
