// Roles for testing and benchmarking the runtime itself; they need no model and no data.
//   noop           returns at once (per-task overhead of the runtime, for the benchmark)
//   sleep          {"ms": 100}: sleeps, reporting progress; stops early when cancelled
//   fail           {"times": 1, "code": "UNAVAILABLE", "message": "..."}: fails with that code
//                  while attempt <= times, then succeeds
//   crash          {"times": 1, "after_ms": 50}: while attempt <= times, aborts the whole worker
//                  process after after_ms
//   write_artifact {"bytes": 4096, "ms": 0}: verifies every input, then writes every expected
//                  output with content that depends only on its path (reruns write equal bytes)
// Parameters are a JSON object; a malformed one fails the task with INVALID_ARGUMENT.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "workers/runtime/role_registry.h"

namespace clisc::worker {

Status RegisterTestRoles(RoleRegistry& registry);

// What write_artifact writes at `path`: SHA-256 digests of "<path>:<counter>" laid end to end,
// cut to `size` bytes.
std::string DeterministicArtifactBytes(std::string_view path, uint64_t size);

}  // namespace clisc::worker
