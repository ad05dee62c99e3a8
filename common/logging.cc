#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

namespace clisc {
namespace {

struct LoggerState {
  std::mutex mu;
  LogFormat format = LogFormat::kText;
  LogLevel level = LogLevel::kInfo;
  std::shared_ptr<spdlog::logger> logger;
};

LoggerState& State() {
  static LoggerState* state = new LoggerState();  // never destroyed: logging works in atexit
  return *state;
}

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

bool NeedsQuoting(const std::string& v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') return true;
  }
  return false;
}

}  // namespace

std::string LogField::FormatDouble(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

StatusOr<LogLevel> ParseLogLevel(std::string_view text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warn" || text == "warning") return LogLevel::kWarn;
  if (text == "error") return LogLevel::kError;
  if (text == "off") return LogLevel::kOff;
  return InvalidArgumentError("log level must be debug, info, warn, error or off, got '" +
                              std::string(text) + "'");
}

StatusOr<LogFormat> ParseLogFormat(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return InvalidArgumentError("log format must be text or json, got '" + std::string(text) + "'");
}

LogLevel CurrentLogLevel() {
  LoggerState& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.logger ? s.level : LogLevel::kInfo;
}

LogFormat CurrentLogFormat() {
  LoggerState& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.logger ? s.format : LogFormat::kText;
}

void InitLogging(LogLevel level, LogFormat format, std::string_view component) {
  LoggerState& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.logger) {
    s.logger = std::make_shared<spdlog::logger>(std::string(component),
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
  }
  s.level = level;
  s.format = format;
  s.logger->set_level(ToSpd(level));
  if (format == LogFormat::kJson) {
    s.logger->set_pattern("%v");  // the message is a complete JSON object
  } else {
    s.logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  }
}

std::string FormatEventText(std::string_view event, const std::vector<LogField>& fields) {
  std::string line(event);
  for (const auto& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    if (NeedsQuoting(f.value)) {
      line += nlohmann::json(f.value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      line += f.value;
    }
  }
  return line;
}

std::string FormatEventJson(std::string_view event, const std::vector<LogField>& fields) {
  nlohmann::ordered_json j;
  j["event"] = event;
  for (const auto& f : fields) j[f.key] = f.value;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void LogEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  LoggerState& s = State();
  if (!s.logger) InitLogging(LogLevel::kInfo, LogFormat::kText);
  if (level < s.level || level == LogLevel::kOff) return;
  std::vector<LogField> all(fields);
  if (s.format == LogFormat::kJson) {
    nlohmann::ordered_json j;
    j["ts"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    j["level"] = spdlog::level::to_string_view(ToSpd(level)).data();
    j["event"] = event;
    for (const auto& f : all) j[f.key] = f.value;
    s.logger->log(ToSpd(level), "{}", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    s.logger->log(ToSpd(level), "{}", FormatEventText(event, all));
  }
}

}  // namespace clisc
