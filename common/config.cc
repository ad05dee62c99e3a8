#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace clisc {
namespace {

constexpr char kOverrideSource[] = "--set";

// Collects problems as "source[:line:col]: path: message" lines, so one run of `config
// validate` reports all of them.
class ErrorList {
 public:
  explicit ErrorList(std::string source, bool with_marks)
      : source_(std::move(source)), with_marks_(with_marks) {}

  void Add(const YAML::Node* at, const std::string& path, const std::string& message) {
    std::string where = source_;
    if (with_marks_ && at != nullptr && !at->Mark().is_null()) {
      where +=
          ":" + std::to_string(at->Mark().line + 1) + ":" + std::to_string(at->Mark().column + 1);
    }
    lines_.push_back(where + ": " + (path.empty() ? "<top level>" : path) + ": " + message);
  }
  void AddRaw(std::string line) { lines_.push_back(std::move(line)); }

  Status ToStatus() const {
    if (lines_.empty()) return OkStatus();
    std::string all;
    for (const auto& l : lines_) all += (all.empty() ? "" : "\n") + l;
    return InvalidArgumentError(all);
  }

 private:
  std::string source_;
  bool with_marks_;
  std::vector<std::string> lines_;
};

std::string UnknownKeyMessage(const ConfigSchema& schema, const std::string& path) {
  std::string hint = schema.Suggest(path);
  return "unknown key" + (hint.empty() ? std::string() : " (did you mean " + hint + "?)");
}

std::string JoinPath(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "fatal: %s\n", message.c_str());
  std::abort();
}

nlohmann::ordered_json ValueToJson(const ConfigValue& value) {
  return std::visit(
      [](const auto& v) -> nlohmann::ordered_json {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>) {
          return nullptr;
        } else {
          return v;
        }
      },
      value);
}

// Loads text as YAML, turning parser exceptions into a line/column message.
StatusOr<YAML::Node> ParseYaml(std::string_view text, const std::string& source) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                                std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg);
  }
}

// Applies a YAML map onto one schema section, recursively; used by files and section --set.
class ConfigMerger {
 public:
  ConfigMerger(const ConfigSchema& schema, std::vector<ConfigValue>& values, ErrorList& errors)
      : schema_(schema), values_(values), errors_(errors) {}

  void Apply(const SchemaNode& node, const YAML::Node& yaml) {
    if (node.is_leaf()) return ApplyLeaf(node, yaml);
    if (!yaml.IsDefined() || yaml.IsNull()) return;  // "clip:" with nothing under it
    if (!yaml.IsMap()) {
      errors_.Add(&yaml, node.path, "expected a section (a map of keys), found " + Describe(yaml));
      return;
    }
    std::set<std::string> seen;
    for (const auto& kv : yaml) {
      if (!kv.first.IsScalar()) {
        errors_.Add(&kv.first, node.path, "keys must be plain names");
        continue;
      }
      const std::string name = kv.first.Scalar();
      const std::string path = JoinPath(node.path, name);
      if (!seen.insert(name).second) {
        errors_.Add(&kv.first, path, "duplicate key");
        continue;
      }
      const SchemaNode* child = node.Child(name);
      if (child == nullptr) {
        errors_.Add(&kv.first, path, UnknownKeyMessage(schema_, path));
        continue;
      }
      Apply(*child, kv.second);
    }
  }

 private:
  static std::string Describe(const YAML::Node& yaml) {
    if (yaml.IsSequence()) return "a list";
    if (yaml.IsScalar()) return "'" + yaml.Scalar() + "'";
    return "null";
  }

  void ApplyLeaf(const SchemaNode& node, const YAML::Node& yaml) {
    const SchemaLeaf& leaf = schema_.leaves()[node.leaf_index];
    auto value = ConvertConfigValue(leaf, yaml);
    Status status = value.ok() ? CheckConfigValue(leaf, *value) : value.status();
    if (!status.ok()) {
      errors_.Add(&yaml, leaf.path, status.message());
      return;
    }
    values_[node.leaf_index] = std::move(value).value();
  }

