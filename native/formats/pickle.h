// A restricted unpickler: an interpreter of the Python pickle opcodes (protocols 2 to 5) that a
// state dict uses, building a graph of plain values (None, bool, int, float, str, bytes, tuple,
// list, dict) and opaque tags. It never imports or calls anything: a GLOBAL is looked up in the
// policy's allow-list and becomes a symbolic tag (anything else is ERR_UNSAFE_PICKLE, naming
// it), and REDUCE / NEWOBJ / BUILD / persistent ids on tags are interpreted by the policy
// (the PyTorch reader's, native/formats/pytorch.cc), which returns values or tags of its own.
// Every count is bounded: objects, container references, stack, marks, memo, string bytes.
// Opcodes outside the list (and the text opcodes of protocols 0/1) are ERR_PICKLE_INVALID.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/error.h"

namespace mother {
namespace pickle {

using Ref = uint32_t;

enum class Kind : uint8_t {
  None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict,
  Global,  // an allow-listed global: `tag` is the policy's
  Ext,     // a value of the policy's own (a storage, a tensor): `tag` is its kind, `i` its index
};
const char* kind_name(Kind k);

struct Object {
  Kind kind = Kind::None;
  bool b = false;     // Bool
  uint32_t tag = 0;   // Global, Ext
  int64_t i = 0;      // Int; Ext: index
  double f = 0;       // Float
  uint32_t data = 0;  // Str / Bytes / BigInt: index into Machine::strings; Tuple / List / Dict: into Machine::lists
};

struct Limits {
  uint64_t max_bytes = 1ull << 30;    // the pickle itself
  uint64_t max_objects = 1ull << 22;  // values created
  uint64_t max_refs = 1ull << 24;     // references held by tuples, lists and dicts, in all
  uint64_t max_stack = 1ull << 22;    // values on the stack
  uint64_t max_marks = 256;           // open MARKs (nesting of tuples / lists / dicts being built)
  uint64_t max_memo = 1ull << 22;     // memo entries
  uint64_t max_global = 256;          // bytes of a GLOBAL's module or name
  uint64_t max_bigint = 64;           // bytes of a LONG1 / LONG4 beyond 64 bits
};

class Machine;

// What the allow-listed globals mean. Each hook either returns a value or throws Error.
struct Policy {
  virtual ~Policy() = default;
  // The tag of the global module.name, or throws (ERR_UNSAFE_PICKLE for a global outside the
  // allow-list). Called for GLOBAL and STACK_GLOBAL.
  virtual uint32_t global(Machine& m, const std::string& module, const std::string& name) = 0;
  // callable(*args): `callable` is a Global; `args` a Tuple.
  virtual Ref reduce(Machine& m, Ref callable, Ref args) = 0;
  // cls.__new__(cls, *args): `cls` is a Global; `args` a Tuple.
  virtual Ref newobj(Machine& m, Ref cls, Ref args) = 0;
  // inst.__setstate__(state) or the like; returns the object that replaces `inst` (usually inst).
  virtual Ref build(Machine& m, Ref inst, Ref state) = 0;
  // The object a persistent id (BINPERSID) stands for.
  virtual Ref persistent_load(Machine& m, Ref pid) = 0;
};

class Machine {
 public:
  // `path` names the file and `what` the pickle in it (e.g. "archive/data.pkl") in messages.
  Machine(Policy& policy, std::string path, std::string what, Limits limits = Limits());

  // Runs the pickle starting at data[0] up to its STOP; *consumed receives its length in bytes.
  // The bytes after STOP are not read. Throws Error.
  Ref load(const uint8_t* data, uint64_t size, uint64_t* consumed);

  const Object& at(Ref r) const { return objects_[r]; }
  const std::string& str(Ref r) const { return strings_[objects_[r].data]; }  // Str, Bytes, BigInt
  const std::vector<Ref>& items(Ref r) const { return lists_[objects_[r].data]; }  // Tuple, List, Dict (k, v, k, v...)
  bool is(Ref r, Kind k) const { return objects_[r].kind == k; }

  Ref make_none();
  Ref make_bool(bool v);
  Ref make_int(int64_t v);
  Ref make_str(std::string s, Kind kind = Kind::Str);
  Ref make_list(Kind kind, std::vector<Ref> items);  // Tuple, List or Dict
  Ref make_global(uint32_t tag);
  Ref make_ext(uint32_t tag, int64_t index);
  // Appends to a List / Dict (for policies that fill containers).
  void append(Ref container, Ref item);

  [[noreturn]] void fail(ErrorCode code, const std::string& what) const;
  const std::string& path() const { return path_; }
  const std::string& what() const { return what_; }
  uint64_t offset() const { return op_offset_; }  // offset of the opcode being run
  const Limits& limits() const { return limits_; }

 private:
  Ref make(Object o);
  Ref pop();
  Ref top() const;
  std::vector<Ref> pop_to_mark();
  void memo_put(uint64_t index);
  Ref memo_get(uint64_t index);
  void push(Ref r);
  void check_refs(uint64_t more);

  Policy& policy_;
  std::string path_, what_;
  Limits limits_;
  std::vector<Object> objects_;
  std::vector<std::string> strings_;
  std::vector<std::vector<Ref>> lists_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
  uint64_t refs_ = 0;
  uint64_t op_offset_ = 0;
};

// "module.name" of a global as written in a pickle, with bytes that are not printable ASCII
// escaped (\xNN) and cut at 200 characters: safe to print.
std::string printable_name(const std::string& s);

}  // namespace pickle
}  // namespace mother
