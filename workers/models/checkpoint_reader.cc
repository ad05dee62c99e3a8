#include "workers/models/checkpoint_reader.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "common/logging.h"
#include "workers/models/pickle_reader.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using pickle::Value;
using pickle::ValuePtr;

// A storage as the pickle refers to it: a flat 1-D tensor of its element type.
struct StorageRef {
  torch::Tensor flat;
};

std::string ShapeText(torch::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

std::optional<torch::ScalarType> StorageDtype(const std::string& global) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"torch.FloatStorage", torch::kFloat},       {"torch.HalfStorage", torch::kHalf},
      {"torch.BFloat16Storage", torch::kBFloat16}, {"torch.DoubleStorage", torch::kDouble},
      {"torch.LongStorage", torch::kLong},         {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort},       {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},         {"torch.BoolStorage", torch::kBool},
  };
  auto it = kTypes.find(global);
  if (it == kTypes.end()) return std::nullopt;
  return it->second;
}

StatusOr<std::vector<int64_t>> IntTuple(const Value& v, const char* what) {
  if (v.kind != Value::Kind::kTuple && v.kind != Value::Kind::kList) {
    return InvalidArgumentError(std::string(what) + " is a " +
                                std::string(pickle::KindName(v.kind)) + ", not a tuple of ints");
  }
  std::vector<int64_t> out;
  for (const auto& item : v.items) {
    if (item->kind != Value::Kind::kInt) {
      return InvalidArgumentError(std::string(what) + " holds a " +
                                  std::string(pickle::KindName(item->kind)));
    }
    out.push_back(item->integer);
  }
  return out;
}

// _rebuild_tensor(_v2)'s view of a storage, checked to lie inside it.
StatusOr<ValuePtr> RebuildTensor(const Value& args) {
  if (args.items.size() < 4) return InvalidArgumentError("_rebuild_tensor with too few arguments");
  const Value& storage = *args.items[0];
  const auto* ref = storage.kind == Value::Kind::kExtension
                        ? std::any_cast<StorageRef>(&storage.extension)
                        : nullptr;
  if (!ref) return InvalidArgumentError("_rebuild_tensor without a storage");
  if (args.items[1]->kind != Value::Kind::kInt) {
    return InvalidArgumentError("_rebuild_tensor storage offset is not an int");
  }
  const int64_t offset = args.items[1]->integer;
  ASSIGN_OR_RETURN(std::vector<int64_t> size, IntTuple(*args.items[2], "tensor size"));
  ASSIGN_OR_RETURN(std::vector<int64_t> stride, IntTuple(*args.items[3], "tensor stride"));
  if (size.size() != stride.size()) {
    return InvalidArgumentError("tensor size " + ShapeText(size) + " and stride " +
                                ShapeText(stride) + " differ in rank");
  }
  int64_t last = offset;
  bool empty = false;
  for (size_t i = 0; i < size.size(); ++i) {
    if (size[i] < 0 || stride[i] < 0) return InvalidArgumentError("negative tensor size or stride");
    if (size[i] == 0) empty = true;
    int64_t reach = 0;
    if (__builtin_mul_overflow(size[i] - 1, stride[i], &reach) ||
        __builtin_add_overflow(last, reach, &last)) {
      return InvalidArgumentError("tensor size " + ShapeText(size) + " and stride " +
                                  ShapeText(stride) + " overflow");
    }
  }
  const int64_t numel = ref->flat.numel();
  if (offset < 0 || (!empty && last >= numel)) {
    return DataLossError("tensor " + ShapeText(size) + " stride " + ShapeText(stride) + " offset " +
                         std::to_string(offset) + " reaches past its storage of " +
                         std::to_string(numel) + " elements");
  }
  torch::Tensor t =
      empty ? torch::empty(size, ref->flat.options()) : ref->flat.as_strided(size, stride, offset);
  return pickle::MakeExtension(t);
}

