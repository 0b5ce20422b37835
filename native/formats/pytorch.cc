#include "pytorch.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "../core/error.h"
#include "../core/json.h"
#include "../core/mapped_file.h"
#include "pickle.h"
#include "reader.h"
#include "zip.h"

namespace mother {

namespace {

using pickle::Kind;
using pickle::Machine;
using pickle::Ref;

// ---- the allow-list -------------------------------------------------------------------------

// What an allow-listed global is. Each is a symbolic tag: the policy below interprets the few
// operations a state dict applies to it (calling a rebuild function, reading a dtype) and no
// other; nothing is looked up in or run by Python.
enum class G : uint8_t {
  OrderedDict,                // collections.OrderedDict: an empty dict (filled by SETITEMS)
  RebuildTensor,              // torch._utils._rebuild_tensor(storage, offset, size, stride)
  RebuildTensorV2,            // ... _v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
  RebuildTensorV3,            // ... _v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])
  RebuildParameter,           // torch._utils._rebuild_parameter(tensor, requires_grad, hooks)
  RebuildParameterWithState,  // ... _with_state(tensor, requires_grad, hooks, state)
  RebuildFromTypeV2,          // torch._tensor._rebuild_from_type_v2(func, type, args, state)
  Size,                       // torch.Size(tuple)
  TensorClass,                // torch.Tensor (as the type argument of _rebuild_from_type_v2)
  ParameterClass,             // torch.nn.parameter.Parameter
  Storage,                    // torch.FloatStorage ... (the storage type in a persistent id)
  Dtype,                      // torch.float32 ...
  Unsupported,                // a torch global mother knows but does not read (quantized, sparse ...)
};

struct GlobalDef {
  std::string name;  // module.name
  G kind;
  DType dtype;       // Storage, Dtype
  const char* why;   // Unsupported
};

const std::vector<GlobalDef>& allow_list() {
  static const std::vector<GlobalDef> defs = [] {
    std::vector<GlobalDef> d;
    auto add = [&](const std::string& name, G kind, DType dtype = DType::U8, const char* why = nullptr) {
      d.push_back(GlobalDef{name, kind, dtype, why});
    };
    add("collections.OrderedDict", G::OrderedDict);
    add("torch._utils._rebuild_tensor", G::RebuildTensor);
    add("torch._utils._rebuild_tensor_v2", G::RebuildTensorV2);
    add("torch._utils._rebuild_tensor_v3", G::RebuildTensorV3);
    add("torch._utils._rebuild_parameter", G::RebuildParameter);
    add("torch._utils._rebuild_parameter_with_state", G::RebuildParameterWithState);
    add("torch._tensor._rebuild_from_type_v2", G::RebuildFromTypeV2);
    add("torch.Size", G::Size);
    add("torch.Tensor", G::TensorClass);
    add("torch.nn.parameter.Parameter", G::ParameterClass);
    const std::pair<const char*, DType> storages[] = {
        {"DoubleStorage", DType::F64}, {"FloatStorage", DType::F32},     {"HalfStorage", DType::F16},
        {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64},   {"IntStorage", DType::I32},
        {"ShortStorage", DType::I16},  {"CharStorage", DType::I8},       {"ByteStorage", DType::U8},
        {"BoolStorage", DType::BOOL},  {"ComplexFloatStorage", DType::C64},
    };
    for (const auto& s : storages) {
      add(std::string("torch.") + s.first, G::Storage, s.second);
      add(std::string("torch.cuda.") + s.first, G::Storage, s.second);  // saved by PyTorch < 1.x from the GPU
    }
    add("torch.storage.UntypedStorage", G::Storage, DType::U8);
    add("torch.UntypedStorage", G::Storage, DType::U8);
    const std::pair<const char*, DType> dtypes[] = {
        {"float64", DType::F64},  {"float32", DType::F32},  {"float16", DType::F16},  {"bfloat16", DType::BF16},
        {"int64", DType::I64},    {"int32", DType::I32},    {"int16", DType::I16},    {"int8", DType::I8},
        {"uint8", DType::U8},     {"uint16", DType::U16},   {"uint32", DType::U32},   {"uint64", DType::U64},
        {"bool", DType::BOOL},    {"complex64", DType::C64}, {"float8_e4m3fn", DType::F8_E4M3},
        {"float8_e5m2", DType::F8_E5M2}, {"float8_e4m3fnuz", DType::F8_E4M3FNUZ},
        {"float8_e5m2fnuz", DType::F8_E5M2FNUZ}, {"float8_e8m0fnu", DType::F8_E8M0},
    };
    for (const auto& t : dtypes) add(std::string("torch.") + t.first, G::Dtype, t.second);
    // Known to torch, not read by mother: refused with ERR_TORCH_UNSUPPORTED and the reason.
    const char* quantized = "quantized tensors are not read";
    for (const char* s : {"QInt8Storage", "QInt32Storage", "QUInt8Storage", "QUInt4x2Storage", "QUInt2x4Storage"}) {
      add(std::string("torch.") + s, G::Unsupported, DType::U8, quantized);
      add(std::string("torch.cuda.") + s, G::Unsupported, DType::U8, quantized);
    }
    for (const char* s : {"qint8", "qint32", "quint8", "quint4x2", "quint2x4"}) add(std::string("torch.") + s, G::Unsupported, DType::U8, quantized);
    add("torch._utils._rebuild_qtensor", G::Unsupported, DType::U8, quantized);
    const char* complex128 = "complex128 tensors are not read (mother has no complex128 dtype)";
    add("torch.ComplexDoubleStorage", G::Unsupported, DType::U8, complex128);
    add("torch.cuda.ComplexDoubleStorage", G::Unsupported, DType::U8, complex128);
    add("torch.complex128", G::Unsupported, DType::U8, complex128);
    add("torch.complex32", G::Unsupported, DType::U8, "complex32 tensors are not read");
    add("torch.float4_e2m1fn_x2", G::Unsupported, DType::U8, "packed float4 tensors are not read");
    for (int b = 1; b <= 7; ++b) {
      add("torch.uint" + std::to_string(b), G::Unsupported, DType::U8, "sub-byte integer tensors are not read");
      add("torch.int" + std::to_string(b), G::Unsupported, DType::U8, "sub-byte integer tensors are not read");
    }
    const char* sparse = "sparse tensors are not read";
    add("torch._utils._rebuild_sparse_tensor", G::Unsupported, DType::U8, sparse);
    add("torch._utils._rebuild_sparse_csr_tensor", G::Unsupported, DType::U8, sparse);
    add("torch._utils._rebuild_nested_tensor", G::Unsupported, DType::U8, "nested tensors are not read");
    add("torch._utils._rebuild_meta_tensor_no_storage", G::Unsupported, DType::U8, "meta tensors have no data");
    add("torch._utils._rebuild_wrapper_subclass", G::Unsupported, DType::U8, "tensor subclasses without a storage are not read");
    const char* device = "tensors of other devices (numpy, XLA, MLC) are not read";
    add("torch._utils._rebuild_device_tensor_from_numpy", G::Unsupported, DType::U8, device);
    add("torch._utils._rebuild_device_tensor_from_cpu_tensor", G::Unsupported, DType::U8, device);
    add("torch._utils._rebuild_xla_tensor", G::Unsupported, DType::U8, device);
    add("torch._utils._rebuild_mlc_tensor", G::Unsupported, DType::U8, device);
    return d;
  }();
  return defs;
}

const std::unordered_map<std::string, uint32_t>& allow_index() {
  static const std::unordered_map<std::string, uint32_t> index = [] {
    std::unordered_map<std::string, uint32_t> m;
    const auto& d = allow_list();
    for (uint32_t i = 0; i < d.size(); ++i) m.emplace(d[i].name, i);
    return m;
  }();
  return index;
}

// ---- the policy: storages and tensors -------------------------------------------------------

constexpr uint32_t kExtStorage = 1;
constexpr uint32_t kExtTensor = 2;
constexpr size_t kMaxRank = 64;
constexpr size_t kMaxKey = 256;
constexpr size_t kMaxName = 4096;
constexpr int kMaxDepth = 64;
constexpr uint64_t kMaxVisits = 1ull << 22;

struct Storage {
  std::string key;
  DType dtype;
  uint64_t numel = 0;   // elements of dtype
  uint64_t bytes = 0;   // numel x itemsize
  int64_t root = -1;    // legacy storage views: the storage this one is a slice of
  uint64_t view_offset = 0;  // elements of dtype into the root
  uint64_t file_offset = 0;  // resolved after unpickling
  bool located = false;
};

struct Tensor {
  uint32_t storage;
  DType dtype;
  uint64_t offset;  // elements of dtype into the storage
  std::vector<uint64_t> shape, stride;
  std::string unreadable;
};

unsigned itemsize(DType d) { return dtype_bits(d) / 8; }

std::string dims(const std::vector<uint64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

class TorchPolicy : public pickle::Policy {
 public:
  explicit TorchPolicy(bool legacy) : legacy_(legacy) {}

  std::vector<Storage> storages;
  std::unordered_map<std::string, uint32_t> storage_by_key;
  std::vector<Tensor> tensors;

  const GlobalDef& def(const Machine& m, Ref r) const { return allow_list()[m.at(r).tag]; }

  uint32_t global(Machine& m, const std::string& module, const std::string& name) override {
    const std::string full = module + "." + name;
    auto it = allow_index().find(full);
    if (it == allow_index().end())
      m.fail(ErrorCode::UnsafePickle, "global " + pickle::printable_name(full) +
                                          " is not in the allow-list of the globals torch uses to rebuild tensors; nothing from the file is imported or run");
    const GlobalDef& d = allow_list()[it->second];
    if (d.kind == G::Unsupported) m.fail(ErrorCode::TorchUnsupported, "global " + d.name + ": " + d.why);
    return it->second;
  }

  Ref reduce(Machine& m, Ref fn, Ref args) override { return call(m, fn, args, 0); }

  Ref newobj(Machine& m, Ref cls, Ref args) override {
    const GlobalDef& d = def(m, cls);
    const auto& a = m.items(args);
    switch (d.kind) {
      case G::OrderedDict:
        if (!a.empty()) break;
        return m.make_list(Kind::Dict, {});
      case G::Size:
        if (a.size() != 1) break;
        return m.make_list(Kind::Tuple, ints(m, a[0], "torch.Size"));
      case G::ParameterClass:
        if (a.empty() || a.size() > 2) break;
        tensor_arg(m, a[0], d.name.c_str());
        if (a.size() == 2) want(m, a[1], Kind::Bool, d.name.c_str(), "requires_grad");
        return a[0];
      default: break;
    }
    m.fail(ErrorCode::PickleInvalid, "NEWOBJ of " + d.name + " with " + std::to_string(a.size()) + " arguments is not interpreted");
  }

  Ref build(Machine& m, Ref inst, Ref state) override {
    const Kind sk = m.at(state).kind;
    const bool state_ok = sk == Kind::None || sk == Kind::Dict || sk == Kind::Tuple;
    const bool dict = m.is(inst, Kind::Dict);
    const bool tensor = m.is(inst, Kind::Ext) && m.at(inst).tag == kExtTensor;
    // An OrderedDict's instance attributes (a state dict's _metadata) and a tensor's Python
    // attributes are not needed: the state is checked for its type and dropped.
    if ((dict || tensor) && state_ok) return inst;
    m.fail(ErrorCode::PickleInvalid, std::string("BUILD of a ") + pickle::kind_name(m.at(inst).kind) + " with a " + pickle::kind_name(sk) +
                                         " state is not interpreted");
  }

  Ref persistent_load(Machine& m, Ref pid) override {
    if (!m.is(pid, Kind::Tuple)) m.fail(ErrorCode::PickleInvalid, std::string("persistent id is a ") + pickle::kind_name(m.at(pid).kind) + ", not a tuple");
    const auto& a = m.items(pid);
    if (a.empty() || !(m.is(a[0], Kind::Str) || m.is(a[0], Kind::Bytes)))
      m.fail(ErrorCode::PickleInvalid, "persistent id without a type name");
    if (m.str(a[0]) != "storage")
      m.fail(ErrorCode::PickleInvalid, "persistent id of type " + quoted(pickle::printable_name(m.str(a[0]))) + " (only storages are read)");
    const size_t n = legacy_ ? 6 : 5;
    if (a.size() != n)
      m.fail(ErrorCode::PickleInvalid, "storage persistent id with " + std::to_string(a.size()) + " fields (" + std::to_string(n) + " expected)");
    if (!m.is(a[1], Kind::Global) || def(m, a[1]).kind != G::Storage)
      m.fail(ErrorCode::PickleInvalid, "storage persistent id: field 2 must be a storage type");
    const DType dtype = def(m, a[1]).dtype;
    const std::string key = key_arg(m, a[2], "storage key");
    key_arg(m, a[3], "storage location");
    const uint64_t numel = count_arg(m, a[4], "storage persistent id", "numel");
    uint32_t root = add_storage(m, key, dtype, numel, -1, 0);
    if (legacy_ && !m.is(a[5], Kind::None)) {
      if (!m.is(a[5], Kind::Tuple) || m.items(a[5]).size() != 3)
        m.fail(ErrorCode::PickleInvalid, "storage persistent id: the view (field 6) must be None or (key, offset, size)");
      const auto& v = m.items(a[5]);
      const std::string vkey = key_arg(m, v[0], "storage view key");
      const uint64_t off = count_arg(m, v[1], "storage view", "offset");
      const uint64_t size = count_arg(m, v[2], "storage view", "size");
      uint64_t end;
      if (__builtin_add_overflow(off, size, &end) || end > numel)
        m.fail(ErrorCode::TorchStorage, "storage view " + quoted(pickle::printable_name(vkey)) + " [" + std::to_string(off) + ", +" +
                                            std::to_string(size) + ") runs past its storage of " + std::to_string(numel) + " elements");
      root = add_storage(m, vkey, dtype, size, root, off);
    }
    return m.make_ext(kExtStorage, root);
  }

 private:
  bool legacy_;

  [[noreturn]] void bad_arg(Machine& m, const char* fn, const char* arg, const char* want, Ref got) {
    m.fail(ErrorCode::PickleInvalid, std::string(fn) + ": " + arg + " must be " + want + ", got a " + pickle::kind_name(m.at(got).kind));
  }
  void want(Machine& m, Ref r, Kind k, const char* fn, const char* arg) {
    if (!m.is(r, k)) bad_arg(m, fn, arg, pickle::kind_name(k), r);
  }
  uint64_t count_arg(Machine& m, Ref r, const char* fn, const char* arg) {
    if (!m.is(r, Kind::Int) || m.at(r).i < 0) bad_arg(m, fn, arg, "a non-negative int below 2^63", r);
    return static_cast<uint64_t>(m.at(r).i);
  }
  std::string key_arg(Machine& m, Ref r, const char* what) {
    if (!(m.is(r, Kind::Str) || m.is(r, Kind::Bytes))) bad_arg(m, "storage persistent id", what, "a string", r);
    const std::string& s = m.str(r);
    if (s.size() > kMaxKey) m.fail(ErrorCode::PickleLimit, std::string(what) + " of " + std::to_string(s.size()) + " bytes");
    return s;
  }
  std::vector<Ref> ints(Machine& m, Ref r, const char* fn) {
    if (!(m.is(r, Kind::Tuple) || m.is(r, Kind::List))) bad_arg(m, fn, "the size", "a tuple of ints", r);
    for (Ref x : m.items(r)) want(m, x, Kind::Int, fn, "each dimension");
    return m.items(r);
  }
  std::vector<uint64_t> dims_arg(Machine& m, Ref r, const char* fn, const char* arg) {
    if (!(m.is(r, Kind::Tuple) || m.is(r, Kind::List))) bad_arg(m, fn, arg, "a tuple of ints", r);
    const auto& items = m.items(r);
    if (items.size() > kMaxRank) m.fail(ErrorCode::PickleLimit, std::string(fn) + ": " + arg + " has " + std::to_string(items.size()) + " dimensions");
    std::vector<uint64_t> out;
    out.reserve(items.size());
    for (Ref x : items) {
      if (!m.is(x, Kind::Int)) bad_arg(m, fn, arg, "a tuple of ints", x);
      if (m.at(x).i < 0) m.fail(ErrorCode::TorchStorage, std::string(fn) + ": negative entry " + std::to_string(m.at(x).i) + " in the " + arg);
      out.push_back(static_cast<uint64_t>(m.at(x).i));
    }
    return out;
  }
  void tensor_arg(Machine& m, Ref r, const char* fn) {
    if (!(m.is(r, Kind::Ext) && m.at(r).tag == kExtTensor)) bad_arg(m, fn, "the data", "a tensor", r);
  }
  void hooks_arg(Machine& m, Ref r, const char* fn) {
    if (!(m.is(r, Kind::Dict) || m.is(r, Kind::None))) bad_arg(m, fn, "backward_hooks", "an OrderedDict", r);
  }

  uint32_t add_storage(Machine& m, const std::string& key, DType dtype, uint64_t numel, int64_t root, uint64_t view_offset) {
    auto it = storage_by_key.find(key);
    if (it != storage_by_key.end()) {
      const Storage& s = storages[it->second];
      if (s.dtype != dtype || s.numel != numel || s.root != root || s.view_offset != view_offset)
        m.fail(ErrorCode::TorchStorage, "storage " + quoted(pickle::printable_name(key)) + " is referenced as " + std::to_string(s.numel) + " x " +
                                            dtype_name(s.dtype) + " and as " + std::to_string(numel) + " x " + dtype_name(dtype) +
                                            (root != s.root || view_offset != s.view_offset ? " (or as a different view)" : ""));
      return it->second;
    }
    Storage s;
    s.key = key;
    s.dtype = dtype;
    s.numel = numel;
    s.root = root;
    s.view_offset = view_offset;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(itemsize(dtype)), &s.bytes))
      m.fail(ErrorCode::TorchStorage, "storage " + quoted(pickle::printable_name(key)) + ": " + std::to_string(numel) + " elements of " +
                                          dtype_name(dtype) + " overflow 64 bits");
    storages.push_back(std::move(s));
    storage_by_key.emplace(key, static_cast<uint32_t>(storages.size() - 1));
    return static_cast<uint32_t>(storages.size() - 1);
  }

