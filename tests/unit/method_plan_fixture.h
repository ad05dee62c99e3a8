// The case list and helpers the method-plan tests share: c00..c05 train, c06..c07 valid,
// c08..c09 test (c09 without seg), c10 in no split.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "coordinator/method_plan.h"

namespace clisc::plan_fixture {

using nlohmann::json;

inline Config MakeConfig(const std::string& mode, std::vector<std::string> overrides = {}) {
  overrides.push_back("mode=" + mode);
  StatusOr<Config> config = LoadConfigString("", "test", overrides);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return *config;
}

inline MethodPlanInputs MakeInputs() {
  MethodPlanInputs inputs;
  for (int i = 0; i <= 10; ++i) {
    const std::string id = (i < 10 ? "c0" : "c") + std::to_string(i);
    inputs.cases.push_back({id, "/data/brats/" + id, i != 9});
  }
  inputs.splits.train = {"c03", "c00", "c05", "c01", "c04", "c02"};
  inputs.splits.valid = {"c07", "c06"};
  inputs.splits.test = {"c09", "c08"};
  return inputs;
}

inline std::vector<TaskSpec> Plan(const Config& config, const MethodPlanInputs& inputs) {
  StatusOr<std::vector<TaskSpec>> tasks = PlanMethodStages(config, inputs);
  EXPECT_TRUE(tasks.ok()) << tasks.status().ToString();
  return tasks.ok() ? *tasks : std::vector<TaskSpec>{};
}

inline const TaskSpec& Find(const std::vector<TaskSpec>& tasks, const std::string& key) {
  auto it = std::find_if(tasks.begin(), tasks.end(),
                         [&](const TaskSpec& t) { return t.task_key == key; });
  if (it == tasks.end()) {
    ADD_FAILURE() << "no task " << key;
    static const TaskSpec kNone;
    return kNone;
  }
  return *it;
}

inline bool Has(const std::vector<TaskSpec>& tasks, const std::string& key) {
  return std::any_of(tasks.begin(), tasks.end(),
                     [&](const TaskSpec& t) { return t.task_key == key; });
}

inline json ParamsOf(const std::vector<TaskSpec>& tasks, const std::string& key) {
  return json::parse(Find(tasks, key).params_json);
}

// name -> path of the params' outputs, failing on repeats.
inline std::map<std::string, std::string> Outputs(const json& params) {
  std::map<std::string, std::string> out;
  for (const json& o : params.at("outputs")) {
    EXPECT_TRUE(out.emplace(o.at("name"), o.at("path")).second) << o.dump();
  }
  return out;
}

inline std::set<std::string> Keys(const json& object) {
  std::set<std::string> keys;
  for (const auto& item : object.items()) keys.insert(item.key());
  return keys;
}

inline std::map<std::string, int> CountByStage(const std::vector<TaskSpec>& tasks) {
  std::map<std::string, int> counts;
  for (const auto& [stage, n] : TaskCountsByStage(tasks)) counts[stage] = n;
  return counts;
}

inline std::set<std::string> DepsOf(const std::vector<TaskSpec>& tasks, const std::string& key) {
  const auto& d = Find(tasks, key).depends_on;
  return {d.begin(), d.end()};
}

}  // namespace clisc::plan_fixture
