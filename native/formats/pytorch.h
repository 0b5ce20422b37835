// PyTorch checkpoints (torch.save): the ZIP layout (PyTorch >= 1.6: <archive>/data.pkl, the
// storages as <archive>/data/<key>, byteorder, version) and the legacy layout (a sequence of
// pickles: magic number, protocol version, system info, the object, the storage keys; then
// each storage as its element count and raw bytes). The object is unpickled by the
// restricted unpickler (pickle.h) with an allow-list of the globals torch uses to rebuild
// tensors: nothing from the file is imported or run. Tensors are views of their storages in
// place (storage offset, sizes, strides; several tensors may share a storage); contiguous
// ones are read, non-contiguous ones are listed with the reason they are not.
// Its Reader (kPytorchReader, registered in registry.cc) claims .pt / .pth / .ckpt and
// pytorch_model*.bin files by name, and other files by their magic bytes.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/dtype.h"

namespace mother {

struct TorchTensorInfo {
  std::string name;             // dotted path of dict keys / list indices in the object
  DType dtype = DType::F32;
  std::vector<uint64_t> shape;
  uint64_t count = 0;           // elements (the product of shape)
  uint64_t offset = 0;          // file offset of element 0 (storage start + storage offset)
  uint64_t bytes = 0;           // contiguous: count x itemsize; else the span its elements touch
  std::string unreadable;       // empty, or why the elements cannot be read in order
};

struct TorchCheckpoint {
  std::string layout;  // "zip" or "legacy"
  std::vector<TorchTensorInfo> tensors;  // by file offset, then object order
  std::vector<std::pair<std::string, std::string>> metadata;
  uint64_t header_bytes = 0;  // bytes of the object pickle
};

// The first bytes of a torch.save ZIP archive or of the legacy layout.
bool looks_like_pytorch(const uint8_t* data, uint64_t size);

// Parses and validates the checkpoint [data, data + size). `path` is used in error messages
// only. Throws Error. (The reader's open() and the fuzz target, native/fuzz/, call it.)
TorchCheckpoint parse_pytorch(const uint8_t* data, uint64_t size, const std::string& path);

// The restricted unpickler with the PyTorch allow-list on a bare pickle, storages resolved
// against nothing (any key is accepted and given the size its persistent id states): for the
// fuzz target. Returns the number of tensors found. Throws Error.
size_t unpickle_state_dict_for_fuzzing(const uint8_t* data, uint64_t size, const std::string& path);

}  // namespace mother
