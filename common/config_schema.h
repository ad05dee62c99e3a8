// The config schema: the typed description of every config key, read from schemas/config.yaml
// (compiled into the binary). Config (common/config.h) validates and fills values against it,
// and `clisc config reference` prints it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace YAML {
class Node;
}

namespace clisc {

enum class ConfigType { kBool, kInt, kFloat, kString, kPath, kEnum, kList };

// "bool", "int", ... as spelled in the schema.
std::string_view ConfigTypeName(ConfigType type);

// One key's value. Lists of strings and enums are string vectors, lists of ints int vectors.
using ConfigValue = std::variant<std::monostate,  // null
                                 bool, int64_t, double, std::string, std::vector<std::string>,
                                 std::vector<int64_t>, std::vector<double>>;

struct SchemaLeaf {
  std::string path;  // dotted, e.g. "clip.threshold"
  ConfigType type = ConfigType::kString;
  ConfigType element_type = ConfigType::kString;  // lists only
  std::vector<std::string> values;                // enums and lists of enums
  std::optional<double> min, max;                 // inclusive; elements for lists
  std::optional<int64_t> min_items, max_items;    // lists only
  bool nullable = false;
  ConfigValue default_value;
  std::string doc;

  bool is_list() const { return type == ConfigType::kList; }
  // "float", "list of int", "enum" ...
  std::string TypeDescription() const;
  // "[0.0, 1.0]", ">= 1", "<= 0.5", or "" without bounds; ints print as ints.
  std::string RangeDescription() const;
};

// A section or a leaf in the schema tree. Children keep the schema file's order.
struct SchemaNode {
  std::string name;     // last path segment ("" for the root)
  std::string path;     // dotted full path ("" for the root)
  std::string doc;      // sections only, may be empty
  int leaf_index = -1;  // index into ConfigSchema::leaves(), or -1 for a section
  std::vector<SchemaNode> children;

  bool is_leaf() const { return leaf_index >= 0; }
  const SchemaNode* Child(std::string_view child_name) const;
};

class ConfigSchema {
 public:
  // Parses a schema text; errors are INVALID_ARGUMENT naming the schema path.
  static StatusOr<ConfigSchema> Parse(std::string_view text);

  const SchemaNode& root() const { return root_; }
  // All leaves in schema order.
  const std::vector<SchemaLeaf>& leaves() const { return leaves_; }
  // Returns null when `path` is not a leaf (or not a section) of the schema.
  const SchemaLeaf* FindLeaf(std::string_view path) const;
  const SchemaNode* FindNode(std::string_view path) const;
  // A known path close to `unknown_path` for "did you mean" hints, or "" when none is close.
  std::string Suggest(std::string_view unknown_path) const;

 private:
  SchemaNode root_;
  std::vector<SchemaLeaf> leaves_;
};

// The schema compiled into the binary. Aborts if it does not parse: that is a build defect, and
// a unit test keeps it from shipping.
const ConfigSchema& BuiltinConfigSchema();

// Converts a YAML node to the leaf's type. The error message says what was expected and what
// was found, without the key path (the caller adds where).
StatusOr<ConfigValue> ConvertConfigValue(const SchemaLeaf& leaf, const YAML::Node& node);
// Range, enum and length checks of an already typed value; message as above.
Status CheckConfigValue(const SchemaLeaf& leaf, const ConfigValue& value);

// The value as YAML flow text ("0.6", "[16, 32]", "null", "\"a: b\""); doubles in the shortest
// form that reads back to the same bits.
std::string FormatConfigValue(const ConfigValue& value);
std::string FormatConfigDouble(double value);

// Levenshtein distance, for suggestions.
size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace clisc