  Ref make_tensor(Machine& m, const char* fn, const std::vector<Ref>& a, const DType* dtype, Ref metadata) {
    if (!(m.is(a[0], Kind::Ext) && m.at(a[0]).tag == kExtStorage)) bad_arg(m, fn, "the storage", "a storage (a persistent id)", a[0]);
    Tensor t;
    t.storage = static_cast<uint32_t>(m.at(a[0]).i);
    t.dtype = dtype ? *dtype : storages[t.storage].dtype;
    t.offset = count_arg(m, a[1], fn, "storage_offset");
    t.shape = dims_arg(m, a[2], fn, "size");
    t.stride = dims_arg(m, a[3], fn, "stride");
    if (t.stride.size() != t.shape.size())
      m.fail(ErrorCode::PickleInvalid, std::string(fn) + ": " + std::to_string(t.shape.size()) + " sizes but " + std::to_string(t.stride.size()) + " strides");
    if (metadata != UINT32_MAX && !m.is(metadata, Kind::None)) {
      if (!m.is(metadata, Kind::Dict)) bad_arg(m, fn, "metadata", "a dict", metadata);
      const auto& kv = m.items(metadata);
      std::string set;
      for (size_t i = 0; i + 1 < kv.size(); i += 2) {
        const pickle::Object& v = m.at(kv[i + 1]);
        const bool truthy = (v.kind == Kind::Bool && v.b) || (v.kind == Kind::Int && v.i != 0) || (v.kind != Kind::Bool && v.kind != Kind::Int && v.kind != Kind::None);
        if (truthy) set += (set.empty() ? "" : ", ") + (m.is(kv[i], Kind::Str) ? pickle::printable_name(m.str(kv[i])) : std::string("?"));
      }
      if (!set.empty())
        t.unreadable = "its tensor metadata (" + set + ": a conjugate or negated view) would change its values, and is not applied";
    }
    tensors.push_back(std::move(t));
    return m.make_ext(kExtTensor, static_cast<int64_t>(tensors.size() - 1));
  }