StatusOr<ValuePtr> Reduce(const Value& callable, const Value& args) {
  if (callable.kind != Value::Kind::kGlobal) {
    return InvalidArgumentError("REDUCE on a " + std::string(pickle::KindName(callable.kind)));
  }
  const std::string& name = callable.text;
  if (name == "collections.OrderedDict") {
    if (!args.items.empty()) return UnimplementedError("OrderedDict built from arguments");
    return pickle::MakeDict();
  }
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    return RebuildTensor(args);
  }
  if (name == "torch._utils._rebuild_parameter" ||
      name == "torch._utils._rebuild_parameter_with_state") {
    if (args.items.empty() || args.items[0]->kind != Value::Kind::kExtension ||
        !std::any_cast<torch::Tensor>(&args.items[0]->extension)) {
      return InvalidArgumentError(name + " without a tensor");
    }
    return args.items[0];
  }
  // LibTorch's torch::pickle_save wraps typed containers as restore_type_tag(obj, "Dict[str,
  // Tensor]"); the type only matters to TorchScript, so the object stands for itself.
  if (name == "torch.jit._pickle.restore_type_tag") {
    if (args.items.empty()) return InvalidArgumentError(name + " without an object");
    return args.items[0];
  }
  if (name.rfind("torch._utils._rebuild_", 0) == 0) {
    return UnimplementedError("unsupported tensor kind " + name);
  }
  // Anything else (a numpy scalar, argparse.Namespace) only matters if a tensor is expected there.
  auto object = std::make_shared<Value>();
  object->kind = Value::Kind::kObject;
  object->text = name;
  return object;
}

// The persistent id of a storage: ('storage', storage_type, key, location, numel[, view]).
struct StorageId {
  torch::ScalarType dtype;
  std::string key;
  int64_t numel = 0;
  const Value* view = nullptr;  // legacy only: (view_key, offset, size) or None
};

StatusOr<StorageId> ParseStorageId(const Value& pid) {
  if (pid.kind != Value::Kind::kTuple || pid.items.size() < 5 ||
      pid.items[0]->kind != Value::Kind::kString || pid.items[0]->text != "storage") {
    return InvalidArgumentError("persistent id is not a ('storage', ...) tuple");
  }
  const Value& type = *pid.items[1];
  auto dtype = StorageDtype(type.text);
  if (type.kind != Value::Kind::kGlobal || !dtype) {
    return UnimplementedError("unsupported storage type " + type.text);
  }
  if (pid.items[2]->kind != Value::Kind::kString || pid.items[4]->kind != Value::Kind::kInt ||
      pid.items[4]->integer < 0) {
    return InvalidArgumentError("malformed storage persistent id");
  }
  StorageId id{*dtype, pid.items[2]->text, pid.items[4]->integer, nullptr};
  if (pid.items.size() > 5 && pid.items[5]->kind != Value::Kind::kNone)
    id.view = pid.items[5].get();
  return id;
}

// Walks nested dicts into dotted names. Non-tensor leaves are kept aside, so that only the part
// the caller selected has to be all tensors.
struct Flattened {
  StateDict tensors;
  std::vector<std::pair<std::string, std::string>> others;  // name, Python type
};

Status Flatten(const Value& v, const std::string& name, Flattened& out) {
  if (v.kind == Value::Kind::kDict) {
    for (const auto& [key, value] : v.entries) {
      std::string part;
      if (key->kind == Value::Kind::kString) {
        part = key->text;
      } else if (key->kind == Value::Kind::kInt) {
        part = std::to_string(key->integer);
      } else {
        return InvalidArgumentError("dict " + (name.empty() ? "at the top" : "'" + name + "'") +
                                    " has a " + std::string(pickle::KindName(key->kind)) + " key");
      }
      RETURN_IF_ERROR(Flatten(*value, name.empty() ? part : name + "." + part, out));
    }
    return OkStatus();
  }
  if (v.kind == Value::Kind::kExtension) {
    if (const auto* t = std::any_cast<torch::Tensor>(&v.extension)) {
      out.tensors.emplace_back(name, *t);
      return OkStatus();
    }
    out.others.emplace_back(name, "storage");
    return OkStatus();
  }
  out.others.emplace_back(
      name, v.kind == Value::Kind::kObject ? v.text : std::string(pickle::KindName(v.kind)));
  return OkStatus();
}

