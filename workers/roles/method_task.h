// What every method role does first: read the task's params (the stage's config sections and
// extras, coordinator/method_plan.h), find its inputs by name and write its outputs into the
// artifact store. Input names follow the coordinator: `<stage>/<artifact>` for the task's own case
// and for global producers, `<stage>/<case>/<artifact>` for other cases' artifacts.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/volume.h"
#include "common/volume_io.h"
#include "workers/runtime/role.h"

namespace clisc::roles {

// One per-case input of a global task, e.g. {"c001", path of clip_label/c001/slices}.
struct CaseInput {
  std::string case_id;
  std::filesystem::path path;
};

class MethodTask {
 public:
  // INVALID_ARGUMENT when the params are not a JSON object or their config does not validate.
  static StatusOr<MethodTask> Parse(worker::TaskContext& context);

  const Config& config() const { return config_; }
  const nlohmann::json& params() const { return params_; }
  worker::TaskContext& context() const { return *context_; }
  // A string extra of the params ("split", "source", "variant", "case_dir"), or `fallback`.
  std::string Extra(const std::string& key, const std::string& fallback = "") const;
  // "<stage> <case>" for messages.
  std::string Label() const;

  bool HasInput(std::string_view name) const;
  // The input's file in the store; NOT_FOUND naming the task and the input when absent.
  StatusOr<std::filesystem::path> InputPath(std::string_view name) const;
  // Every `<stage>/<case>/<artifact>` input, sorted by case id.
  std::vector<CaseInput> CaseInputs(std::string_view stage, std::string_view artifact) const;

  template <typename T>
  StatusOr<Volume<T>> ReadInputVolume(std::string_view name) const {
    ASSIGN_OR_RETURN(std::filesystem::path path, InputPath(name));
    return ReadVolume<T>(path);
  }
  StatusOr<nlohmann::json> ReadInputJson(std::string_view name) const;

  bool ExpectsOutput(std::string_view name) const;
  // Where the expected output `name` goes (absolute; parent folders created). NOT_FOUND when the
  // task does not expect that output.
  StatusOr<std::filesystem::path> OutputPath(std::string_view name) const;
  // Describes what was written at OutputPath(name) and records it as produced.
  Status Publish(std::string_view name);
  Status PublishJson(std::string_view name, const nlohmann::json& document);
  template <typename T>
  Status PublishVolume(std::string_view name, const Volume<T>& volume) {
    ASSIGN_OR_RETURN(std::filesystem::path path, OutputPath(name));
    RETURN_IF_ERROR(WriteVolume(volume, path));
    return Publish(name);
  }
  // The role's result: every published output (all expected ones must be) plus `metrics`.
  StatusOr<worker::TaskOutput> Finish(std::map<std::string, double> metrics = {}) const;

  // A path in the store outside the declared outputs (e.g. a training checkpoint that must
  // outlive the attempt); parent folders created.
  StatusOr<std::filesystem::path> ScratchPath(std::string_view relative) const;

 private:
  MethodTask(worker::TaskContext& context, nlohmann::json params, Config config)
      : context_(&context), params_(std::move(params)), config_(std::move(config)) {}

  worker::TaskContext* context_;
  nlohmann::json params_;
  Config config_;
  std::vector<worker::OutputArtifact> published_;
};

// A JSON document as pretty text; NaN and infinities become null.
std::string JsonText(const nlohmann::json& document);

// The cancellation status roles return when the lease was taken away mid-task.
Status TaskCancelled(const MethodTask& task);

}  // namespace clisc::roles