  Ref call(Machine& m, Ref fn, Ref args, int depth) {
    const GlobalDef& d = def(m, fn);
    const auto& a = m.items(args);
    const char* name = d.name.c_str();
    auto arity = [&](size_t lo, size_t hi) {
      if (a.size() < lo || a.size() > hi)
        m.fail(ErrorCode::PickleInvalid, d.name + " called with " + std::to_string(a.size()) + " arguments (" + std::to_string(lo) +
                                             (hi > lo ? " to " + std::to_string(hi) : "") + " expected)");
    };
    switch (d.kind) {
      case G::OrderedDict: {
        arity(0, 1);
        std::vector<Ref> kv;
        if (a.size() == 1) {
          if (!(m.is(a[0], Kind::List) || m.is(a[0], Kind::Tuple))) bad_arg(m, name, "the items", "a list of pairs", a[0]);
          for (Ref p : m.items(a[0])) {
            if (!m.is(p, Kind::Tuple) || m.items(p).size() != 2) bad_arg(m, name, "each item", "a (key, value) pair", p);
            kv.push_back(m.items(p)[0]);
            kv.push_back(m.items(p)[1]);
          }
        }
        return m.make_list(Kind::Dict, std::move(kv));
      }
      case G::Size:
        arity(1, 1);
        return m.make_list(Kind::Tuple, ints(m, a[0], name));
      case G::RebuildTensor:
        arity(4, 4);
        return make_tensor(m, name, a, nullptr, UINT32_MAX);
      case G::RebuildTensorV2:
        arity(6, 7);
        want(m, a[4], Kind::Bool, name, "requires_grad");
        hooks_arg(m, a[5], name);
        return make_tensor(m, name, a, nullptr, a.size() == 7 ? a[6] : UINT32_MAX);
      case G::RebuildTensorV3: {
        arity(7, 8);
        want(m, a[4], Kind::Bool, name, "requires_grad");
        hooks_arg(m, a[5], name);
        if (!m.is(a[6], Kind::Global) || def(m, a[6]).kind != G::Dtype) bad_arg(m, name, "dtype", "a torch dtype", a[6]);
        const DType dt = def(m, a[6]).dtype;
        return make_tensor(m, name, a, &dt, a.size() == 8 ? a[7] : UINT32_MAX);
      }
      case G::RebuildParameter:
      case G::RebuildParameterWithState:
        arity(d.kind == G::RebuildParameter ? 3 : 4, d.kind == G::RebuildParameter ? 3 : 4);
        tensor_arg(m, a[0], name);
        want(m, a[1], Kind::Bool, name, "requires_grad");
        hooks_arg(m, a[2], name);
        return a[0];
      case G::RebuildFromTypeV2: {
        arity(4, 4);
        if (depth > 0) m.fail(ErrorCode::PickleInvalid, d.name + " nested in itself");
        if (!m.is(a[0], Kind::Global)) bad_arg(m, name, "func", "a tensor rebuild function", a[0]);
        const G f = def(m, a[0]).kind;
        if (f != G::RebuildTensor && f != G::RebuildTensorV2 && f != G::RebuildTensorV3 && f != G::RebuildParameter &&
            f != G::RebuildParameterWithState)
          m.fail(ErrorCode::PickleInvalid, d.name + ": func " + def(m, a[0]).name + " is not a tensor rebuild function");
        if (!m.is(a[1], Kind::Global) || (def(m, a[1]).kind != G::TensorClass && def(m, a[1]).kind != G::ParameterClass))
          bad_arg(m, name, "the type", "torch.Tensor or torch.nn.parameter.Parameter", a[1]);
        if (!m.is(a[2], Kind::Tuple)) bad_arg(m, name, "args", "a tuple", a[2]);
        if (!(m.is(a[3], Kind::None) || m.is(a[3], Kind::Dict))) bad_arg(m, name, "the state", "a dict", a[3]);
        const Ref r = call(m, a[0], a[2], depth + 1);
        tensor_arg(m, r, name);
        return r;
      }
      case G::TensorClass:
      case G::ParameterClass:
      case G::Storage:
      case G::Dtype:
      case G::Unsupported:
        break;
    }
    m.fail(ErrorCode::PickleInvalid, "REDUCE of " + d.name + " is not interpreted (it is not a function that rebuilds tensors)");
  }
};

// ---- from the object to named tensors --------------------------------------------------------

struct Found {
  std::string name;
  uint32_t tensor;
};

class Walker {
 public:
  Walker(const Machine& m, std::vector<Found>& out) : m_(m), out_(out) {}

