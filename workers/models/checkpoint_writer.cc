#include "workers/models/checkpoint_writer.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <map>
#include <optional>

#include "common/atomic_file.h"

namespace clisc {
namespace {

// Protocol-2 pickle bytes with the memo Python's pickler keeps: GLOBAL and BINUNICODE objects
// are memoized on first use and fetched with BINGET afterwards, so files match Python's.
class Pickler {
 public:
  Pickler() { bytes_ = "\x80\x02"; }

  void Op(const std::string& op) { bytes_ += op; }
  void Put() {
    const uint32_t i = next_memo_++;
    if (i < 256) {
      bytes_ += 'q';
      bytes_ += static_cast<char>(i);
    } else {
      bytes_ += 'r';
      Le(i, 4);
    }
  }
  void Global(const std::string& module, const std::string& name) {
    Memoized("c:" + module + "." + name, [&] { bytes_ += "c" + module + "\n" + name + "\n"; });
  }
  void Str(const std::string& s) {
    Memoized("s:" + s, [&] {
      bytes_ += 'X';
      Le(s.size(), 4);
      bytes_ += s;
    });
  }
  void Int(int64_t v) {
    if (v >= 0 && v < 256) {
      bytes_ += 'K';
      Le(static_cast<uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      bytes_ += 'M';
      Le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      bytes_ += 'J';
      Le(static_cast<uint64_t>(static_cast<uint32_t>(v)), 4);
    } else {
      bytes_ += '\x8a';  // LONG1: 8 bytes, little-endian two's complement
      bytes_ += static_cast<char>(8);
      Le(static_cast<uint64_t>(v), 8);
    }
  }
  // EMPTY_TUPLE (not memoized), TUPLE1..3, or MARK ... TUPLE; then memoized, as Python does.
  void IntTuple(const std::vector<int64_t>& v) {
    if (v.empty()) return Op(")");
    if (v.size() > 3) Op("(");
    for (int64_t x : v) Int(x);
    if (v.size() == 1) Op("\x85");
    if (v.size() == 2) Op("\x86");
    if (v.size() == 3) Op("\x87");
    if (v.size() > 3) Op("t");
    Put();
  }
  // collections.OrderedDict() as OrderedDict.__reduce__ pickles it.
  void NewOrderedDict() {
    Global("collections", "OrderedDict");
    Op(")R");
    Put();
  }
  // Python batches dict items: MARK k v ... SETITEMS for several, k v SETITEM for one.
  template <typename Items, typename EmitItem>
  void SetItems(const Items& items, EmitItem emit) {
    if (items.empty()) return;
    if (items.size() > 1) Op("(");
    for (const auto& item : items) emit(item);
    Op(items.size() > 1 ? "u" : "s");
  }
  const std::string& bytes() const { return bytes_; }

 private:
  template <typename Emit>
  void Memoized(const std::string& key, Emit emit) {
    auto it = memo_.find(key);
    if (it != memo_.end()) {
      const uint32_t i = it->second;
      if (i < 256) {
        bytes_ += 'h';
        bytes_ += static_cast<char>(i);
      } else {
        bytes_ += 'j';
        Le(i, 4);
      }
      return;
    }
    emit();
    memo_[key] = next_memo_;
    Put();
  }
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }

  std::string bytes_;
  std::map<std::string, uint32_t> memo_;
  uint32_t next_memo_ = 0;
};

std::optional<std::string> StorageClass(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return "FloatStorage";
    case torch::kDouble:
      return "DoubleStorage";
    case torch::kHalf:
      return "HalfStorage";
    case torch::kBFloat16:
      return "BFloat16Storage";
    case torch::kLong:
      return "LongStorage";
    case torch::kInt:
      return "IntStorage";
    case torch::kShort:
      return "ShortStorage";
    case torch::kChar:
      return "CharStorage";
    case torch::kByte:
      return "ByteStorage";
    case torch::kBool:
      return "BoolStorage";
    default:
      return std::nullopt;
  }
}

}  // namespace

StateDict StateDictOf(const torch::nn::Module& module) {
  StateDict out;
  for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value().detach());
  for (const auto& b : module.named_buffers()) out.emplace_back(b.key(), b.value().detach());
  return out;
}

