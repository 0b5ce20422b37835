// The formats mother reads: one line per reader, in the order they are asked to claim a file
// (readers that claim by name before the PyTorch reader, which also claims by content).
#define MOTHER_READERS(X) \
  X(kSafetensorsReader)   \
  X(kOnnxReader)          \
  X(kPytorchReader)       \
  X(kGgufReader)          \
  /* each reader is defined in its format's file */

#include "reader.h"

namespace mother {

#define MOTHER_READER_DECLARE(reader) extern const Reader reader;
MOTHER_READERS(MOTHER_READER_DECLARE)
#undef MOTHER_READER_DECLARE

namespace {
#define MOTHER_READER_ENTRY(reader) &reader,
const Reader* const kReaders[] = {MOTHER_READERS(MOTHER_READER_ENTRY)};
#undef MOTHER_READER_ENTRY
}  // namespace

const Reader* claiming_reader(const std::string& path) {
  for (const Reader* r : kReaders)
    if (r->claims(path)) return r;
  return nullptr;
}

const Reader& reader_for(const std::string& path) {
  if (const Reader* r = claiming_reader(path)) return *r;
  // safetensors has no magic number to claim a file by, and mother read every file given to it
  // as safetensors before there were other formats: a name no reader claims still is.
  return kSafetensorsReader;
}

void open_file(const std::string& path, Model& into) { reader_for(path).open(path, into); }

Model open_model(const std::vector<std::string>& files, const std::string& index_path) {
  Model m;
  if (index_path.empty()) {
    for (const auto& f : files) open_file(f, m);
  } else {
    open_shard_index(index_path, m);
  }
  for (const Reader* r : kReaders)
    if (r->finish) r->finish(m);
  m.index_names();
  return m;
}

}  // namespace mother
