#include "coordinator/task_identity.h"

#include <algorithm>
#include <chrono>
#include <system_error>
#include <unordered_map>

#include "common/sha256.h"
#include "coordinator/task_key.h"

namespace clisc {

StatusOr<std::string> StampFolderFiles(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFoundError("cannot stamp " + dir.string() + ": not a readable folder");
  }
  std::vector<std::string> lines;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const uintmax_t size = it->file_size(ec);
    const auto mtime = it->last_write_time(ec);
    if (ec) break;
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count();
    lines.push_back(it->path().filename().string() + "\t" + std::to_string(size) + "\t" +
                    std::to_string(ns));
  }
  if (ec) return NotFoundError("cannot stamp " + dir.string() + ": " + ec.message());
  std::sort(lines.begin(), lines.end());
  Sha256 hash;
  for (const std::string& line : lines) {
    hash.Update(line);
    hash.Update("\n");
  }
  return hash.FinishHex();
}

StatusOr<std::vector<TaskSpec>> WithIdentityKeys(
    const std::vector<TaskSpec>& tasks, const std::map<std::string, std::string>& case_stamps) {
  std::unordered_map<std::string, std::string> renamed;  // planner key -> identity key
  std::vector<TaskSpec> out;
  out.reserve(tasks.size());
  for (const TaskSpec& task : tasks) {
    TaskKeyParts parts;
    parts.stage = task.stage;
    parts.case_id = task.case_id;
    parts.round = task.round;
    parts.stage_config = task.params_json;
    TaskSpec keyed = task;
    keyed.depends_on.clear();
    for (const std::string& dep : task.depends_on) {
      auto it = renamed.find(dep);
      if (it == renamed.end()) {
        return InvalidArgumentError("task " + task.task_key + " depends on " + dep +
                                    ", which is not an earlier task of the plan");
      }
      parts.inputs.push_back(it->second);
      keyed.depends_on.push_back(it->second);
    }
    if (task.depends_on.empty() && task.case_id.has_value()) {
      auto stamp = case_stamps.find(*task.case_id);
      if (stamp != case_stamps.end()) parts.inputs.push_back("files:" + stamp->second);
    }
    keyed.task_key = MakeTaskKey(parts);
    if (!renamed.emplace(task.task_key, keyed.task_key).second) {
      return InvalidArgumentError("task key " + task.task_key + " appears twice in one plan");
    }
    out.push_back(std::move(keyed));
  }
  return out;
}

}  // namespace clisc
