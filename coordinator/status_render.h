// Views of a status document (coordinator/status_document.h) for people and for Prometheus.
// Both read the document defensively: a field missing or of the wrong type (a document from an
// older or newer coordinator, via Redis) shows as unknown instead of failing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace clisc {

// The terminal view of `clisc status`: the run line, one progress bar per stage with counts and
// ETA, the workers with what they run, the first failures with their reasons, and where the
// document came from. `width` is the terminal's width in columns.
std::string RenderStatusText(const nlohmann::json& doc, int width = 100);

inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Prometheus text exposition format 0.0.4 (/metrics): every metric with HELP and TYPE lines,
// label values escaped.
std::string RenderPrometheus(const nlohmann::json& doc);

// "42s", "3m12s", "1h02m", "2d03h": a duration as `clisc status` shows it.
std::string FormatDurationSeconds(double seconds);

}  // namespace clisc
