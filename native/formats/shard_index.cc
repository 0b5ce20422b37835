// Sharded checkpoints, whatever the shards' format: an index (model.safetensors.index.json and
// the like) whose weight_map must resolve every entry to a tensor present in the named shard.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/json.h"
#include "reader.h"

namespace mother {

namespace {

constexpr uint64_t kMaxIndexBytes = 100000000;  // as the safetensors header cap

std::string dirname_of(const std::string& p) {
  size_t slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

bool safe_relative(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string part = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == ".." || part.empty()) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

std::string read_small_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    throw Error(ErrorCode::FileOpen, path, "", path + ": cannot open: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    const int fd = open_regular_file(path);  // throws Error(NotAFile)
    ::close(fd);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxIndexBytes)
    fail(ErrorCode::IndexInvalid, path, "", "index file is larger than 100,000,000 bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::FileOpen, path, "", path + ": cannot open");
  std::string s(static_cast<size_t>(st.st_size), '\0');
  in.read(&s[0], static_cast<std::streamsize>(s.size()));
  if (static_cast<size_t>(in.gcount()) != s.size()) throw Error(ErrorCode::FileOpen, path, "", path + ": short read");
  return s;
}

}  // namespace

void open_shard_index(const std::string& index_path, Model& into) {
  std::string text = read_small_file(index_path);
  size_t bad = 0;
  if (!json::valid_utf8(text.data(), text.size(), &bad))
    fail(ErrorCode::IndexInvalid, index_path, "", "index is not valid UTF-8 (bad byte at offset " + std::to_string(bad) + ")");
  json::Value root;
  try {
    root = json::parse(text.data(), text.size());
  } catch (const json::ParseError& e) {
    if (e.duplicate_key) {
      // Only a key repeated directly in "weight_map" is a tensor name.
      const std::vector<std::string>& outer = e.path;
      const bool tensor = outer.size() == 1 && outer[0] == "weight_map";
      fail(ErrorCode::DuplicateKey, index_path, tensor ? e.key : "",
           "duplicate key " + quoted(e.key) + (tensor ? " in weight_map" : " in index") + " at offset " +
               std::to_string(e.offset));
    }
    fail(ErrorCode::IndexInvalid, index_path, "", "index is not valid JSON: " + e.message + " at offset " + std::to_string(e.offset));
  }
  const json::Value* wm = root.is_object() ? root.find("weight_map") : nullptr;
  if (!wm || !wm->is_object())
    fail(ErrorCode::IndexInvalid, index_path, "", "index has no \"weight_map\" object");
  // shard name -> tensors the index says it holds, in first-mention order
  std::vector<std::string> shard_order;
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& kv : wm->members) {
    if (!kv.second.is_string())
      fail(ErrorCode::IndexInvalid, index_path, kv.first, "weight_map value must be a shard file name");
    if (!safe_relative(kv.second.text))
      fail(ErrorCode::IndexInvalid, index_path, kv.first,
           "shard name " + quoted(kv.second.text) + " must be a relative path inside the model directory");
    auto it = by_shard.find(kv.second.text);
    if (it == by_shard.end()) {
      shard_order.push_back(kv.second.text);
      it = by_shard.emplace(kv.second.text, std::vector<std::string>{}).first;
    }
    it->second.push_back(kv.first);
  }
  if (shard_order.empty()) fail(ErrorCode::IndexInvalid, index_path, "", "weight_map is empty");
  const std::string dir = dirname_of(index_path);
  for (const auto& shard : shard_order) {
    const std::string shard_path = dir + "/" + shard;
    struct stat st;
    if (::stat(shard_path.c_str(), &st) != 0) {
      const std::string& first = by_shard[shard].front();
      fail(ErrorCode::MissingShard, index_path, first,
           "shard " + quoted(shard) + " named in the weight_map is missing (" + shard_path + ")");
    }
    const size_t first_tensor = into.tensors.size();
    open_file(shard_path, into);
    std::vector<std::string> names;
    names.reserve(into.tensors.size() - first_tensor);
    for (size_t t = first_tensor; t < into.tensors.size(); ++t) names.push_back(into.tensors[t].name);
    std::sort(names.begin(), names.end());
    for (const auto& want : by_shard[shard])
      if (!std::binary_search(names.begin(), names.end(), want))
        fail(ErrorCode::IndexTensorMissing, index_path, want,
             "weight_map puts this tensor in " + quoted(shard) + ", which does not contain it");
  }
}

}  // namespace mother