void WriteArchiveStateDict(torch::serialize::OutputArchive& archive, const std::string& key,
                           const StateDict& dict) {
  c10::List<std::string> names;
  c10::List<torch::Tensor> tensors;
  for (const auto& [name, tensor] : dict) {
    names.push_back(name);
    tensors.push_back(tensor.detach().to(torch::kCPU));
  }
  archive.write(key + "_names", c10::IValue(names));
  archive.write(key + "_tensors", c10::IValue(tensors));
}

StateDict ReadArchiveStateDict(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue names, tensors;
  archive.read(key + "_names", names);
  archive.read(key + "_tensors", tensors);
  const auto name_list = names.toListRef();
  const c10::List<torch::Tensor> tensor_list = tensors.toTensorList();
  TORCH_CHECK(name_list.size() == tensor_list.size(), "state dict '", key, "' is inconsistent");
  StateDict dict;
  for (size_t i = 0; i < name_list.size(); ++i) {
    dict.emplace_back(name_list[i].toStringRef(), tensor_list.get(i).to(torch::kCPU));
  }
  return dict;
}

Status WriteCheckpoint(const std::filesystem::path& path, const StateDict& dict,
                       const CheckpointWriteOptions& options) {
  Pickler p;
  if (!options.wrap_in.empty()) {
    p.Op("}");
    p.Put();
    p.Op("(");
    p.Str("epoch");
    p.Int(options.epoch);
    p.Str(options.wrap_in);
  }
  p.NewOrderedDict();
  std::map<std::string, std::string> storages;  // sorted as strings, as torch.save sorts them
  std::string bad_entry;
  try {
    p.SetItems(dict, [&](const std::pair<std::string, torch::Tensor>& entry) {
      const torch::Tensor t = entry.second.detach().to(torch::kCPU).contiguous();
      const std::optional<std::string> storage_class = StorageClass(t.scalar_type());
      if (!storage_class) {
        bad_entry = entry.first + " has dtype " + std::string(c10::toString(t.scalar_type()));
        return;
      }
      const std::string key = std::to_string(storages.size());
      storages[key] = std::string(static_cast<const char*>(t.data_ptr()), t.nbytes());
      p.Str(entry.first);
      p.Global("torch._utils", "_rebuild_tensor_v2");
      p.Op("((");
      p.Str("storage");
      p.Global("torch", *storage_class);
      p.Str(key);
      p.Str("cpu");
      p.Int(t.numel());
      p.Op("t");
      p.Put();
      p.Op("Q");
      p.Int(0);
      p.IntTuple(t.sizes().vec());
      p.IntTuple(t.strides().vec());
      p.Op("\x89");
      p.NewOrderedDict();  // backward hooks
      p.Op("t");
      p.Put();
      p.Op("R");
      p.Put();
    });
  } catch (const c10::Error& e) {
    return InternalError("writing checkpoint " + path.string() + ": " + e.what_without_backtrace());
  }
  if (!bad_entry.empty())
    return InvalidArgumentError("cannot write checkpoint " + path.string() + ": " + bad_entry);
  if (!options.module_versions.empty()) {
    p.Op("}");
    p.Put();
    p.Str("_metadata");
    p.NewOrderedDict();
    p.SetItems(options.module_versions, [&](const std::pair<std::string, int>& v) {
      p.Str(v.first);
      p.Op("}");
      p.Put();
      p.Str("version");
      p.Int(v.second);
      p.Op("s");
    });
    p.Op("sb");
  }
  if (!options.wrap_in.empty()) p.Op("u");
  p.Op(".");

  // The records sit under "archive/" where torch.save uses the file's stem; torch.load and
  // ReadCheckpoint take any prefix.
  std::string archive;
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
      archive.append(static_cast<const char*>(data), size);
      return size;
    });
    writer.writeRecord("data.pkl", p.bytes().data(), p.bytes().size());
    for (const auto& [key, data] : storages)
      writer.writeRecord("data/" + key, data.data(), data.size());
    writer.writeEndOfFile();
  } catch (const c10::Error& e) {
    return InternalError("writing checkpoint " + path.string() + ": " + e.what_without_backtrace());
  }
  return WriteFileAtomically(path, archive);
}

}  // namespace clisc
