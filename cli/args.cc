#include "cli/args.h"

#include <charconv>
#include <sstream>

namespace clisc::cli {

ArgParser::ArgParser(std::string command, std::string usage, std::string summary)
    : command_(std::move(command)), usage_(std::move(usage)), summary_(std::move(summary)) {}

ArgParser& ArgParser::Option(const std::string& name, const std::string& metavar,
                             const std::string& help, std::optional<std::string> default_value,
                             bool required) {
  specs_.push_back({name, metavar, help, std::move(default_value), required, false});
  return *this;
}

ArgParser& ArgParser::Flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, std::nullopt, false, true});
  return *this;
}

ArgParser& ArgParser::Positional(const std::string& name, const std::string& help, bool required) {
  positional_specs_.push_back({name, help, required});
  return *this;
}

ArgParser& ArgParser::Epilog(const std::string& text) {
  epilog_ = text;
  return *this;
}

const ArgParser::Spec* ArgParser::Find(const std::string& name) const {
  for (const auto& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Status ArgParser::Parse(const std::vector<std::string>& args) {
  size_t next_positional = 0;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!options_done && (arg == "--help" || arg == "-h")) {
      help_requested_ = true;
      return OkStatus();
    }
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    if (!options_done && arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      std::string name = arg.substr(2);
      std::optional<std::string> inline_value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const Spec* spec = Find(name);
      if (spec == nullptr) {
        return InvalidArgumentError("clisc " + command_ + ": unknown option --" + name +
                                    " (see clisc " + command_ + " --help)");
      }
      if (spec->is_flag) {
        if (inline_value) {
          return InvalidArgumentError("clisc " + command_ + ": --" + name + " takes no value");
        }
        values_[name] = "true";
        continue;
      }
      if (inline_value) {
        values_[name] = *inline_value;
      } else if (i + 1 < args.size()) {
        values_[name] = args[++i];
      } else {
        return InvalidArgumentError("clisc " + command_ + ": --" + name + " needs a value (" +
                                    spec->metavar + ")");
      }
      continue;
    }
    if (next_positional >= positional_specs_.size()) {
      return InvalidArgumentError("clisc " + command_ + ": unexpected argument '" + arg + "'");
    }
    positionals_[positional_specs_[next_positional++].name] = arg;
  }
  for (const auto& s : specs_) {
    if (values_.count(s.name)) continue;
    if (s.default_value) {
      values_[s.name] = *s.default_value;
    } else if (s.required) {
      return InvalidArgumentError("clisc " + command_ + ": missing required option --" + s.name +
                                  " " + s.metavar);
    }
  }
  for (size_t i = next_positional; i < positional_specs_.size(); ++i) {
    if (positional_specs_[i].required) {
      return InvalidArgumentError("clisc " + command_ + ": missing argument " +
                                  positional_specs_[i].name);
    }
  }
  return OkStatus();
}

std::string ArgParser::Help() const {
  std::ostringstream out;
  out << "usage: clisc " << usage_ << "\n\n" << summary_ << "\n";
  if (!positional_specs_.empty()) {
    out << "\narguments:\n";
    for (const auto& p : positional_specs_) {
      out << "  " << p.name << std::string(p.name.size() < 24 ? 24 - p.name.size() : 1, ' ')
          << p.help << (p.required ? "" : " (optional)") << "\n";
    }
  }
  out << "\noptions:\n";
  auto line = [&out](const std::string& left, const std::string& help) {
    out << "  " << left << std::string(left.size() < 24 ? 24 - left.size() : 1, ' ') << help
        << "\n";
  };
  for (const auto& s : specs_) {
    std::string left = "--" + s.name + (s.is_flag ? "" : " " + s.metavar);
    std::string help = s.help;
    if (s.default_value && !s.default_value->empty())
      help += " [default: " + *s.default_value + "]";
    if (s.required) help += " (required)";
    line(left, help);
  }
  line("-h, --help", "show this help and exit");
  if (!epilog_.empty()) out << "\n" << epilog_ << "\n";
  return out.str();
}

bool ArgParser::Has(const std::string& name) const { return values_.count(name) > 0; }

bool ArgParser::GetFlag(const std::string& name) const {
  auto it = values_.find(name);
  return it != values_.end() && it->second == "true";
}

std::string ArgParser::Get(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::string() : it->second;
}

StatusOr<long long> ArgParser::GetInt(const std::string& name) const {
  std::string text = Get(name);
  long long v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return InvalidArgumentError("clisc " + command_ + ": --" + name + " expects an integer, got '" +
                                text + "'");
  }
  return v;
}

StatusOr<double> ArgParser::GetDouble(const std::string& name) const {
  std::string text = Get(name);
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return InvalidArgumentError("clisc " + command_ + ": --" + name + " expects a number, got '" +
                              text + "'");
}

std::string ArgParser::GetPositional(const std::string& name) const {
  auto it = positionals_.find(name);
  return it == positionals_.end() ? std::string() : it->second;
}

Status TakeRepeatedOption(std::vector<std::string>& args, const std::string& name,
                          std::vector<std::string>& values) {
  const std::string flag = "--" + name;
  const std::string joined = flag + "=";
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {  // everything after -- is positional
      rest.insert(rest.end(), args.begin() + static_cast<long>(i), args.end());
      break;
    }
    if (args[i].rfind(joined, 0) == 0) {
      values.push_back(args[i].substr(joined.size()));
    } else if (args[i] == flag) {
      if (i + 1 >= args.size()) return InvalidArgumentError(flag + " needs a value");
      values.push_back(args[++i]);
    } else {
      rest.push_back(args[i]);
    }
  }
  args = std::move(rest);
  return OkStatus();
}

}  // namespace clisc::cli