  const ConfigSchema& schema_;
  std::vector<ConfigValue>& values_;
  ErrorList& errors_;
};

}  // namespace

Config::Config() : Config(BuiltinConfigSchema()) {}

Config::Config(const ConfigSchema& schema) : schema_(&schema) {
  for (const auto& leaf : schema.leaves()) values_.push_back(leaf.default_value);
}

Status Config::Merge(std::string_view yaml_text, const std::string& source_name) {
  source_ = source_name;
  ASSIGN_OR_RETURN(YAML::Node doc, ParseYaml(yaml_text, source_name));
  ErrorList errors(source_name, /*with_marks=*/true);
  try {
    ConfigMerger(*schema_, values_, errors).Apply(schema_->root(), doc);
  } catch (const YAML::Exception& e) {
    errors.AddRaw(source_name + ": unreadable YAML: " + e.what());
  }
  return errors.ToStatus();
}

Status Config::Set(std::string_view path, std::string_view yaml_value_text) {
  overridden_ = true;
  const std::string key(path);
  ErrorList errors(kOverrideSource, /*with_marks=*/false);
  const SchemaNode* node = key.empty() ? nullptr : schema_->FindNode(key);
  if (node == nullptr) {
    errors.Add(nullptr, key, UnknownKeyMessage(*schema_, key));
    return errors.ToStatus();
  }
  auto parsed = ParseYaml(yaml_value_text, std::string(kOverrideSource) + " " + key);
  if (!parsed.ok()) return parsed.status();
  try {
    ConfigMerger(*schema_, values_, errors).Apply(*node, *parsed);
  } catch (const YAML::Exception& e) {
    errors.Add(nullptr, key, std::string("unreadable value: ") + e.what());
  }
  return errors.ToStatus();
}

Status Config::ApplyOverride(std::string_view assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgumentError(std::string(kOverrideSource) + ": expected key.path=value, got '" +
                                std::string(assignment) + "'");
  }
  return Set(assignment.substr(0, eq), assignment.substr(eq + 1));
}

std::string Config::source() const { return overridden_ ? source_ + " + --set" : source_; }

const SchemaLeaf& Config::LeafOrDie(std::string_view path) const {
  const SchemaLeaf* leaf = schema_->FindLeaf(path);
  if (leaf == nullptr) Die("config: '" + std::string(path) + "' is not a key of the config schema");
  return *leaf;
}

const ConfigValue& Config::GetValue(std::string_view path) const {
  const SchemaLeaf& leaf = LeafOrDie(path);
  return values_[&leaf - schema_->leaves().data()];
}

template <typename T>
const T& Config::TypedOrDie(std::string_view path, const char* getter) const {
  const SchemaLeaf& leaf = LeafOrDie(path);
  const ConfigValue& value = values_[&leaf - schema_->leaves().data()];
  if (const T* typed = std::get_if<T>(&value)) return *typed;
  Die("config: " + std::string(getter) + "(\"" + std::string(path) + "\") on a key of type " +
      leaf.TypeDescription() +
      (std::holds_alternative<std::monostate>(value) ? " whose value is null" : ""));
}