  void walk(Ref r, const std::string& name, int depth, const std::string& bad_key) {
    if (++visits_ > kMaxVisits) m_.fail(ErrorCode::PickleLimit, "the object has more than " + std::to_string(kMaxVisits) + " values to visit");
    const pickle::Object& o = m_.at(r);
    if (o.kind == Kind::Ext && o.tag == kExtTensor) {
      if (!bad_key.empty()) m_.fail(ErrorCode::TorchFormat, "a tensor under " + bad_key + ": tensor names need str or int keys");
      if (name.empty()) m_.fail(ErrorCode::TorchFormat, "the checkpoint is a single tensor, not a dict of tensors");
      out_.push_back(Found{name, static_cast<uint32_t>(o.i)});
      return;
    }
    if (o.kind != Kind::Dict && o.kind != Kind::List && o.kind != Kind::Tuple) return;  // other values are not weights
    if (depth >= kMaxDepth) m_.fail(ErrorCode::PickleLimit, "containers nested more than " + std::to_string(kMaxDepth) + " deep");
    if (std::find(path_.begin(), path_.end(), r) != path_.end())
      m_.fail(ErrorCode::PickleInvalid, "the object contains itself (at " + (name.empty() ? std::string("the top") : quoted(name)) + ")");
    path_.push_back(r);
    const auto& items = m_.items(r);
    auto join = [&](const std::string& part) {
      std::string n = name.empty() ? part : name + "." + part;
      if (n.size() > kMaxName) m_.fail(ErrorCode::PickleLimit, "a tensor name longer than " + std::to_string(kMaxName) + " bytes");
      return n;
    };
    if (o.kind == Kind::Dict) {
      for (size_t i = 0; i + 1 < items.size(); i += 2) {
        const pickle::Object& k = m_.at(items[i]);
        std::string part, bad = bad_key;
        size_t bad_at = 0;
        if (k.kind == Kind::Str) part = m_.str(items[i]);
        else if (k.kind == Kind::Bytes && json::valid_utf8(m_.str(items[i]).data(), m_.str(items[i]).size(), &bad_at)) part = m_.str(items[i]);
        else if (k.kind == Kind::Int) part = std::to_string(k.i);
        else if (bad.empty()) bad = "a dict key of type " + std::string(pickle::kind_name(k.kind)) + (name.empty() ? "" : " in " + quoted(name));
        walk(items[i + 1], bad.empty() ? join(part) : name, depth + 1, bad);
      }
    } else {
      for (size_t i = 0; i < items.size(); ++i) walk(items[i], join(std::to_string(i)), depth + 1, bad_key);
    }
    path_.pop_back();
  }

