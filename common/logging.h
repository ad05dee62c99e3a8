// Structured logging: one line per event, an event name plus key=value fields (run, task, case
// ids...). Text lines for people, JSON lines for machines (--log-format json). Logs go to stderr
// so that stdout stays clean for command output and --json.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace clisc {

enum class LogLevel { kDebug, kInfo, kWarn, kError, kOff };
enum class LogFormat { kText, kJson };

struct LogField {
  std::string key;
  std::string value;
  LogField(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  LogField(std::string k, const char* v) : key(std::move(k)), value(v) {}
  LogField(std::string k, std::string_view v) : key(std::move(k)), value(v) {}
  template <typename N, typename = std::enable_if_t<std::is_arithmetic_v<N>>>
  LogField(std::string k, N v) : key(std::move(k)), value(FormatNumber(v)) {}

 private:
  template <typename N>
  static std::string FormatNumber(N v) {
    if constexpr (std::is_same_v<N, bool>) return v ? "true" : "false";
    else if constexpr (std::is_floating_point_v<N>) return FormatDouble(static_cast<double>(v));
    else return std::to_string(v);
  }
  static std::string FormatDouble(double v);
};

StatusOr<LogLevel> ParseLogLevel(std::string_view text);
StatusOr<LogFormat> ParseLogFormat(std::string_view text);

// Sets up the process-wide logger (stderr). Safe to call again to change level or format.
void InitLogging(LogLevel level, LogFormat format, std::string_view component = "clisc");

// The settings in force (a command that overrides one keeps the other as the user set it).
LogLevel CurrentLogLevel();
LogFormat CurrentLogFormat();
void LogEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});
inline void LogDebug(std::string_view e, std::initializer_list<LogField> f = {}) { LogEvent(LogLevel::kDebug, e, f); }
inline void LogInfo(std::string_view e, std::initializer_list<LogField> f = {}) { LogEvent(LogLevel::kInfo, e, f); }
inline void LogWarn(std::string_view e, std::initializer_list<LogField> f = {}) { LogEvent(LogLevel::kWarn, e, f); }
inline void LogError(std::string_view e, std::initializer_list<LogField> f = {}) { LogEvent(LogLevel::kError, e, f); }

// Renders one event as a line without the timestamp/level prefix (for tests and reports).
std::string FormatEventText(std::string_view event, const std::vector<LogField>& fields);
std::string FormatEventJson(std::string_view event, const std::vector<LogField>& fields);

}  // namespace clisc
