// A task graph as a JSON file: what `clisc coordinator --plan FILE` runs when no pipeline plans
// the run (test workloads, benchmarks, re-running a hand-made graph).
//
//   {"tasks": [{"key": "s1/c001", "stage": "s1", "role": "write_artifact", "case": "c001",
//               "round": 0, "params": {"bytes": 4096,
//                                      "outputs": [{"name": "out", "path": "s1/c001.bin"}]},
//               "max_attempts": 3, "deps": ["s0/c001"]}, ...]}
//
// "key", "stage" and "role" are required; a dependency must name a task of the same file that
// comes earlier (so every file is a valid plan order and has no cycles).
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/ledger_types.h"

namespace clisc {

StatusOr<std::vector<TaskSpec>> ParseTaskPlan(std::string_view json_text, int default_max_attempts);
StatusOr<std::vector<TaskSpec>> ReadTaskPlanFile(const std::filesystem::path& path,
                                                 int default_max_attempts);

}  // namespace clisc