 private:
  const Machine& m_;
  std::vector<Found>& out_;
  std::vector<Ref> path_;
  uint64_t visits_ = 0;
};

std::vector<Found> named_tensors(const Machine& m, Ref root) {
  const Kind k = m.at(root).kind;
  if (k != Kind::Dict && k != Kind::List && k != Kind::Tuple && !(k == Kind::Ext && m.at(root).tag == kExtTensor))
    m.fail(ErrorCode::TorchFormat, std::string("the checkpoint holds a value of type ") + pickle::kind_name(k) + ", not a dict of tensors");
  std::vector<Found> out;
  Walker(m, out).walk(root, "", 0, "");
  return out;
}

// Views of the named tensors, once every storage has a file offset (storage_bytes: the bytes
// the storage has; file offsets checked against [0, file_size) by the caller's layout).
std::vector<TorchTensorInfo> views(const TorchPolicy& p, const std::vector<Found>& found, const std::string& path) {
  std::vector<TorchTensorInfo> out;
  out.reserve(found.size());
  std::vector<std::pair<std::string, uint32_t>> names;
  names.reserve(found.size());
  for (uint32_t i = 0; i < found.size(); ++i) names.emplace_back(found[i].name, i);
  std::sort(names.begin(), names.end());
  for (size_t i = 1; i < names.size(); ++i)
    if (names[i].first == names[i - 1].first)
      fail(ErrorCode::DuplicateTensor, path, names[i].first, "the checkpoint holds two tensors of this name");
  for (const Found& f : found) {
    const Tensor& t = p.tensors[f.tensor];
    const Storage& s = p.storages[t.storage];
    const uint64_t item = itemsize(t.dtype);
    TorchTensorInfo v;
    v.name = f.name;
    v.dtype = t.dtype;
    v.shape = t.shape;
    v.unreadable = t.unreadable;
    uint64_t count = 1;
    for (uint64_t d : t.shape)
      if (__builtin_mul_overflow(count, d, &count)) fail(ErrorCode::ShapeOverflow, path, f.name, "the product of the shape overflows 64 bits");
    uint64_t start;
    if (__builtin_mul_overflow(t.offset, item, &start) || start > s.bytes)
      fail(ErrorCode::TorchStorage, path, f.name,
           "storage offset " + std::to_string(t.offset) + " is past the end of its storage " + quoted(pickle::printable_name(s.key)) + " of " +
               std::to_string(s.bytes) + " bytes");
    v.count = count;
    v.offset = s.file_offset + start;
    if (count == 0) {
      v.bytes = 0;
    } else {
      // The last element it touches: offset + sum (size - 1) x stride.
      uint64_t last = t.offset;
      for (size_t d = 0; d < t.shape.size(); ++d) {
        uint64_t step;
        if (__builtin_mul_overflow(t.shape[d] - 1, t.stride[d], &step) || __builtin_add_overflow(last, step, &last))
          fail(ErrorCode::TorchStorage, path, f.name, "sizes x strides overflow 64 bits");
      }
      uint64_t end;
      if (__builtin_add_overflow(last, 1, &end) || __builtin_mul_overflow(end, item, &end) || end > s.bytes)
        fail(ErrorCode::TorchStorage, path, f.name,
             "shape " + dims(t.shape) + " with strides " + dims(t.stride) + " at storage offset " + std::to_string(t.offset) + " (" +
                 dtype_name(t.dtype) + ") runs past the end of its storage " + quoted(pickle::printable_name(s.key)) + " of " +
                 std::to_string(s.bytes) + " bytes");
      bool contiguous = true;
      uint64_t expect = 1;
      for (size_t d = t.shape.size(); d-- > 0;) {
        if (t.shape[d] != 1 && t.stride[d] != expect) contiguous = false;
        expect *= t.shape[d];  // cannot overflow: the product of the shape fits
      }
      v.bytes = end - start;
      if (!contiguous && v.unreadable.empty())
        v.unreadable = "not contiguous in its storage (shape " + dims(t.shape) + ", strides " + dims(t.stride) +
                       ": a transposed, sliced or expanded view); mother reads tensors stored in row-major order only (save it with .contiguous())";
    }
    out.push_back(std::move(v));
  }
  std::stable_sort(out.begin(), out.end(), [](const TorchTensorInfo& a, const TorchTensorInfo& b) { return a.offset < b.offset; });
  return out;
}

// ---- the two layouts ------------------------------------------------------------------------

// 0x1950a86a20f9469cfc6c, the legacy format's magic number, as LONG1 stores it (little-endian).
const uint8_t kMagic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocol = 1001;

// The first opcodes of the magic-number pickle: PROTO n, [FRAME len,] LONG1 10 <magic>.
bool legacy_magic(const uint8_t* d, uint64_t size) {
  uint64_t at = 0;
  if (size < 2 || d[0] != 0x80 || d[1] < 2 || d[1] > 5) return false;
  at = 2;
  if (at < size && d[at] == 0x95) at += 9;
  return size >= at + 12 && d[at] == 0x8a && d[at + 1] == 10 && std::memcmp(d + at + 2, kMagic, 10) == 0;
}

bool tar_magic(const uint8_t* d, uint64_t size) { return size >= 262 && std::memcmp(d + 257, "ustar", 5) == 0; }

const pickle::Object* dict_get(const Machine& m, Ref dict, const char* key, Ref* out) {
  const auto& kv = m.items(dict);
  for (size_t i = 0; i + 1 < kv.size(); i += 2)
    if (m.is(kv[i], Kind::Str) && m.str(kv[i]) == key) {
      *out = kv[i + 1];
      return &m.at(kv[i + 1]);
    }
  return nullptr;
}

std::string small_text(const uint8_t* p, uint64_t n) {
  std::string s(reinterpret_cast<const char*>(p), static_cast<size_t>(n < 64 ? n : 64));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return pickle::printable_name(s);
}

TorchCheckpoint parse_zip_layout(const uint8_t* d, uint64_t size, const std::string& path) {
  const ZipArchive z = parse_zip(d, size, path);
  if (z.entries.empty()) fail(ErrorCode::TorchFormat, path, "", "the ZIP archive is empty: not a torch.save checkpoint");
  const std::string& first = z.entries.front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos)
    fail(ErrorCode::TorchFormat, path, "", "the first entry " + quoted(pickle::printable_name(first)) + " is not inside a folder: not a torch.save archive");
  const std::string prefix = first.substr(0, slash + 1);
  const ZipEntry* pkl = z.find(prefix + "data.pkl");
  if (!pkl) {
    const bool script = z.find(prefix + "constants.pkl") != nullptr;
    fail(ErrorCode::TorchFormat, path, "",
         "no " + quoted(pickle::printable_name(prefix + "data.pkl")) + " in the archive: not a torch.save checkpoint" +
             (script ? " (a TorchScript archive?)" : ""));
  }
  TorchCheckpoint c;
  c.layout = "zip";
  c.metadata.emplace_back("torch.layout", "zip");
  c.metadata.emplace_back("torch.archive", pickle::printable_name(prefix.substr(0, slash)));
  if (const ZipEntry* bo = z.find(prefix + "byteorder")) {
    const std::string order = small_text(d + bo->data_offset, bo->size);
    if (order == "big") fail(ErrorCode::TorchUnsupported, path, "", "the checkpoint was written on a big-endian machine (byteorder \"big\")");
    if (order != "little") fail(ErrorCode::TorchFormat, path, "", "byteorder record " + quoted(order) + " (\"little\" or \"big\" expected)");
  }
  if (const ZipEntry* ver = z.find(prefix + "version")) c.metadata.emplace_back("torch.version", small_text(d + ver->data_offset, ver->size));

