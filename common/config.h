// Run configuration: YAML files validated against the config schema (schemas/config.yaml),
// layered with `--set key.path=value` overrides, and read through typed getters.
//
// Layering: schema defaults, then the file, then each override in order. Every key a file or an
// override names is checked on its own (known key, type, range, enum); the cross-key rules
// (ValidateCrossKey) run once all layers are in, so an override may complete a file.
//
// Errors are INVALID_ARGUMENT, one line per problem, each naming the source (file, with line and
// column, or "--set") and the full key path: "run.yaml:12:14: clip.threshold: 1.5 is out of
// range [0.0, 1.0]".
//
// Getters take dotted paths that must be leaves of the schema with the getter's type. A wrong
// path or type is a programming error, not a config error (the config was validated when
// loaded), so the getters abort with a message instead of returning a Status.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_schema.h"
#include "common/status.h"

namespace clisc {

class Config {
 public:
  // Every key at its schema default. The schema must outlive the Config; the cross-key rules
  // (ValidateCrossKey) assume the built-in schema.
  Config();
  explicit Config(const ConfigSchema& schema);

  // Overlays a YAML document (a map mirroring the schema; empty means no change). Returns every
  // problem found; keys without problems are applied either way.
  Status Merge(std::string_view yaml_text, const std::string& source_name);
  // Sets one key, or a whole section from a YAML map, from YAML text: "0.5", "[8, 16]", "null".
  Status Set(std::string_view path, std::string_view yaml_value_text);
  // "key.path=value", as given to --set.
  Status ApplyOverride(std::string_view assignment);
  // Rules that involve several keys (e.g. data.splits.source csv needs the CSV paths).
  Status ValidateCrossKey() const;

  bool GetBool(std::string_view path) const;
  int64_t GetInt(std::string_view path) const;
  double GetDouble(std::string_view path) const;
  // For string, path and enum keys. Aborts on null: use GetOptionalString for nullable keys.
  std::string GetString(std::string_view path) const;
  std::vector<std::string> GetStringList(std::string_view path) const;
  std::vector<double> GetDoubleList(std::string_view path) const;
  std::vector<int64_t> GetIntList(std::string_view path) const;
  bool IsNull(std::string_view path) const;
  std::optional<std::string> GetOptionalString(std::string_view path) const;
  std::optional<int64_t> GetOptionalInt(std::string_view path) const;
  const ConfigValue& GetValue(std::string_view path) const;

  // The full effective config as YAML, keys in schema order; it loads back to the same values.
  std::string ToYaml() const;
  // The same as a JSON object (nested, schema order).
  std::string ToJson() const;
  // A stable hash (FNV-1a 64, 16 hex digits) of the effective values under `section` (a dotted
  // schema path; "" for the whole config). It identifies the work a stage's config asks for:
  // it changes when any value in the section changes and not when other sections change.
  std::string Fingerprint(std::string_view section) const;

  const ConfigSchema& schema() const { return *schema_; }
  // Where the values came from, e.g. "configs/demo.yaml" or "configs/demo.yaml + --set".
  std::string source() const;

 private:
  const SchemaLeaf& LeafOrDie(std::string_view path) const;
  template <typename T>
  const T& TypedOrDie(std::string_view path, const char* getter) const;

  const ConfigSchema* schema_;
  std::vector<ConfigValue> values_;  // parallel to schema_->leaves()
  std::string source_ = "defaults";
  bool overridden_ = false;
};

// Loads a file (or text), applies the overrides ("key.path=value", in order) and runs the
// cross-key checks. NOT_FOUND when the file cannot be read; INVALID_ARGUMENT for config errors.
StatusOr<Config> LoadConfigFile(const std::string& path,
                                const std::vector<std::string>& overrides = {});
StatusOr<Config> LoadConfigString(std::string_view text, const std::string& source_name,
                                  const std::vector<std::string>& overrides = {});

}  // namespace clisc
