// How `clisc status` reads a run's live view from Redis, from any host: the status document the
// coordinator's LiveStateMirror wrote (keys in live_state_mirror.h). Each call opens its own
// connection and finishes within `timeout`, connecting included.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clisc {

struct MirroredStatus {
  std::string run_name;
  std::string status_json;  // as the coordinator built it
  int64_t mirrored_ms = 0;  // wall-clock ms when the mirror wrote it (0 if unknown)
};

// The status of `run_name`, or of <prefix>:current_run when it is empty. NOT_FOUND when Redis
// has no such run (or no current run), UNAVAILABLE when Redis cannot be reached in time,
// INVALID_ARGUMENT for a bad URL, PERMISSION_DENIED for refused credentials.
StatusOr<MirroredStatus> ReadMirroredStatus(
    const std::string& redis_url, std::string_view run_name, std::string_view key_prefix = "clisc",
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// Every run mirrored under the prefix, sorted by name (empty when there are none).
StatusOr<std::vector<std::string>> ListMirroredRuns(
    const std::string& redis_url, std::string_view key_prefix = "clisc",
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

}  // namespace clisc
