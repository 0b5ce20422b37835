#include "tensor_view.h"

#include "reader.h"

namespace mother {

const char* view_dtype_name(const TensorView& v) {
  if (v.decode == DecodeKind::AffineU8) return "QUINT8";
  if (v.decode == DecodeKind::AffineI8) return "QINT8";
  return dtype_name(v.dtype);
}

const TensorView* Model::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors[it->second];
}

void Model::index_names() {
  by_name_.clear();
  by_name_.reserve(tensors.size());
  for (uint32_t i = 0; i < tensors.size(); ++i) {
    const TensorView& t = tensors[i];
    auto ins = by_name_.emplace(t.name, i);
    if (!ins.second)
      fail(ErrorCode::DuplicateTensor, files[t.file].path(), t.name,
           "tensor also present in " + files[tensors[ins.first->second].file].path());
  }
}

}  // namespace mother