StatusOr<StateDict> Select(Flattened flat, const CheckpointOptions& options) {
  const std::string& prefix = options.prefix;
  auto under = [&](const std::string& name) {
    return prefix.empty() || name.rfind(prefix, 0) == 0;
  };
  for (const auto& [name, type] : flat.others) {
    if (under(name)) {
      return InvalidArgumentError("entry '" + name + "' is a " + type + ", not a tensor" +
                                  (prefix.empty() ? " (select the state dict with a prefix)" : ""));
    }
  }
  StateDict out;
  std::set<std::string> seen;
  for (auto& [name, tensor] : flat.tensors) {
    if (!under(name)) continue;
    std::string key = name.substr(prefix.size());
    if (!seen.insert(key).second) return InvalidArgumentError("duplicate entry '" + key + "'");
    out.emplace_back(std::move(key), std::move(tensor));
  }
  if (out.empty()) {
    return NotFoundError(prefix.empty() ? "no tensors in the checkpoint"
                                        : "no tensors under prefix '" + prefix + "'");
  }
  return out;
}

StatusOr<StateDict> ReadTorchScript(const fs::path& path) {
  torch::jit::Module module = torch::jit::load(path.string(), torch::kCPU);
  StateDict out;
  // state_dict order: a module's own parameters, then its own buffers, then its children.
  std::function<void(const torch::jit::Module&, const std::string&)> visit =
      [&](const torch::jit::Module& m, const std::string& prefix) {
        for (const auto& p : m.named_parameters(false))
          out.emplace_back(prefix + p.name, p.value.detach());
        for (const auto& b : m.named_buffers(false))
          out.emplace_back(prefix + b.name, b.value.detach());
        for (const auto& c : m.named_children()) visit(c.value, prefix + c.name + ".");
      };
  visit(module, "");
  return out;
}

