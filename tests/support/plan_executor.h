// Runs a method plan in one process, task by task in plan order, with the roles of a registry and
// inputs named as the coordinator names them: the roles' logic under test without processes or
// sockets (the integration tests cover those).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/artifact_store.h"
#include "coordinator/ledger_types.h"
#include "workers/runtime/role_registry.h"

namespace clisc::testing {

class PlanExecutor {
 public:
  PlanExecutor(const worker::RoleRegistry* registry, const ArtifactStore* store)
      : registry_(registry), store_(store) {}

  // Runs one task; its dependencies must have run. The role's status is returned as it is.
  StatusOr<worker::TaskOutput> Run(const TaskSpec& task) {
    worker::TaskSpec spec;
    spec.task_id = task.task_key;
    spec.role = task.role;
    spec.stage = task.stage;
    spec.case_id = task.case_id.value_or("");
    spec.round = static_cast<uint32_t>(task.round);
    spec.params_json = task.params_json;
    for (const std::string& dep : task.depends_on) {
      auto it = done_.find(dep);
      if (it == done_.end()) return FailedPreconditionError(dep + " has not run");
      const Produced& producer = it->second;
      for (const worker::OutputArtifact& out : producer.outputs) {
        std::string name = producer.stage + "/";
        if (producer.case_id && producer.case_id != task.case_id) name += *producer.case_id + "/";
        spec.inputs.push_back({name + out.name, out.path, out.sha256, out.size});
      }
    }
    const nlohmann::json params = nlohmann::json::parse(task.params_json);
    for (const nlohmann::json& out : params.value("outputs", nlohmann::json::array())) {
      spec.expected_outputs.push_back({out["name"], out["path"]});
    }
    ASSIGN_OR_RETURN(std::unique_ptr<worker::Role> role, registry_->Create(task.role));
    worker::TaskContext context(spec, store_, "cpu", std::make_shared<worker::LeaseControl>(),
                                nullptr);
    StatusOr<worker::TaskOutput> output = role->Run(context);
    if (output.ok()) done_[task.task_key] = {task.stage, task.case_id, output->outputs};
    return output;
  }

  // Runs every task in order; fails the test at the first error.
  void RunAll(const std::vector<TaskSpec>& tasks) {
    for (const TaskSpec& task : tasks) {
      StatusOr<worker::TaskOutput> output = Run(task);
      ASSERT_TRUE(output.ok()) << task.task_key << ": " << output.status().ToString();
      metrics_[task.task_key] = output->metrics;
    }
  }

  const std::map<std::string, double>& metrics(const std::string& key) { return metrics_[key]; }

 private:
  struct Produced {
    std::string stage;
    std::optional<std::string> case_id;
    std::vector<worker::OutputArtifact> outputs;
  };
  const worker::RoleRegistry* registry_;
  const ArtifactStore* store_;
  std::map<std::string, Produced> done_;
  std::map<std::string, std::map<std::string, double>> metrics_;
};

}  // namespace clisc::testing
