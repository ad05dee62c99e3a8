// Helpers shared by the two halves of the method plan (method_plan.cc: the task graph;
// method_plan_dataset.cc: splits and cases from a dataset folder).
#pragma once

#include <string>
#include <vector>

namespace clisc::plan_internal {

// "a, b, c" of the first `limit` ids, then "... (N in all)".
inline std::string JoinIds(const std::vector<std::string>& ids, size_t limit = 10) {
  std::string out;
  for (size_t i = 0; i < ids.size() && i < limit; ++i) out += (i ? ", " : "") + ids[i];
  if (ids.size() > limit) out += ", ... (" + std::to_string(ids.size()) + " in all)";
  return out;
}

}  // namespace clisc::plan_internal