bool Config::GetBool(std::string_view path) const { return TypedOrDie<bool>(path, "GetBool"); }
int64_t Config::GetInt(std::string_view path) const { return TypedOrDie<int64_t>(path, "GetInt"); }
double Config::GetDouble(std::string_view path) const {
  return TypedOrDie<double>(path, "GetDouble");
}
std::string Config::GetString(std::string_view path) const {
  return TypedOrDie<std::string>(path, "GetString");
}
std::vector<std::string> Config::GetStringList(std::string_view path) const {
  return TypedOrDie<std::vector<std::string>>(path, "GetStringList");
}
std::vector<double> Config::GetDoubleList(std::string_view path) const {
  return TypedOrDie<std::vector<double>>(path, "GetDoubleList");
}
std::vector<int64_t> Config::GetIntList(std::string_view path) const {
  return TypedOrDie<std::vector<int64_t>>(path, "GetIntList");
}
bool Config::IsNull(std::string_view path) const {
  return std::holds_alternative<std::monostate>(GetValue(path));
}
std::optional<std::string> Config::GetOptionalString(std::string_view path) const {
  if (IsNull(path)) return std::nullopt;
  return GetString(path);
}
std::optional<int64_t> Config::GetOptionalInt(std::string_view path) const {
  if (IsNull(path)) return std::nullopt;
  return GetInt(path);
}

std::string Config::ToYaml() const {
  std::ostringstream out;
  out << "# Effective clisc config (" << source() << ")\n";
  auto emit = [&](auto&& self, const SchemaNode& node, int depth) -> void {
    const std::string indent(2 * depth, ' ');
    for (const auto& child : node.children) {
      if (depth == 0 && !child.is_leaf()) out << "\n";
      if (!child.is_leaf()) {
        out << indent << child.name << ":\n";
        self(self, child, depth + 1);
        continue;
      }
      const ConfigValue& value = values_[child.leaf_index];
      const auto* strings = std::get_if<std::vector<std::string>>(&value);
      const SchemaLeaf& leaf = schema_->leaves()[child.leaf_index];
      if (strings != nullptr && leaf.element_type == ConfigType::kString && !strings->empty()) {
        // Prose (prompts) reads better one item per line.
        out << indent << child.name << ":\n";
        for (const auto& s : *strings) out << indent << "  - " << FormatConfigValue(s) << "\n";
      } else {
        out << indent << child.name << ": " << FormatConfigValue(value) << "\n";
      }
    }
  };
  emit(emit, schema_->root(), 0);
  return out.str();
}

std::string Config::ToJson() const {
  auto build = [&](auto&& self, const SchemaNode& node) -> nlohmann::ordered_json {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (const auto& child : node.children) {
      object[child.name] =
          child.is_leaf() ? ValueToJson(values_[child.leaf_index]) : self(self, child);
    }
    return object;
  };
  return build(build, schema_->root()).dump(2);
}

std::string Config::Fingerprint(std::string_view section) const {
  const std::string prefix(section);
  if (!prefix.empty() && schema_->FindNode(prefix) == nullptr) {
    Die("config: Fingerprint(\"" + prefix + "\"): not a section or key of the config schema");
  }
  // Key paths are hashed with the values, so moving a value between keys changes the hash.
  std::string text = "clisc-config-v1\n";
  const auto& leaves = schema_->leaves();
  for (size_t i = 0; i < leaves.size(); ++i) {
    const std::string& path = leaves[i].path;
    bool inside = prefix.empty() || path == prefix ||
                  (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                   path[prefix.size()] == '.');
    if (inside) text += path + "=" + FormatConfigValue(values_[i]) + "\n";
  }
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

StatusOr<Config> LoadConfigString(std::string_view text, const std::string& source_name,
                                  const std::vector<std::string>& overrides) {
  Config config;
  std::vector<Status> problems;
  problems.push_back(config.Merge(text, source_name));
  for (const auto& o : overrides) problems.push_back(config.ApplyOverride(o));
  std::string all;
  for (const auto& p : problems) {
    if (!p.ok()) all += (all.empty() ? "" : "\n") + p.message();
  }
  if (!all.empty()) return InvalidArgumentError(all);
  RETURN_IF_ERROR(config.ValidateCrossKey());
  return config;
}

StatusOr<Config> LoadConfigFile(const std::string& path,
                                const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return NotFoundError("cannot read config file " + path);
  return LoadConfigString(text.str(), path, overrides);
}

}  // namespace clisc
