// `clisc config validate|show|reference`: check a run config, print the effective config, and
// print the config reference (every key with type, default, range and meaning) from the schema
// compiled into the binary.
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "common/config.h"

namespace clisc::cli {
namespace {

constexpr char kConfigUsage[] =
    "usage: clisc config validate FILE [--set KEY=VALUE]... [--json]\n"
    "       clisc config show FILE [--set KEY=VALUE]... [--json]\n"
    "       clisc config reference [--markdown | --json]\n\n"
    "Check a run config, print the effective config (defaults filled in), or print the config\n"
    "reference. Run 'clisc config <subcommand> --help' for details.\n";

constexpr char kSetHelp[] =
    "--set KEY=VALUE overrides one key after the file (repeatable, applied in order); VALUE is\n"
    "YAML: --set train.epochs=5 --set train.patch_size=[64,64,64] --set sam.checkpoint=null";

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Parses FILE, --set and --json for validate and show; returns -1 to go on, else an exit code.
int ParseFileCommand(const std::string& name, std::vector<std::string> args, ArgParser& parser,
                     std::vector<std::string>& overrides) {
  Status status = TakeRepeatedOption(args, "set", overrides);
  if (!status.ok()) {
    std::cerr << "error: clisc config " << name << ": " << status.message() << "\n";
    return kExitUsage;
  }
  parser.Positional("FILE", "the YAML config file")
      .Option("set", "KEY=VALUE", "override a key (repeatable)")
      .Flag("json", "print JSON")
      .Epilog(kSetHelp);
  return ParseCommandLine(parser, args);
}

StatusOr<Config> LoadFromParser(const ArgParser& parser,
                                const std::vector<std::string>& overrides) {
  return LoadConfigFile(parser.GetPositional("FILE"), overrides);
}

int RunValidate(const std::vector<std::string>& args) {
  ArgParser parser("config validate", "config validate FILE [--set KEY=VALUE]... [--json]",
                   "Check a config against the schema; exit 2 when it is invalid.");
  std::vector<std::string> overrides;
  if (int rc = ParseFileCommand("validate", args, parser, overrides); rc >= 0) return rc;
  const std::string file = parser.GetPositional("FILE");
  auto config = LoadFromParser(parser, overrides);
  const bool json = parser.GetFlag("json");
  if (!config.ok()) {
    auto errors = SplitLines(config.status().message());
    if (json) {
      std::cout << nlohmann::json{{"ok", false}, {"file", file}, {"errors", errors}}.dump(2)
                << "\n";
    } else {
      for (const auto& e : errors) std::cerr << "error: " << e << "\n";
      std::cerr << file << ": invalid (" << errors.size() << " problem"
                << (errors.size() == 1 ? "" : "s") << ")\n";
    }
    return kExitUsage;
  }
  if (json) {
    std::cout << nlohmann::json{{"ok", true},
                                {"file", file},
                                {"mode", config->GetString("mode")},
                                {"fingerprint", config->Fingerprint("")}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "OK: " << config->source() << " (mode " << config->GetString("mode") << ")\n";
  }
  return kExitOk;
}

int RunShow(const std::vector<std::string>& args) {
  ArgParser parser("config show", "config show FILE [--set KEY=VALUE]... [--json]",
                   "Print the effective config: the file and overrides over the defaults.");
  std::vector<std::string> overrides;
  if (int rc = ParseFileCommand("show", args, parser, overrides); rc >= 0) return rc;
  auto config = LoadFromParser(parser, overrides);
  if (!config.ok()) {
    for (const auto& e : SplitLines(config.status().message())) std::cerr << "error: " << e << "\n";
    return kExitUsage;
  }
  std::cout << (parser.GetFlag("json") ? config->ToJson() + "\n" : config->ToYaml());
  return kExitOk;
}

// "[0.0, 1.0]", ">= 1", "3 items" ...: the constraints of a key in one short phrase.
std::string Constraints(const SchemaLeaf& leaf, bool markdown) {
  std::vector<std::string> parts;
  if (!leaf.values.empty()) {
    std::string v;
    for (const auto& value : leaf.values) {
      v += (v.empty() ? "" : markdown ? ", " : " | ") + (markdown ? "`" + value + "`" : value);
    }
    parts.push_back(v);
  }
  if (std::string range = leaf.RangeDescription(); !range.empty()) {
    parts.push_back((leaf.is_list() ? "each " : "") + range);
  }
  if (leaf.min_items && leaf.min_items == leaf.max_items) {
    parts.push_back(std::to_string(*leaf.min_items) + " items");
  } else if (leaf.min_items || leaf.max_items) {
    parts.push_back(std::to_string(leaf.min_items.value_or(0)) + ".." +
                    (leaf.max_items ? std::to_string(*leaf.max_items) : "") + " items");
  }
  if (leaf.nullable) parts.push_back("nullable");
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

std::string Wrap(const std::string& text, size_t indent, size_t width) {
  std::istringstream words(text);
  std::string out(indent, ' '), word;
  size_t column = indent;
  for (bool first = true; words >> word; first = false) {
    if (!first && column + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
    } else if (!first) {
      out += " ";
      ++column;
    }
    out += word;
    column += word.size();
  }
  return out + "\n";
}

std::string MarkdownCell(std::string s) {
  for (size_t p = 0; (p = s.find('|', p)) != std::string::npos; p += 2) s.replace(p, 1, "\\|");
  return s;
}

void PrintReferenceText(const ConfigSchema& schema) {
  auto walk = [&](auto&& self, const SchemaNode& node) -> void {
    if (!node.path.empty() && !node.is_leaf()) {
      std::cout << "\n[" << node.path << "]\n";
      if (!node.doc.empty()) std::cout << Wrap(node.doc, 2, 98);
    }
    for (const auto& child : node.children) {
      if (!child.is_leaf()) continue;
      const SchemaLeaf& leaf = schema.leaves()[child.leaf_index];
      std::string line = leaf.path + "  " + leaf.TypeDescription() +
                         "  default: " + FormatConfigValue(leaf.default_value);
      std::string c = Constraints(leaf, false);
      std::cout << "  " << line << (c.empty() ? "" : "  (" + c + ")") << "\n"
                << Wrap(leaf.doc, 6, 98);
    }
    for (const auto& child : node.children) {
      if (!child.is_leaf()) self(self, child);
    }
  };
  std::cout << "clisc config reference: every key, its type, default, allowed values and "
               "meaning.\n[top level]\n";
  walk(walk, schema.root());
}

void PrintReferenceMarkdown(const ConfigSchema& schema) {
  std::cout << "# clisc config reference\n\nGenerated by `clisc config reference --markdown` "
               "from `schemas/config.yaml`. Keys are dotted paths into the YAML config.\n";
  auto walk = [&](auto&& self, const SchemaNode& node) -> void {
    bool has_leaves = false;
    for (const auto& c : node.children) has_leaves |= c.is_leaf();
    if (has_leaves) {
      std::cout << "\n## " << (node.path.empty() ? "top level" : "`" + node.path + "`") << "\n\n";
      if (!node.doc.empty()) std::cout << node.doc << "\n\n";
      std::cout << "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n";
      for (const auto& child : node.children) {
        if (!child.is_leaf()) continue;
        const SchemaLeaf& leaf = schema.leaves()[child.leaf_index];
        std::cout << "| `" << leaf.path << "` | " << leaf.TypeDescription() << " | `"
                  << MarkdownCell(FormatConfigValue(leaf.default_value)) << "` | "
                  << MarkdownCell(Constraints(leaf, true)) << " | " << MarkdownCell(leaf.doc)
                  << " |\n";
      }
    }
    for (const auto& child : node.children) {
      if (!child.is_leaf()) self(self, child);
    }
  };
  walk(walk, schema.root());
}

nlohmann::json ValueJson(const ConfigValue& value) {
  return std::visit(
      [](const auto& v) -> nlohmann::json {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>) {
          return nullptr;
        } else {
          return v;
        }
      },
      value);
}

nlohmann::json ReferenceJson(const ConfigSchema& schema) {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& leaf : schema.leaves()) {
    nlohmann::json k{{"key", leaf.path},
                     {"type", std::string(ConfigTypeName(leaf.type))},
                     {"default", ValueJson(leaf.default_value)},
                     {"nullable", leaf.nullable},
                     {"doc", leaf.doc}};
    if (leaf.is_list()) k["of"] = std::string(ConfigTypeName(leaf.element_type));
    if (!leaf.values.empty()) k["values"] = leaf.values;
    if (leaf.min) k["min"] = *leaf.min;
    if (leaf.max) k["max"] = *leaf.max;
    if (leaf.min_items) k["min_items"] = *leaf.min_items;
    if (leaf.max_items) k["max_items"] = *leaf.max_items;
    keys.push_back(std::move(k));
  }
  nlohmann::json sections = nlohmann::json::array();
  auto walk = [&](auto&& self, const SchemaNode& node) -> void {
    for (const auto& child : node.children) {
      if (child.is_leaf()) continue;
      sections.push_back({{"section", child.path}, {"doc", child.doc}});
      self(self, child);
    }
  };
  walk(walk, schema.root());
  return {{"sections", sections}, {"keys", keys}};
}

int RunReference(const std::vector<std::string>& args) {
  ArgParser parser("config reference", "config reference [--markdown | --json]",
                   "Print every config key with its type, default, allowed values and meaning.");
  parser.Flag("markdown", "print a Markdown document").Flag("json", "print JSON");
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;
  if (parser.GetFlag("markdown") && parser.GetFlag("json")) {
    std::cerr << "error: clisc config reference: --markdown and --json exclude each other\n";
    return kExitUsage;
  }
  const ConfigSchema& schema = BuiltinConfigSchema();
  if (parser.GetFlag("json")) {
    std::cout << ReferenceJson(schema).dump(2) << "\n";
  } else if (parser.GetFlag("markdown")) {
    PrintReferenceMarkdown(schema);
  } else {
    PrintReferenceText(schema);
  }
  return kExitOk;
}

int RunConfig(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kConfigUsage;
    return kExitUsage;
  }
  const std::string& sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "validate") return RunValidate(rest);
  if (sub == "show") return RunShow(rest);
  if (sub == "reference") return RunReference(rest);
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::cout << kConfigUsage;
    return kExitOk;
  }
  std::cerr << "error: clisc config: unknown subcommand '" << sub << "'\n\n" << kConfigUsage;
  return kExitUsage;
}

}  // namespace
CLISC_REGISTER_COMMAND("config", "validate, show or document run configs", RunConfig);
}  // namespace clisc::cli
