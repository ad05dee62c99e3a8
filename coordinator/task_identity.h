// Task identity for runs that are planned again and again on one ledger (`clisc run`). The
// planner names tasks by stage and case ("prep/BraTS20_001"); this gives each task the key
// MakeTaskKey makes from its stage, case, round, params (the config sections it reads, its outputs
// and extras) and the keys of its dependencies, plus, for a task that reads a case's raw files, a
// stamp of those files. Keys chain, so a changed config section or a changed input file changes
// exactly the keys of the tasks it reaches; planned with UpsertOptions::replace_plan, the ledger
// reuses every other finished task and supersedes the stale open ones.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/ledger_types.h"

namespace clisc {

// The stamp of a folder's files: name, size and modification time (ns) of every regular file in
// it, sorted by name, hashed. Reading sizes and times, not contents, keeps planning thousands of
// cases cheap; a copy that keeps times (rsync -a, cp -p) keeps the stamp. NOT_FOUND when `dir` is
// not a readable folder.
StatusOr<std::string> StampFolderFiles(const std::filesystem::path& dir);

// `tasks` (dependencies listed before their dependents, as the planner gives them) with identity
// keys. `case_stamps` maps a case id to the stamp of its raw files; it is mixed into the tasks of
// that case without dependencies (they read the raw files). INVALID_ARGUMENT when a dependency is
// not an earlier task of the list.
StatusOr<std::vector<TaskSpec>> WithIdentityKeys(
    const std::vector<TaskSpec>& tasks, const std::map<std::string, std::string>& case_stamps);

}  // namespace clisc
