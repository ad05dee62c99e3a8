#include "common/config_schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace clisc {

extern const char kConfigSchemaText[];  // schemas/config.yaml, embedded by schemas/CMakeLists.txt

namespace {

std::optional<ConfigType> ParseTypeName(std::string_view name) {
  for (ConfigType t : {ConfigType::kBool, ConfigType::kInt, ConfigType::kFloat, ConfigType::kString,
                       ConfigType::kPath, ConfigType::kEnum, ConfigType::kList}) {
    if (ConfigTypeName(t) == name) return t;
  }
  return std::nullopt;
}

// YAML 1.2 core booleans only: yaml-cpp would also take y/n/on/off, which hide typos.
std::optional<bool> ParseBoolText(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::optional<int64_t> ParseIntText(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> ParseDoubleText(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

// Quoted scalars are strings even when they look like numbers, as in YAML itself.
bool IsQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

// What a node holds, for "expected X, found Y" messages.
std::string DescribeNode(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  const std::string& s = node.Scalar();
  if (!IsQuoted(node)) {
    if (ParseBoolText(s)) return "bool " + s;
    if (ParseIntText(s)) return "int " + s;
    if (ParseDoubleText(s)) return "float " + s;
  }
  return "string '" + s + "'";
}

Status Mismatch(std::string_view expected, const YAML::Node& node) {
  return InvalidArgumentError("expected " + std::string(expected) + ", found " +
                              DescribeNode(node));
}

StatusOr<ConfigValue> ConvertScalar(ConfigType type, const YAML::Node& node) {
  std::string_view expected = ConfigTypeName(type);
  if (!node.IsScalar()) return Mismatch(expected, node);
  const std::string& s = node.Scalar();
  switch (type) {
    case ConfigType::kBool:
      if (auto b = ParseBoolText(s); b && !IsQuoted(node)) return ConfigValue(*b);
      break;
    case ConfigType::kInt:
      if (auto i = ParseIntText(s); i && !IsQuoted(node)) return ConfigValue(*i);
      break;
    case ConfigType::kFloat:
      if (auto d = ParseDoubleText(s); d && !IsQuoted(node)) return ConfigValue(*d);
      break;
    case ConfigType::kString:
    case ConfigType::kPath:
    case ConfigType::kEnum:
      return ConfigValue(s);
    case ConfigType::kList:
      break;
  }
  return Mismatch(expected, node);
}

Status CheckRange(const SchemaLeaf& leaf, double v, const std::string& shown) {
  if ((!leaf.min || v >= *leaf.min) && (!leaf.max || v <= *leaf.max)) return OkStatus();
  std::string range = leaf.RangeDescription();
  return InvalidArgumentError(shown + " is out of range " +
                              (leaf.min && leaf.max ? range : "(must be " + range + ")"));
}

Status CheckEnum(const SchemaLeaf& leaf, const std::string& v) {
  if (std::find(leaf.values.begin(), leaf.values.end(), v) != leaf.values.end()) {
    return OkStatus();
  }
  std::string allowed;
  for (const auto& a : leaf.values) allowed += (allowed.empty() ? "" : ", ") + a;
  return InvalidArgumentError("'" + v + "' is not an allowed value; expected one of: " + allowed);
}

Status CheckScalar(const SchemaLeaf& leaf, ConfigType type, const ConfigValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) {
    return CheckRange(leaf, static_cast<double>(*i), std::to_string(*i));
  }
  if (const auto* d = std::get_if<double>(&value)) {
    return CheckRange(leaf, *d, FormatConfigDouble(*d));
  }
  if (const auto* s = std::get_if<std::string>(&value)) {
    if (type == ConfigType::kEnum) return CheckEnum(leaf, *s);
    if (type == ConfigType::kPath && s->empty()) {
      return InvalidArgumentError("expected a non-empty path, found ''");
    }
  }
  return OkStatus();
}

template <typename T>
Status CheckElements(const SchemaLeaf& leaf, const std::vector<T>& items) {
  const auto n = static_cast<int64_t>(items.size());
  if ((leaf.min_items && n < *leaf.min_items) || (leaf.max_items && n > *leaf.max_items)) {
    std::string want = leaf.min_items == leaf.max_items
                           ? "exactly " + std::to_string(*leaf.min_items)
                       : leaf.max_items ? "between " + std::to_string(leaf.min_items.value_or(0)) +
                                              " and " + std::to_string(*leaf.max_items)
                                        : "at least " + std::to_string(*leaf.min_items);
    return InvalidArgumentError("expected a list of " + want + " elements, found " +
                                std::to_string(n));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    Status s = CheckScalar(leaf, leaf.element_type, ConfigValue(items[i]));
    if (!s.ok()) return InvalidArgumentError("element " + std::to_string(i) + ": " + s.message());
  }
  return OkStatus();
}

// Plain YAML is kept for identifiers, paths and prose; anything YAML could read as another type
// or as syntax is double-quoted (JSON escaping is valid YAML).
bool CanStayPlain(const std::string& s) {
  if (s.empty() ||
      !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_' || s[0] == '/')) {
    return false;
  }
  if (s.back() == ' ' || s.back() == ':' || s.find(": ") != std::string::npos) return false;
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  static const std::set<std::string> kReserved = {
      "null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf", "infinity"};
  if (kReserved.count(lower)) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("_./:+-@ ").find(c) != std::string_view::npos;
  });
}

std::string FormatString(const std::string& s) {
  if (CanStayPlain(s)) return s;
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

template <typename T, typename F>
std::string FormatList(const std::vector<T>& items, F format) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + format(items[i]);
  return out + "]";
}

Status SchemaError(const std::string& path, const std::string& message) {
  return InvalidArgumentError("config schema: " + (path.empty() ? "<root>" : path) + ": " +
                              message);
}

std::string JoinPath(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

StatusOr<double> SchemaNumber(const std::string& path, const char* field, const YAML::Node& n) {
  auto d = n.IsScalar() ? ParseDoubleText(n.Scalar()) : std::nullopt;
  if (!d) return SchemaError(path, std::string(field) + " must be a number");
  return *d;
}

StatusOr<SchemaLeaf> ParseLeaf(const std::string& path, const YAML::Node& spec) {
  static const std::set<std::string> kFields = {
      "type", "of", "values", "default", "min", "max", "min_items", "max_items", "nullable", "doc"};
  for (const auto& kv : spec) {
    if (!kFields.count(kv.first.Scalar())) {
      return SchemaError(path, "unknown schema field '" + kv.first.Scalar() + "'");
    }
  }
  SchemaLeaf leaf;
  leaf.path = path;
  auto type = ParseTypeName(spec["type"].Scalar());
  if (!type) return SchemaError(path, "unknown type '" + spec["type"].Scalar() + "'");
  leaf.type = *type;
  if (leaf.is_list()) {
    auto of =
        spec["of"] && spec["of"].IsScalar() ? ParseTypeName(spec["of"].Scalar()) : std::nullopt;
    if (!of || *of == ConfigType::kList || *of == ConfigType::kBool || *of == ConfigType::kPath) {
      return SchemaError(path, "a list needs 'of: string|enum|float|int'");
    }
    leaf.element_type = *of;
  } else if (spec["of"]) {
    return SchemaError(path, "'of' is only for lists");
  }
  bool is_enum =
      leaf.type == ConfigType::kEnum || (leaf.is_list() && leaf.element_type == ConfigType::kEnum);
  if (is_enum) {
    if (!spec["values"] || !spec["values"].IsSequence() || spec["values"].size() == 0) {
      return SchemaError(path, "an enum needs a non-empty 'values' list");
    }
    for (const auto& v : spec["values"]) leaf.values.push_back(v.Scalar());
  } else if (spec["values"]) {
    return SchemaError(path, "'values' is only for enums");
  }
  for (auto [field, bound] : {std::pair{"min", &leaf.min}, std::pair{"max", &leaf.max}}) {
    if (!spec[field]) continue;
    ASSIGN_OR_RETURN(*bound, SchemaNumber(path, field, spec[field]));
  }
  for (auto [field, bound] :
       {std::pair{"min_items", &leaf.min_items}, std::pair{"max_items", &leaf.max_items}}) {
    if (!spec[field]) continue;
    auto n = spec[field].IsScalar() ? ParseIntText(spec[field].Scalar()) : std::nullopt;
    if (!leaf.is_list() || !n) {
      return SchemaError(path, std::string(field) + " is for lists and must be an int");
    }
    *bound = *n;
  }
  if (spec["nullable"]) {
    auto b = spec["nullable"].IsScalar() ? ParseBoolText(spec["nullable"].Scalar()) : std::nullopt;
    if (!b) return SchemaError(path, "nullable must be true or false");
    leaf.nullable = *b;
  }
  if (!spec["doc"] || !spec["doc"].IsScalar() || spec["doc"].Scalar().empty()) {
    return SchemaError(path, "every key needs a 'doc'");
  }
  leaf.doc = spec["doc"].Scalar();
  if (!spec["default"]) return SchemaError(path, "every key needs a 'default'");
  auto value = ConvertConfigValue(leaf, spec["default"]);
  if (!value.ok()) return SchemaError(path, "default: " + value.status().message());
  if (Status s = CheckConfigValue(leaf, *value); !s.ok()) {
    return SchemaError(path, "default: " + s.message());
  }
  leaf.default_value = std::move(value).value();
  return leaf;
}

Status ParseSection(const YAML::Node& map, SchemaNode& node, std::vector<SchemaLeaf>& leaves) {
  if (!map.IsMap()) return SchemaError(node.path, "a section must be a map");
  for (const auto& kv : map) {
    const std::string name = kv.first.Scalar();
    if (name == "doc" && kv.second.IsScalar()) {
      node.doc = kv.second.Scalar();
      continue;
    }
    const std::string path = JoinPath(node.path, name);
    if (node.Child(name) != nullptr) return SchemaError(path, "defined twice");
    if (!kv.second.IsMap()) return SchemaError(path, "expected a key spec or a section (a map)");
    SchemaNode child;
    child.name = name;
    child.path = path;
    if (kv.second["type"] && kv.second["type"].IsScalar()) {
      ASSIGN_OR_RETURN(SchemaLeaf leaf, ParseLeaf(path, kv.second));
      child.leaf_index = static_cast<int>(leaves.size());
      leaves.push_back(std::move(leaf));
    } else {
      RETURN_IF_ERROR(ParseSection(kv.second, child, leaves));
    }
    node.children.push_back(std::move(child));
  }
  return OkStatus();
}

void CollectPaths(const SchemaNode& node, std::vector<const SchemaNode*>& out) {
  for (const auto& c : node.children) {
    out.push_back(&c);
    CollectPaths(c, out);
  }
}

}  // namespace

std::string_view ConfigTypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kBool:
      return "bool";
    case ConfigType::kInt:
      return "int";
    case ConfigType::kFloat:
      return "float";
    case ConfigType::kString:
      return "string";
    case ConfigType::kPath:
      return "path";
    case ConfigType::kEnum:
      return "enum";
    case ConfigType::kList:
      return "list";
  }
  return "?";
}