// LibTorch's zip reader is built without CRC-32 checks, so a flipped byte in a tensor would load
// silently. The stored checksums come from the zip's central directory, read here from the tail
// of the file, so a large checkpoint is not read twice.
uint32_t Crc32(const void* data, size_t size) {
  static const auto kTable = [] {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint64_t LittleEndian(std::string_view bytes, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(bytes[at + i])} << (8 * i);
  return v;
}

StatusOr<std::string> ReadRange(std::ifstream& in, uint64_t offset, uint64_t size) {
  std::string out(size, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(out.data(), static_cast<std::streamsize>(size));
  if (!in) return DataLossError("zip directory lies outside the file");
  return out;
}

// Record name (without the archive's top folder, as PyTorchStreamReader names it) -> CRC-32.
StatusOr<std::map<std::string, uint32_t>> ReadZipChecksums(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  const uint64_t tail_size = std::min<uint64_t>(file_size, 65535 + 22 + 20);
  ASSIGN_OR_RETURN(std::string tail, ReadRange(in, file_size - tail_size, tail_size));
  const size_t eocd = tail.rfind(std::string("PK\x05\x06", 4));
  if (eocd == std::string::npos || tail.size() - eocd < 22) {
    return DataLossError("zip end-of-directory record not found");
  }
  uint64_t entries = LittleEndian(tail, eocd + 10, 2);
  uint64_t dir_size = LittleEndian(tail, eocd + 12, 4);
  uint64_t dir_offset = LittleEndian(tail, eocd + 16, 4);
  if (entries == 0xFFFF || dir_size == 0xFFFFFFFFu || dir_offset == 0xFFFFFFFFu) {
    if (eocd < 20 || tail.compare(eocd - 20, 4, std::string("PK\x06\x07", 4)) != 0) {
      return DataLossError("zip64 locator not found");
    }
    ASSIGN_OR_RETURN(std::string zip64, ReadRange(in, LittleEndian(tail, eocd - 20 + 8, 8), 56));
    if (zip64.compare(0, 4, std::string("PK\x06\x06", 4)) != 0) {
      return DataLossError("zip64 end-of-directory record not found");
    }
    entries = LittleEndian(zip64, 32, 8);
    dir_size = LittleEndian(zip64, 40, 8);
    dir_offset = LittleEndian(zip64, 48, 8);
  }
  if (dir_offset > file_size || dir_size > file_size - dir_offset) {
    return DataLossError("zip directory lies outside the file");
  }
  ASSIGN_OR_RETURN(std::string dir, ReadRange(in, dir_offset, dir_size));
  std::map<std::string, uint32_t> crcs;
  size_t pos = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (dir.size() - pos < 46 || dir.compare(pos, 4, std::string("PK\x01\x02", 4)) != 0) {
      return DataLossError("corrupt zip directory entry " + std::to_string(i));
    }
    const size_t name_size = LittleEndian(dir, pos + 28, 2);
    const size_t extra = LittleEndian(dir, pos + 30, 2) + LittleEndian(dir, pos + 32, 2);
    if (dir.size() - pos - 46 < name_size + extra) return DataLossError("corrupt zip directory");
    const std::string name = dir.substr(pos + 46, name_size);
    const size_t slash = name.find('/');
    crcs[slash == std::string::npos ? name : name.substr(slash + 1)] =
        static_cast<uint32_t>(LittleEndian(dir, pos + 16, 4));
    pos += 46 + name_size + extra;
  }
  return crcs;
}

Status VerifyCrc(const std::map<std::string, uint32_t>& crcs, const std::string& record,
                 const void* data, size_t size) {
  auto it = crcs.find(record);
  if (it == crcs.end()) return DataLossError("record " + record + " is not in the zip directory");
  if (Crc32(data, size) != it->second) {
    return DataLossError("CRC-32 mismatch in record " + record + " (corrupt file)");
  }
  return OkStatus();
}

StatusOr<ValuePtr> ReadZipPickle(caffe2::serialize::PyTorchStreamReader& reader,
                                 const std::map<std::string, uint32_t>& crcs) {
  if (!reader.hasRecord("data.pkl")) return NotFoundError("zip archive has no data.pkl record");
  auto [pkl_ptr, pkl_size] = reader.getRecord("data.pkl");
  RETURN_IF_ERROR(VerifyCrc(crcs, "data.pkl", pkl_ptr.get(), pkl_size));
  const std::string_view pkl(static_cast<const char*>(pkl_ptr.get()), pkl_size);
  std::map<std::string, torch::Tensor> storages;
  pickle::Hooks hooks;
  hooks.reduce = Reduce;
  hooks.persistent_load = [&](const Value& pid) -> StatusOr<ValuePtr> {
    ASSIGN_OR_RETURN(StorageId id, ParseStorageId(pid));
    auto it = storages.find(id.key);
    if (it == storages.end()) {
      const std::string record = "data/" + id.key;
      if (!reader.hasRecord(record)) return NotFoundError("missing storage record " + record);
      auto [ptr, size] = reader.getRecord(record);
      const size_t element = torch::elementSize(id.dtype);
      if (size != static_cast<size_t>(id.numel) * element) {
        return DataLossError("storage record " + record + " has " + std::to_string(size) +
                             " bytes, expected " + std::to_string(id.numel) + " x " +
                             std::to_string(element));
      }
      RETURN_IF_ERROR(VerifyCrc(crcs, record, ptr.get(), size));
      auto owner = std::make_shared<at::DataPtr>(std::move(ptr));
      torch::Tensor flat = torch::from_blob(
          owner->get(), {id.numel}, [owner](void*) {}, torch::TensorOptions().dtype(id.dtype));
      it = storages.emplace(id.key, flat).first;
    } else if (it->second.scalar_type() != id.dtype) {
      return UnimplementedError("storage " + id.key + " is read as two dtypes");
    }
    return pickle::MakeExtension(StorageRef{it->second});
  };
  ASSIGN_OR_RETURN(pickle::Unpickled root, pickle::Unpickle(pkl, 0, hooks, "data.pkl"));
  return root.value;
}

// torch.save(..., _use_new_zipfile_serialization=False): four pickles (magic number, protocol
// version, sys_info, the object), a pickled list of storage keys, then each storage as an int64
// element count and its raw bytes, in that list's order.
StatusOr<ValuePtr> ReadLegacy(std::string_view bytes) {
  static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
  pickle::Hooks plain;
  plain.reduce = Reduce;
  ASSIGN_OR_RETURN(pickle::Unpickled magic, pickle::Unpickle(bytes, 0, plain, "magic number"));
  if (magic.value->kind != Value::Kind::kBigInt || magic.value->text != kMagic) {
    return InvalidArgumentError("not a torch.save file (wrong magic number)");
  }
  ASSIGN_OR_RETURN(pickle::Unpickled protocol,
                   pickle::Unpickle(bytes, magic.end, plain, "protocol"));
  if (protocol.value->kind != Value::Kind::kInt || protocol.value->integer != 1001) {
    return UnimplementedError("legacy protocol version is not 1001");
  }
  ASSIGN_OR_RETURN(pickle::Unpickled sys_info,
                   pickle::Unpickle(bytes, protocol.end, plain, "sys_info"));
  std::map<std::string, torch::Tensor> storages;
  pickle::Hooks hooks;
  hooks.reduce = Reduce;
  hooks.persistent_load = [&](const Value& pid) -> StatusOr<ValuePtr> {
    ASSIGN_OR_RETURN(StorageId id, ParseStorageId(pid));
    auto it = storages.find(id.key);
    if (it == storages.end()) {
      // The data follows the pickles; a count beyond the file is corruption, not an allocation.
      if (static_cast<uint64_t>(id.numel) > bytes.size() / torch::elementSize(id.dtype)) {
        return DataLossError("storage " + id.key + " claims " + std::to_string(id.numel) +
                             " elements, more than the file holds");
      }
      const auto options = torch::TensorOptions().dtype(id.dtype);
      it = storages.emplace(id.key, torch::empty({id.numel}, options)).first;
    }
    torch::Tensor flat = it->second;
    if (id.view) {
      if (id.view->kind != Value::Kind::kTuple || id.view->items.size() != 3 ||
          id.view->items[1]->kind != Value::Kind::kInt ||
          id.view->items[2]->kind != Value::Kind::kInt) {
        return InvalidArgumentError("malformed storage view metadata");
      }
      const int64_t offset = id.view->items[1]->integer, size = id.view->items[2]->integer;
      if (offset < 0 || size < 0 || offset + size > flat.numel()) {
        return DataLossError("storage view reaches past storage " + id.key);
      }
      flat = flat.narrow(0, offset, size);
    }
    return pickle::MakeExtension(StorageRef{flat});
  };
  ASSIGN_OR_RETURN(pickle::Unpickled root, pickle::Unpickle(bytes, sys_info.end, hooks, "object"));
  ASSIGN_OR_RETURN(pickle::Unpickled keys,
                   pickle::Unpickle(bytes, root.end, plain, "storage keys"));
  if (keys.value->kind != Value::Kind::kList)
    return InvalidArgumentError("storage keys are not a list");
  size_t pos = keys.end;
  for (const auto& key : keys.value->items) {
    auto it = key->kind == Value::Kind::kString ? storages.find(key->text) : storages.end();
    if (it == storages.end())
      return InvalidArgumentError("storage key list names an unknown storage");
    torch::Tensor& flat = it->second;
    const size_t nbytes = flat.numel() * flat.element_size();
    if (bytes.size() - pos < 8 + nbytes) {
      return DataLossError("file ends inside storage " + key->text + " (truncated file?)");
    }
    int64_t count = 0;
    std::memcpy(&count, bytes.data() + pos, 8);
    if (count != flat.numel()) {
      return DataLossError("storage " + key->text + " holds " + std::to_string(count) +
                           " elements, the pickle says " + std::to_string(flat.numel()));
    }
    std::memcpy(flat.data_ptr(), bytes.data() + pos + 8, nbytes);
    pos += 8 + nbytes;
  }
  if (keys.value->items.size() != storages.size()) {
    return DataLossError("some storages have no data in the file");
  }
  return root.value;
}

StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open file");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return DataLossError("read error");
  return bytes;
}

