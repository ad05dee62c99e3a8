#include "coordinator/task_plan_file.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

namespace clisc {
namespace {

using nlohmann::json;

StatusOr<std::string> RequiredString(const json& task, const char* field, size_t index) {
  auto it = task.find(field);
  if (it == task.end() || !it->is_string() || it->get<std::string>().empty()) {
    return InvalidArgumentError("tasks[" + std::to_string(index) + "]." + field +
                                " must be a non-empty string");
  }
  return it->get<std::string>();
}

}  // namespace

StatusOr<std::vector<TaskSpec>> ParseTaskPlan(std::string_view json_text,
                                              int default_max_attempts) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgumentError("plan is not valid JSON");
  if (!doc.is_object() || !doc.contains("tasks") || !doc["tasks"].is_array()) {
    return InvalidArgumentError("plan must be an object with a \"tasks\" array");
  }
  std::vector<TaskSpec> specs;
  specs.reserve(doc["tasks"].size());
  std::unordered_set<std::string> keys;
  size_t index = 0;
  for (const json& task : doc["tasks"]) {
    const std::string where = "tasks[" + std::to_string(index) + "]";
    if (!task.is_object()) return InvalidArgumentError(where + " is not an object");
    TaskSpec spec;
    ASSIGN_OR_RETURN(spec.task_key, RequiredString(task, "key", index));
    ASSIGN_OR_RETURN(spec.stage, RequiredString(task, "stage", index));
    ASSIGN_OR_RETURN(spec.role, RequiredString(task, "role", index));
    if (auto it = task.find("case"); it != task.end() && !it->is_null()) {
      if (!it->is_string() || it->get<std::string>().empty()) {
        return InvalidArgumentError(where + ".case must be a non-empty string or null");
      }
      spec.case_id = it->get<std::string>();
    }
    if (auto it = task.find("round"); it != task.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0) {
        return InvalidArgumentError(where + ".round must be an integer >= 0");
      }
      spec.round = it->get<int>();
    }
    spec.max_attempts = default_max_attempts;
    if (auto it = task.find("max_attempts"); it != task.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1000) {
        return InvalidArgumentError(where + ".max_attempts must be an integer in [1, 1000]");
      }
      spec.max_attempts = it->get<int>();
    }
    if (auto it = task.find("params"); it != task.end()) {
      if (!it->is_object()) return InvalidArgumentError(where + ".params must be an object");
      spec.params_json = it->dump();
    }
    if (auto it = task.find("deps"); it != task.end()) {
      if (!it->is_array()) return InvalidArgumentError(where + ".deps must be an array of keys");
      for (const json& dep : *it) {
        if (!dep.is_string() || !keys.contains(dep.get<std::string>())) {
          return InvalidArgumentError(where + ".deps names " + dep.dump() +
                                      ", which is not a key of an earlier task");
        }
        spec.depends_on.push_back(dep.get<std::string>());
      }
    }
    if (!keys.insert(spec.task_key).second) {
      return InvalidArgumentError(where + ".key '" + spec.task_key + "' is repeated");
    }
    specs.push_back(std::move(spec));
    ++index;
  }
  return specs;
}

StatusOr<std::vector<TaskSpec>> ReadTaskPlanFile(const std::filesystem::path& path,
                                                 int default_max_attempts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open plan file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  StatusOr<std::vector<TaskSpec>> specs = ParseTaskPlan(text.str(), default_max_attempts);
  if (!specs.ok()) return specs.status().WithContext(path.string());
  return specs;
}

}  // namespace clisc