  TorchPolicy policy(false);
  Machine m(policy, path, pickle::printable_name(pkl->name));
  uint64_t used = 0;
  const Ref root = m.load(d + pkl->data_offset, pkl->size, &used);
  if (used != pkl->size) m.fail(ErrorCode::PickleInvalid, std::to_string(pkl->size - used) + " bytes after the STOP opcode");
  c.header_bytes = pkl->size;
  const std::vector<Found> found = named_tensors(m, root);
  for (Storage& s : policy.storages) {
    const std::string entry = prefix + "data/" + s.key;
    const ZipEntry* e = z.find(entry);
    if (!e)
      fail(ErrorCode::TorchStorage, path, "", "storage " + quoted(pickle::printable_name(s.key)) + " has no entry " +
                                                  quoted(pickle::printable_name(entry)) + " in the archive");
    if (e->size != s.bytes)
      fail(ErrorCode::TorchStorage, path, "",
           "storage " + quoted(pickle::printable_name(s.key)) + " is " + std::to_string(s.numel) + " x " + dtype_name(s.dtype) + " = " +
               std::to_string(s.bytes) + " bytes, but its entry holds " + std::to_string(e->size));
    s.file_offset = e->data_offset;
    s.located = true;
  }
  c.tensors = views(policy, found, path);
  return c;
}