bool IsTorchScript(caffe2::serialize::PyTorchStreamReader& reader) {
  if (reader.hasRecord("constants.pkl")) return true;
  for (const auto& name : reader.getAllRecords()) {
    if (name.rfind("code/", 0) == 0) return true;
  }
  return false;
}

StatusOr<StateDict> ReadAny(const fs::path& path, const CheckpointOptions& options,
                            std::string& format) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return NotFoundError("no such file");
  char head[4] = {0, 0, 0, 0};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(head, 4);
  }
  ValuePtr root;
  if (std::memcmp(head, "PK\x03\x04", 4) == 0) {
    format = "zip";
    caffe2::serialize::PyTorchStreamReader reader(path.string());
    if (IsTorchScript(reader)) {
      format = "torchscript";
      ASSIGN_OR_RETURN(StateDict all, ReadTorchScript(path));
      Flattened flat;
      flat.tensors = std::move(all);
      return Select(std::move(flat), options);
    }
    ASSIGN_OR_RETURN(auto crcs, ReadZipChecksums(path));
    ASSIGN_OR_RETURN(root, ReadZipPickle(reader, crcs));
  } else if (static_cast<uint8_t>(head[0]) == 0x80) {
    format = "legacy";
    ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    ASSIGN_OR_RETURN(root, ReadLegacy(bytes));
  } else {
    return InvalidArgumentError("not a PyTorch checkpoint (neither a zip archive nor a pickle)");
  }
  Flattened flat;
  RETURN_IF_ERROR(Flatten(*root, "", flat));
  return Select(std::move(flat), options);
}

