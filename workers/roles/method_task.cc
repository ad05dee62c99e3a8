#include "workers/roles/method_task.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace clisc::roles {
namespace {

// NaN has no JSON form; a metric that could not be computed is null.
nlohmann::json Sanitized(const nlohmann::json& value) {
  if (value.is_number_float() && !std::isfinite(value.get<double>())) return nullptr;
  if (value.is_object() || value.is_array()) {
    nlohmann::json out = value;
    for (auto& item : out) item = Sanitized(item);
    return out;
  }
  return value;
}

}  // namespace

std::string JsonText(const nlohmann::json& document) {
  return Sanitized(document).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Status TaskCancelled(const MethodTask& task) {
  return CancelledError(task.Label() + ": cancelled");
}

StatusOr<MethodTask> MethodTask::Parse(worker::TaskContext& context) {
  const std::string& text = context.params_json();
  nlohmann::json params = text.empty()
                              ? nlohmann::json::object()
                              : nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (params.is_discarded() || !params.is_object()) {
    return InvalidArgumentError("task " + context.task_id() + " (" + context.stage() +
                                "): params are not a JSON object");
  }
  Config config;
  if (params.contains("config")) {
    if (!params["config"].is_object()) {
      return InvalidArgumentError("task " + context.task_id() +
                                  ": params.config must be an object");
    }
    RETURN_IF_ERROR(config.Merge(params["config"].dump(), "task " + context.task_id() + " params"));
  }
  return MethodTask(context, std::move(params), std::move(config));
}

std::string MethodTask::Extra(const std::string& key, const std::string& fallback) const {
  auto it = params_.find(key);
  if (it == params_.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

std::string MethodTask::Label() const {
  std::string label = context_->stage();
  if (!context_->case_id().empty()) label += " " + context_->case_id();
  return label;
}

bool MethodTask::HasInput(std::string_view name) const {
  for (const worker::TaskInput& input : context_->inputs()) {
    if (input.name == name) return true;
  }
  return false;
}

StatusOr<std::filesystem::path> MethodTask::InputPath(std::string_view name) const {
  for (const worker::TaskInput& input : context_->inputs()) {
    if (input.name == name) return context_->store().Resolve(input.path);
  }
  return NotFoundError(Label() + ": the task has no input '" + std::string(name) + "'");
}

std::vector<CaseInput> MethodTask::CaseInputs(std::string_view stage,
                                              std::string_view artifact) const {
  std::vector<CaseInput> found;
  const std::string prefix = std::string(stage) + "/";
  const std::string suffix = "/" + std::string(artifact);
  for (const worker::TaskInput& input : context_->inputs()) {
    const std::string& name = input.name;
    if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    std::string case_id = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (case_id.find('/') != std::string::npos) continue;
    auto path = context_->store().Resolve(input.path);
    if (!path.ok()) continue;
    found.push_back({std::move(case_id), *path});
  }
  std::sort(found.begin(), found.end(),
            [](const CaseInput& a, const CaseInput& b) { return a.case_id < b.case_id; });
  return found;
}

StatusOr<nlohmann::json> MethodTask::ReadInputJson(std::string_view name) const {
  ASSIGN_OR_RETURN(std::filesystem::path path, InputPath(name));
  std::ifstream in(path);
  if (!in) return NotFoundError(Label() + ": cannot read input " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json document = nlohmann::json::parse(text.str(), nullptr, false);
  if (document.is_discarded()) {
    return DataLossError(Label() + ": input '" + std::string(name) + "' is not valid JSON");
  }
  return document;
}

bool MethodTask::ExpectsOutput(std::string_view name) const {
  for (const worker::ExpectedOutput& output : context_->expected_outputs()) {
    if (output.name == name) return true;
  }
  return false;
}

StatusOr<std::filesystem::path> MethodTask::OutputPath(std::string_view name) const {
  for (const worker::ExpectedOutput& output : context_->expected_outputs()) {
    if (output.name != name) continue;
    ASSIGN_OR_RETURN(std::filesystem::path path, context_->store().Resolve(output.path));
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec)
      return UnavailableError("cannot create " + path.parent_path().string() + ": " + ec.message());
    return path;
  }
  return NotFoundError(Label() + ": the task does not expect an output '" + std::string(name) +
                       "'");
}

Status MethodTask::Publish(std::string_view name) {
  for (const worker::ExpectedOutput& output : context_->expected_outputs()) {
    if (output.name != name) continue;
    ASSIGN_OR_RETURN(ArtifactRef ref, context_->store().Describe(output.path));
    published_.erase(
        std::remove_if(published_.begin(), published_.end(),
                       [&](const worker::OutputArtifact& a) { return a.name == name; }),
        published_.end());
    published_.push_back({output.name, output.path, ref.sha256, ref.size});
    return OkStatus();
  }
  return NotFoundError(Label() + ": the task does not expect an output '" + std::string(name) +
                       "'");
}

Status MethodTask::PublishJson(std::string_view name, const nlohmann::json& document) {
  for (const worker::ExpectedOutput& output : context_->expected_outputs()) {
    if (output.name != name) continue;
    ASSIGN_OR_RETURN(ArtifactRef ref, context_->store().PutFile(output.path, JsonText(document)));
    published_.push_back({output.name, output.path, ref.sha256, ref.size});
    return OkStatus();
  }
  return NotFoundError(Label() + ": the task does not expect an output '" + std::string(name) +
                       "'");
}

StatusOr<worker::TaskOutput> MethodTask::Finish(std::map<std::string, double> metrics) const {
  worker::TaskOutput out;
  for (const worker::ExpectedOutput& expected : context_->expected_outputs()) {
    auto it =
        std::find_if(published_.begin(), published_.end(),
                     [&](const worker::OutputArtifact& a) { return a.name == expected.name; });
    if (it == published_.end()) {
      return InternalError(Label() + ": output '" + expected.name + "' was not written");
    }
    out.outputs.push_back(*it);
  }
  for (auto& [key, value] : metrics) {
    if (std::isfinite(value)) out.metrics[key] = value;
  }
  return out;
}

StatusOr<std::filesystem::path> MethodTask::ScratchPath(std::string_view relative) const {
  ASSIGN_OR_RETURN(std::filesystem::path path, context_->store().Resolve(relative));
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec)
    return UnavailableError("cannot create " + path.parent_path().string() + ": " + ec.message());
  return path;
}

}  // namespace clisc::roles