TorchCheckpoint parse_legacy_layout(const uint8_t* d, uint64_t size, const std::string& path) {
  TorchCheckpoint c;
  c.layout = "legacy";
  c.metadata.emplace_back("torch.layout", "legacy");
  TorchPolicy policy(true);
  uint64_t at = 0;
  auto next = [&](Machine& m) {
    uint64_t used = 0;
    const Ref r = m.load(d + at, size - at, &used);
    at += used;
    return r;
  };
  {
    Machine m(policy, path, "the magic number pickle");
    const Ref r = next(m);
    if (!m.is(r, Kind::BigInt) || m.str(r) != std::string(reinterpret_cast<const char*>(kMagic), 10))
      fail(ErrorCode::TorchFormat, path, "", "the first pickle is not the magic number 0x1950a86a20f9469cfc6c");
  }
  {
    Machine m(policy, path, "the protocol version pickle");
    const Ref r = next(m);
    if (!m.is(r, Kind::Int) || m.at(r).i != kLegacyProtocol)
      fail(ErrorCode::TorchFormat, path, "", "protocol version " + (m.is(r, Kind::Int) ? std::to_string(m.at(r).i) : std::string("(not an int)")) +
                                                 " (1001 expected)");
  }
  {
    Machine m(policy, path, "the system info pickle");
    const Ref r = next(m);
    Ref v = 0;
    if (!m.is(r, Kind::Dict)) fail(ErrorCode::TorchFormat, path, "", "the system info is not a dict");
    const pickle::Object* le = dict_get(m, r, "little_endian", &v);
    if (!le || le->kind != Kind::Bool) fail(ErrorCode::TorchFormat, path, "", "the system info has no little_endian flag");
    if (!le->b) fail(ErrorCode::TorchUnsupported, path, "", "the checkpoint was written on a big-endian machine");
  }
  Machine m(policy, path, "the object pickle");
  const uint64_t object_start = at;
  const Ref root = next(m);
  c.header_bytes = at - object_start;
  const std::vector<Found> found = named_tensors(m, root);
  {
    Machine k(policy, path, "the storage keys pickle");
    const Ref keys = next(k);
    if (!(k.is(keys, Kind::List) || k.is(keys, Kind::Tuple))) fail(ErrorCode::TorchFormat, path, "", "the storage keys are not a list");
    std::vector<char> listed(policy.storages.size(), 0);
    for (Ref kr : k.items(keys)) {
      if (!(k.is(kr, Kind::Str) || k.is(kr, Kind::Bytes))) fail(ErrorCode::TorchFormat, path, "", "a storage key is not a string");
      const std::string& key = k.str(kr);
      auto it = policy.storage_by_key.find(key);
      if (it == policy.storage_by_key.end() || policy.storages[it->second].root >= 0)
        fail(ErrorCode::TorchStorage, path, "", "storage key " + quoted(pickle::printable_name(key)) + " is listed but no tensor refers to it");
      if (listed[it->second]) fail(ErrorCode::TorchStorage, path, "", "storage key " + quoted(pickle::printable_name(key)) + " is listed twice");
      listed[it->second] = 1;
      Storage& s = policy.storages[it->second];
      // A storage record: its element count (int64, little-endian), then its bytes.
      if (size - at < 8) fail(ErrorCode::Truncated, path, "", "file is truncated: the record of storage " + quoted(pickle::printable_name(key)) + " is missing");
      uint64_t n = 0;
      for (int b = 7; b >= 0; --b) n = (n << 8) | d[at + b];
      if (n != s.numel)
        fail(ErrorCode::TorchStorage, path, "", "the record of storage " + quoted(pickle::printable_name(key)) + " holds " +
                                                    std::to_string(static_cast<int64_t>(n)) + " elements, its persistent id says " + std::to_string(s.numel));
      at += 8;
      if (s.bytes > size - at)
        fail(ErrorCode::Truncated, path, "", "file is truncated: storage " + quoted(pickle::printable_name(key)) + " needs " + std::to_string(s.bytes) +
                                                 " bytes, the file has " + std::to_string(size - at) + " left");
      s.file_offset = at;
      s.located = true;
      at += s.bytes;
    }
    for (size_t i = 0; i < policy.storages.size(); ++i)
      if (policy.storages[i].root < 0 && !listed[i])
        fail(ErrorCode::TorchStorage, path, "", "storage " + quoted(pickle::printable_name(policy.storages[i].key)) + " is used but not in the storage list");
  }
  if (at != size) fail(ErrorCode::TrailingBytes, path, "", std::to_string(size - at) + " trailing bytes after the last storage");
  for (Storage& s : policy.storages)
    if (s.root >= 0) {
      const Storage& r = policy.storages[static_cast<size_t>(s.root)];
      s.file_offset = r.file_offset + s.view_offset * itemsize(r.dtype);  // within the root: checked at the persistent id
      s.located = true;
    }
  c.tensors = views(policy, found, path);
  return c;
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::string basename_of(const std::string& p) {
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Names that are PyTorch checkpoints whatever their bytes (so that a broken one gets a
// PyTorch error): *.pt, *.pth, *.ckpt, pytorch_model*.bin and diffusion_pytorch_model*.bin.
bool torch_name(const std::string& path) {
  const std::string base = basename_of(path);
  if (ends_with(base, ".pt") || ends_with(base, ".pth") || ends_with(base, ".ckpt")) return true;
  return ends_with(base, ".bin") && (base.rfind("pytorch_model", 0) == 0 || base.rfind("diffusion_pytorch_model", 0) == 0);
}

bool claims_pytorch(const std::string& path) {
  if (torch_name(path)) return true;
  // Other names by content: the legacy magic, or a ZIP whose first entry is <folder>/data.pkl
  // (torch.save writes it first) or another record torch.save writes at the top of its folder.
  uint8_t head[512];
  const int fd = open_regular_file(path, true);  // never blocks (a FIFO is refused later, by MappedFile)
  if (fd < 0) return false;
  const ssize_t n = ::pread(fd, head, sizeof head, 0);
  ::close(fd);
  if (n <= 0) return false;
  const uint64_t len = static_cast<uint64_t>(n);
  if (legacy_magic(head, len)) return true;
  if (!looks_like_zip(head, len) || len < 30) return false;
  const uint64_t name_len = head[26] | (head[27] << 8);
  if (30 + name_len > len) return false;
  const std::string first(reinterpret_cast<const char*>(head + 30), static_cast<size_t>(name_len));
  const size_t slash = first.find('/');
  if (slash == std::string::npos) return false;
  const std::string rest = first.substr(slash + 1);
  return rest == "data.pkl" || rest == ".format_version" || rest == ".storage_alignment" || rest == "byteorder" || rest == "version";
}

void open_pytorch(const std::string& path, Model& into) {
  auto map = std::make_shared<MappedFile>(path);
  TorchCheckpoint c = parse_pytorch(map->data(), map->size(), path);
  // Parsing touched the pickle, the ZIP records and the central directory: drop those pages.
  map->release(0, map->size());
  const uint32_t file = static_cast<uint32_t>(into.files.size());
  for (TorchTensorInfo& t : c.tensors) {
    TensorView v;
    v.name = std::move(t.name);
    v.set_plain(t.dtype);
    v.shape = std::move(t.shape);
    v.count = t.count;
    v.file = file;
    v.map = map.get();
    v.offset = t.offset;
    v.bytes = t.bytes;
    v.unreadable = std::move(t.unreadable);
    into.tensors.push_back(std::move(v));
  }
  into.files.push_back(ModelFile{std::move(map), "pytorch", c.header_bytes, std::move(c.metadata)});
}

}  // namespace

bool looks_like_pytorch(const uint8_t* data, uint64_t size) { return looks_like_zip(data, size) || legacy_magic(data, size); }

TorchCheckpoint parse_pytorch(const uint8_t* data, uint64_t size, const std::string& path) {
  if (looks_like_zip(data, size)) return parse_zip_layout(data, size, path);
  if (legacy_magic(data, size)) return parse_legacy_layout(data, size, path);
  if (tar_magic(data, size))
    fail(ErrorCode::TorchUnsupported, path, "", "a tar archive (the checkpoint format of the first PyTorch versions) is not read");
  fail(ErrorCode::TorchFormat, path, "",
       "not a PyTorch checkpoint: neither a ZIP archive (torch.save since 1.6) nor the legacy format (magic number 0x1950a86a20f9469cfc6c)");
}

size_t unpickle_state_dict_for_fuzzing(const uint8_t* data, uint64_t size, const std::string& path) {
  TorchPolicy policy(size > 0 && (data[size - 1] & 1));  // the last byte picks the persistent id form
  Machine m(policy, path, "pickle");
  uint64_t used = 0;
  const Ref root = m.load(data, size, &used);
  const std::vector<Found> found = named_tensors(m, root);
  for (Storage& s : policy.storages) s.located = true;  // at offset 0, with the size the ids state
  return views(policy, found, path).size();
}

extern const Reader kPytorchReader = {"pytorch", claims_pytorch, open_pytorch};

}  // namespace mother