std::string SchemaLeaf::TypeDescription() const {
  std::string t(ConfigTypeName(type));
  if (is_list()) t += " of " + std::string(ConfigTypeName(element_type));
  return t;
}

std::string SchemaLeaf::RangeDescription() const {
  const bool integral = (is_list() ? element_type : type) == ConfigType::kInt;
  auto format = [integral](double v) {
    return integral ? std::to_string(static_cast<long long>(v)) : FormatConfigDouble(v);
  };
  if (min && max) return "[" + format(*min) + ", " + format(*max) + "]";
  if (min) return ">= " + format(*min);
  if (max) return "<= " + format(*max);
  return "";
}

const SchemaNode* SchemaNode::Child(std::string_view child_name) const {
  for (const auto& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

StatusOr<ConfigSchema> ConfigSchema::Parse(std::string_view text) {
  ConfigSchema schema;
  try {
    YAML::Node doc = YAML::Load(std::string(text));
    RETURN_IF_ERROR(ParseSection(doc, schema.root_, schema.leaves_));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("config schema: line " + std::to_string(e.mark.line + 1) +
                                ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return schema;
}

const SchemaNode* ConfigSchema::FindNode(std::string_view path) const {
  const SchemaNode* node = &root_;
  while (!path.empty() && node != nullptr) {
    size_t dot = path.find('.');
    node = node->Child(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return node;
}

const SchemaLeaf* ConfigSchema::FindLeaf(std::string_view path) const {
  const SchemaNode* node = FindNode(path);
  return node != nullptr && node->is_leaf() ? &leaves_[node->leaf_index] : nullptr;
}

std::string ConfigSchema::Suggest(std::string_view unknown_path) const {
  std::vector<const SchemaNode*> all;
  CollectPaths(root_, all);
  std::string_view last = unknown_path.substr(unknown_path.rfind('.') + 1);
  // A typo: the closest full path, within a budget that grows with the name's length.
  const SchemaNode* best = nullptr;
  size_t best_distance = std::max<size_t>(2, last.size() / 3) + 1;
  for (const SchemaNode* n : all) {
    size_t d = EditDistance(unknown_path, n->path);
    if (d < best_distance) best = n, best_distance = d;
  }
  if (best != nullptr) return best->path;
  // A key put in the wrong section: the same name elsewhere.
  std::string same_name;
  for (const SchemaNode* n : all) {
    if (n->name == last) same_name += (same_name.empty() ? "" : " or ") + n->path;
  }
  return same_name;
}

const ConfigSchema& BuiltinConfigSchema() {
  static const ConfigSchema* schema = [] {
    auto parsed = ConfigSchema::Parse(kConfigSchemaText);
    if (!parsed.ok()) {
      std::fprintf(stderr, "fatal: built-in %s\n", parsed.status().message().c_str());
      std::abort();
    }
    return new ConfigSchema(std::move(parsed).value());
  }();
  return *schema;
}

StatusOr<ConfigValue> ConvertConfigValue(const SchemaLeaf& leaf, const YAML::Node& node) {
  try {
    if (!node.IsDefined() || node.IsNull()) {
      if (leaf.nullable) return ConfigValue();
      return Mismatch(leaf.TypeDescription(), node);
    }
    if (!leaf.is_list()) return ConvertScalar(leaf.type, node);
    if (!node.IsSequence()) return Mismatch(leaf.TypeDescription(), node);
    std::vector<std::string> strings;
    std::vector<int64_t> ints;
    std::vector<double> doubles;
    for (size_t i = 0; i < node.size(); ++i) {
      auto element = ConvertScalar(leaf.element_type, node[i]);
      if (!element.ok()) {
        return InvalidArgumentError("element " + std::to_string(i) + ": " +
                                    element.status().message());
      }
      if (auto* s = std::get_if<std::string>(&*element)) strings.push_back(*s);
      if (auto* n = std::get_if<int64_t>(&*element)) ints.push_back(*n);
      if (auto* d = std::get_if<double>(&*element)) doubles.push_back(*d);
    }
    switch (leaf.element_type) {
      case ConfigType::kInt:
        return ConfigValue(std::move(ints));
      case ConfigType::kFloat:
        return ConfigValue(std::move(doubles));
      default:
        return ConfigValue(std::move(strings));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string("unreadable value: ") + e.what());
  }
}

Status CheckConfigValue(const SchemaLeaf& leaf, const ConfigValue& value) {
  if (std::holds_alternative<std::monostate>(value)) {
    return leaf.nullable
               ? OkStatus()
               : InvalidArgumentError("expected " + leaf.TypeDescription() + ", found null");
  }
  if (const auto* v = std::get_if<std::vector<std::string>>(&value)) return CheckElements(leaf, *v);
  if (const auto* v = std::get_if<std::vector<int64_t>>(&value)) return CheckElements(leaf, *v);
  if (const auto* v = std::get_if<std::vector<double>>(&value)) return CheckElements(leaf, *v);
  return CheckScalar(leaf, leaf.type, value);
}

std::string FormatConfigDouble(double value) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value);
  std::string s(buf, ec == std::errc() ? ptr : buf);
  if (!std::isfinite(value)) return s;
  // Keep a '.' so YAML 1.1 readers (and people) see a float, not an int or a string.
  size_t e = s.find('e');
  if (s.find('.') == std::string::npos) s.insert(e == std::string::npos ? s.size() : e, ".0");
  return s;
}

std::string FormatConfigValue(const ConfigValue& value) {
  struct Visitor {
    std::string operator()(std::monostate) const { return "null"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return FormatConfigDouble(d); }
    std::string operator()(const std::string& s) const { return FormatString(s); }
    std::string operator()(const std::vector<std::string>& v) const {
      return FormatList(v, FormatString);
    }
    std::string operator()(const std::vector<int64_t>& v) const {
      return FormatList(v, [](int64_t i) { return std::to_string(i); });
    }
    std::string operator()(const std::vector<double>& v) const {
      return FormatList(v, FormatConfigDouble);
    }
  };
  return std::visit(Visitor{}, value);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace clisc
