#include "workers/models/pickle_reader.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace clisc::pickle {
namespace {

std::string Hex(uint8_t byte) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", byte);
  return buf;
}

ValuePtr Make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

class Machine {
 public:
  Machine(std::string_view data, size_t offset, const Hooks& hooks, std::string_view source)
      : data_(data), pos_(offset), hooks_(hooks), source_(source) {}

  StatusOr<Unpickled> Run() {
    while (true) {
      const size_t at = pos_;
      if (pos_ >= data_.size()) return Truncated(at, "pickle ends before its STOP opcode");
      const uint8_t op = static_cast<uint8_t>(data_[pos_++]);
      if (op == '.') {  // STOP
        if (stack_.size() != 1) return Malformed(at, "STOP with a stack that is not one value");
        return Unpickled{stack_.back(), pos_};
      }
      RETURN_IF_ERROR(Step(op, at));
    }
  }

 private:
  Status Step(uint8_t op, size_t at) {
    switch (op) {
      case 0x80: {  // PROTO
        ASSIGN_OR_RETURN(uint64_t version, ReadUint(1, at));
        if (version > 5) return Malformed(at, "pickle protocol " + std::to_string(version));
        return OkStatus();
      }
      case 0x95:  // FRAME (protocol 4): an 8-byte length; frames need no special handling here
        return ReadUint(8, at).status();
      case '}':  // EMPTY_DICT
        return Push(Make(Value::Kind::kDict));
      case ']':  // EMPTY_LIST
        return Push(Make(Value::Kind::kList));
      case ')':  // EMPTY_TUPLE
        return Push(Make(Value::Kind::kTuple));
      case '(':  // MARK
        marks_.push_back(stack_.size());
        return OkStatus();
      case 'N':  // NONE
        return Push(MakeNone());
      case 0x88:    // NEWTRUE
      case 0x89: {  // NEWFALSE
        auto v = Make(Value::Kind::kBool);
        v->boolean = op == 0x88;
        return Push(v);
      }
      case 'J': {  // BININT
        ASSIGN_OR_RETURN(uint64_t raw, ReadUint(4, at));
        return Push(MakeInt(static_cast<int32_t>(static_cast<uint32_t>(raw))));
      }
      case 'K':    // BININT1
      case 'M': {  // BININT2
        ASSIGN_OR_RETURN(uint64_t raw, ReadUint(op == 'K' ? 1 : 2, at));
        return Push(MakeInt(static_cast<int64_t>(raw)));
      }
      case 0x8a:  // LONG1
        return Long1(at);
      case 'G':  // BINFLOAT: big-endian IEEE double
        return BinFloat(at);
      case 'X':    // BINUNICODE
      case 0x8c:   // SHORT_BINUNICODE
      case 'T':    // BINSTRING
      case 'U': {  // SHORT_BINSTRING
        const bool is_short = op == 0x8c || op == 'U';
        ASSIGN_OR_RETURN(uint64_t n, ReadUint(is_short ? 1 : 4, at));
        ASSIGN_OR_RETURN(std::string_view s, ReadBytes(n, at));
        return Push(MakeString(std::string(s)));
      }
      case 'B':    // BINBYTES
      case 'C': {  // SHORT_BINBYTES
        ASSIGN_OR_RETURN(uint64_t n, ReadUint(op == 'C' ? 1 : 4, at));
        ASSIGN_OR_RETURN(std::string_view s, ReadBytes(n, at));
        auto v = Make(Value::Kind::kBytes);
        v->text = std::string(s);
        return Push(v);
      }
      case 't': {  // TUPLE
        ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark(at));
        auto v = Make(Value::Kind::kTuple);
        v->items = std::move(items);
        return Push(v);
      }
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        const size_t n = op - 0x84;
        if (stack_.size() < n + CurrentMark())
          return Malformed(at, "TUPLE" + std::to_string(n) + " on a short stack");
        auto v = Make(Value::Kind::kTuple);
        v->items.assign(stack_.end() - n, stack_.end());
        stack_.resize(stack_.size() - n);
        return Push(v);
      }
      case 'c':  // GLOBAL
        return Global(at);
      case 'R':  // REDUCE
        return Reduce(at);
      case 'b':  // BUILD
        return Build(at);
      case 'q':    // BINPUT
      case 'r': {  // LONG_BINPUT
        ASSIGN_OR_RETURN(uint64_t index, ReadUint(op == 'q' ? 1 : 4, at));
        if (stack_.empty()) return Malformed(at, "BINPUT on an empty stack");
        memo_[index] = stack_.back();
        return OkStatus();
      }
      case 0x94:  // MEMOIZE (protocol 4)
        if (stack_.empty()) return Malformed(at, "MEMOIZE on an empty stack");
        memo_[memo_.size()] = stack_.back();
        return OkStatus();
      case 'h':    // BINGET
      case 'j': {  // LONG_BINGET
        ASSIGN_OR_RETURN(uint64_t index, ReadUint(op == 'h' ? 1 : 4, at));
        auto it = memo_.find(index);
        if (it == memo_.end())
          return Malformed(at, "memo index " + std::to_string(index) + " was never stored");
        return Push(it->second);
      }
      case 's': {  // SETITEM
        if (stack_.size() < 3 + CurrentMark()) return Malformed(at, "SETITEM on a short stack");
        ValuePtr value = Pop(), key = Pop();
        return SetItems(stack_.back(), {key, value}, at);
      }
      case 'u': {  // SETITEMS
        ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark(at));
        if (stack_.empty()) return Malformed(at, "SETITEMS with no dict below its mark");
        return SetItems(stack_.back(), items, at);
      }
      case 'a': {  // APPEND
        if (stack_.size() < 2 + CurrentMark()) return Malformed(at, "APPEND on a short stack");
        ValuePtr item = Pop();
        return Append(stack_.back(), {item}, at);
      }
      case 'e': {  // APPENDS
        ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark(at));
        if (stack_.empty()) return Malformed(at, "APPENDS with no list below its mark");
        return Append(stack_.back(), items, at);
      }
      case 'Q': {  // BINPERSID
        if (stack_.size() < 1 + CurrentMark()) return Malformed(at, "BINPERSID on an empty stack");
        ValuePtr pid = Pop();
        if (!hooks_.persistent_load) return Malformed(at, "persistent id without a loader");
        ASSIGN_OR_RETURN(ValuePtr v, hooks_.persistent_load(*pid));
        return Push(v);
      }
      default:
        return Status(StatusCode::kUnimplemented, std::string(source_) +
                                                      ": unsupported pickle opcode " + Hex(op) +
                                                      " at offset " + std::to_string(at));
    }
  }

  Status Push(ValuePtr v) {
    stack_.push_back(std::move(v));
    return OkStatus();
  }

  ValuePtr Pop() {
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }

  // The stack below the innermost MARK belongs to the enclosing frame; opcodes must not eat it.
  size_t CurrentMark() const { return marks_.empty() ? 0 : marks_.back(); }

  StatusOr<std::vector<ValuePtr>> PopToMark(size_t at) {
    if (marks_.empty()) return Malformed(at, "opcode needs a MARK and there is none");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }

  Status SetItems(const ValuePtr& target, const std::vector<ValuePtr>& items, size_t at) {
    if (target->kind != Value::Kind::kDict) {
      return Malformed(at, "SETITEM(S) on a " + std::string(KindName(target->kind)));
    }
    if (items.size() % 2 != 0) return Malformed(at, "SETITEMS with an odd number of values");
    for (size_t i = 0; i < items.size(); i += 2)
      target->entries.emplace_back(items[i], items[i + 1]);
    return OkStatus();
  }

  Status Append(const ValuePtr& target, const std::vector<ValuePtr>& items, size_t at) {
    if (target->kind != Value::Kind::kList) {
      return Malformed(at, "APPEND(S) on a " + std::string(KindName(target->kind)));
    }
    target->items.insert(target->items.end(), items.begin(), items.end());
    return OkStatus();
  }

  Status Long1(size_t at) {
    ASSIGN_OR_RETURN(uint64_t n, ReadUint(1, at));
    ASSIGN_OR_RETURN(std::string_view bytes, ReadBytes(n, at));
    if (n > 8) {
      auto v = Make(Value::Kind::kBigInt);
      v->text = std::string(bytes);
      return Push(v);
    }
    uint64_t raw = 0;
    for (size_t i = 0; i < n; ++i) raw |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(bytes[n - 1]) & 0x80))
      raw |= ~uint64_t{0} << (8 * n);
    return Push(MakeInt(static_cast<int64_t>(raw)));
  }

  Status BinFloat(size_t at) {
    ASSIGN_OR_RETURN(std::string_view bytes, ReadBytes(8, at));
    uint64_t raw = 0;
    for (char c : bytes) raw = (raw << 8) | static_cast<uint8_t>(c);
    auto v = Make(Value::Kind::kFloat);
    std::memcpy(&v->real, &raw, sizeof(raw));
    return Push(v);
  }

  Status Global(size_t at) {
    ASSIGN_OR_RETURN(std::string module, ReadLine(at));
    ASSIGN_OR_RETURN(std::string name, ReadLine(at));
    auto v = Make(Value::Kind::kGlobal);
    v->text = module + "." + name;
    return Push(v);
  }

  Status Reduce(size_t at) {
    if (stack_.size() < 2 + CurrentMark()) return Malformed(at, "REDUCE on a short stack");
    ValuePtr args = Pop(), callable = Pop();
    if (args->kind != Value::Kind::kTuple) return Malformed(at, "REDUCE arguments are not a tuple");
    if (!hooks_.reduce) return Malformed(at, "REDUCE without a handler");
    auto result = hooks_.reduce(*callable, *args);
    if (!result.ok()) return result.status().WithContext(Where(at));
    return Push(*result);
  }

  // BUILD sets an object's state (OrderedDict's _metadata, a custom class's __dict__). Nothing a
  // checkpoint reader needs lives there, so the state is checked for presence and dropped.
  Status Build(size_t at) {
    if (stack_.size() < 2 + CurrentMark()) return Malformed(at, "BUILD on a short stack");
    Pop();
    return OkStatus();
  }

  StatusOr<uint64_t> ReadUint(size_t n, size_t at) {
    ASSIGN_OR_RETURN(std::string_view bytes, ReadBytes(n, at));
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
    return v;
  }

  StatusOr<std::string_view> ReadBytes(uint64_t n, size_t at) {
    if (n > data_.size() - pos_) return Truncated(at, "pickle ends inside an opcode's argument");
    std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  StatusOr<std::string> ReadLine(size_t at) {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) return Truncated(at, "pickle ends inside a GLOBAL name");
    std::string line(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return line;
  }

  std::string Where(size_t at) const {
    return std::string(source_) + ": pickle offset " + std::to_string(at);
  }
  Status Truncated(size_t at, const std::string& what) const {
    return DataLossError(Where(at) + ": " + what + " (truncated file?)");
  }
  Status Malformed(size_t at, const std::string& what) const {
    return InvalidArgumentError(Where(at) + ": malformed pickle: " + what);
  }

  std::string_view data_;
  size_t pos_;
  const Hooks& hooks_;
  std::string_view source_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
};

}  // namespace

std::string_view KindName(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kBigInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kBytes:
      return "bytes";
    case Value::Kind::kTuple:
      return "tuple";
    case Value::Kind::kList:
      return "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kGlobal:
      return "global";
    case Value::Kind::kObject:
      return "object";
    case Value::Kind::kExtension:
      return "extension";
  }
  return "?";
}

ValuePtr MakeNone() { return Make(Value::Kind::kNone); }

ValuePtr MakeInt(int64_t v) {
  auto p = Make(Value::Kind::kInt);
  p->integer = v;
  return p;
}

ValuePtr MakeString(std::string s) {
  auto p = Make(Value::Kind::kString);
  p->text = std::move(s);
  return p;
}

ValuePtr MakeDict() { return Make(Value::Kind::kDict); }

ValuePtr MakeExtension(std::any extension) {
  auto p = Make(Value::Kind::kExtension);
  p->extension = std::move(extension);
  return p;
}

StatusOr<Unpickled> Unpickle(std::string_view data, size_t offset, const Hooks& hooks,
                             std::string_view source) {
  if (offset > data.size())
    return DataLossError(std::string(source) + ": pickle starts past the end");
  Machine machine(data, offset, hooks, source);
  return machine.Run();
}

}  // namespace clisc::pickle