// LibTorch's own message carries a C++ backtrace; its first line is the useful part.
std::string FirstLine(const char* what) {
  std::string s(what);
  const size_t end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

}  // namespace

StatusOr<StateDict> ReadCheckpoint(const fs::path& path, const CheckpointOptions& options) {
  const std::string context = "checkpoint " + path.string();
  std::string format = "unknown";
  try {
    auto dict = ReadAny(path, options, format);
    if (!dict.ok()) return dict.status().WithContext(context);
    LogInfo("checkpoint_read", {{"path", path.string()},
                                {"format", format},
                                {"tensors", static_cast<int64_t>(dict->size())}});
    return dict;
  } catch (const c10::Error& e) {
    return DataLossError(context + ": corrupt or unreadable " + format +
                         " archive: " + FirstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return DataLossError(context + ": " + FirstLine(e.what()));
  }
}

Status LoadStateDict(torch::nn::Module& module, const StateDict& dict, bool strict) {
  try {
    std::map<std::string, torch::Tensor> targets;
    std::vector<std::string> order;
    for (const auto& p : module.named_parameters(true)) {
      targets[p.key()] = p.value();
      order.push_back(p.key());
    }
    for (const auto& b : module.named_buffers(true)) {
      targets[b.key()] = b.value();
      order.push_back(b.key());
    }
    std::set<std::string> given;
    std::vector<std::string> unexpected;
    for (const auto& [key, value] : dict) {
      given.insert(key);
      auto it = targets.find(key);
      if (it == targets.end()) {
        unexpected.push_back(key);
        continue;
      }
      if (!value.defined() || value.sizes() != it->second.sizes()) {
        return InvalidArgumentError("state dict: shape mismatch for '" + key + "': checkpoint " +
                                    (value.defined() ? ShapeText(value.sizes()) : "undefined") +
                                    ", module " + ShapeText(it->second.sizes()));
      }
    }
    std::vector<std::string> missing;
    for (const auto& name : order) {
      if (!given.count(name)) missing.push_back(name);
    }
    auto list = [](const std::vector<std::string>& keys) {
      std::string out;
      for (size_t i = 0; i < keys.size() && i < 5; ++i) out += (i ? ", '" : "'") + keys[i] + "'";
      if (keys.size() > 5) out += " and " + std::to_string(keys.size() - 5) + " more";
      return out;
    };
    if (strict && !missing.empty()) {
      return NotFoundError("state dict: " + std::to_string(missing.size()) +
                           " missing key(s): " + list(missing));
    }
    if (strict && !unexpected.empty()) {
      return InvalidArgumentError("state dict: " + std::to_string(unexpected.size()) +
                                  " unexpected key(s): " + list(unexpected));
    }
    torch::NoGradGuard no_grad;
    for (const auto& [key, value] : dict) {
      auto it = targets.find(key);
      if (it != targets.end()) it->second.copy_(value);
    }
    return OkStatus();
  } catch (const c10::Error& e) {
    return InternalError("state dict: " + FirstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return InternalError("state dict: " + FirstLine(e.what()));
  }
}

}  // namespace clisc
