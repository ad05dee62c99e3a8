// A strict reader for the subset of Python's pickle format that torch.save writes (protocol 2,
// plus the few protocol-4 opcodes newer writers emit). It builds plain values; what a GLOBAL
// means when called (REDUCE) and what a persistent id refers to (BINPERSID) are left to hooks,
// so this file knows nothing about tensors. Any opcode outside the subset is UNIMPLEMENTED,
// naming the opcode byte and its offset, rather than guessed at.
#pragma once

#include <any>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace clisc::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// A Python object as far as a checkpoint needs one. Containers are shared (the memo and MARK
// may hand out the same list or dict twice), hence ValuePtr everywhere.
struct Value {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kBigInt,  // a LONG1 wider than 64 bits; `text` holds its little-endian bytes
    kFloat,
    kString,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,     // `text` is "module.name"
    kObject,     // the result of calling a global no hook understood; `text` names the global
    kExtension,  // whatever a hook made (a storage, a tensor), in `extension`
  };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;
  std::vector<ValuePtr> items;                         // kTuple, kList
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // kDict, insertion order
  std::any extension;
};

std::string_view KindName(Value::Kind kind);

ValuePtr MakeNone();
ValuePtr MakeInt(int64_t v);
ValuePtr MakeString(std::string s);
ValuePtr MakeDict();
ValuePtr MakeExtension(std::any extension);

struct Hooks {
  // REDUCE: `callable` is usually a kGlobal, `args` a kTuple. May return kObject for globals it
  // does not know; an error aborts the whole read.
  std::function<StatusOr<ValuePtr>(const Value& callable, const Value& args)> reduce;
  // BINPERSID: `pid` is the persistent id (a tuple for torch.save).
  std::function<StatusOr<ValuePtr>(const Value& pid)> persistent_load;
};

struct Unpickled {
  ValuePtr value;
  size_t end = 0;  // offset just past the STOP opcode
};

// Reads one pickle from `data` starting at `offset`. `source` (the file) prefixes every error.
// DATA_LOSS when the bytes end before STOP, UNIMPLEMENTED for an unsupported opcode,
// INVALID_ARGUMENT for a malformed stream (stack underflow, unknown memo index, ...).
StatusOr<Unpickled> Unpickle(std::string_view data, size_t offset, const Hooks& hooks,
                             std::string_view source);

}  // namespace clisc::pickle
