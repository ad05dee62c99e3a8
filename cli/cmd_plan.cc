// `clisc plan`: turns a dataset folder and a config into the task graph of method stages 0-13
// (coordinator/method_plan.h), writes it as the plan JSON `clisc coordinator --plan` runs, and
// shows what it holds: tasks per stage, the splits and the cases left out.
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "common/atomic_file.h"
#include "common/config.h"
#include "coordinator/method_plan.h"

namespace clisc::cli {
namespace {

void PrintErrorLines(const Status& status) {
  std::string message = status.message();
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    if (end > start) std::cerr << "error: " << message.substr(start, end - start) << "\n";
    start = end + 1;
  }
}

std::string PadRight(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

const StageDefinition* FindStage(const std::string& name) {
  const std::string family = StageFamily(name);
  for (const StageDefinition& stage : MethodStages()) {
    if (stage.name == family) return &stage;
  }
  return nullptr;
}

nlohmann::ordered_json SummaryJson(const Config& config, const MethodPlan& plan,
                                   const std::string& out) {
  using ordered = nlohmann::ordered_json;
  ordered stages = ordered::array();
  for (const auto& [name, count] : TaskCountsByStage(plan.tasks)) {
    const StageDefinition* stage = FindStage(name);
    stages.push_back({{"stage", name},
                      {"role", stage ? stage->role : ""},
                      {"unit", stage ? std::string(StageUnitName(stage->unit)) : ""},
                      {"tasks", count}});
  }
  ordered rejected = ordered::array();
  for (const RejectedCase& r : plan.rejected) {
    rejected.push_back({{"id", r.id}, {"reason", r.reason}});
  }
  return {{"mode", config.GetString("mode")},
          {"data", plan.data_dir.string()},
          {"cases",
           {{"planned", plan.cases.size()},
            {"rejected", std::move(rejected)},
            {"unassigned", plan.unassigned}}},
          {"splits",
           {{"train", plan.splits.train.size()},
            {"valid", plan.splits.valid.size()},
            {"test", plan.splits.test.size()}}},
          {"stages", std::move(stages)},
          {"tasks", plan.tasks.size()},
          {"warnings", plan.warnings},
          {"out", out.empty() ? ordered(nullptr) : ordered(out)}};
}

void PrintSummary(const Config& config, const MethodPlan& plan, const std::string& out) {
  std::cout << "mode " << config.GetString("mode") << ", data " << plan.data_dir.string() << "\n"
            << PadRight("stage", 22) << PadRight("role", 8) << PadRight("unit", 8) << "tasks\n";
  for (const auto& [name, count] : TaskCountsByStage(plan.tasks)) {
    const StageDefinition* stage = FindStage(name);
    std::cout << PadRight(name, 22) << PadRight(stage ? stage->role : "?", 8)
              << PadRight(stage ? std::string(StageUnitName(stage->unit)) : "?", 8) << count
              << "\n";
  }
  std::cout << "total " << plan.tasks.size() << " tasks\n"
            << "cases: " << plan.cases.size() << " planned, " << plan.rejected.size()
            << " rejected; splits: train " << plan.splits.train.size() << ", valid "
            << plan.splits.valid.size() << ", test " << plan.splits.test.size()
            << ", in no split (prep only) " << plan.unassigned.size() << "\n";
  for (const RejectedCase& r : plan.rejected) {
    std::cout << "rejected " << r.id << ": " << r.reason << "\n";
  }
  for (const std::string& w : plan.warnings) std::cout << "warning: " << w << "\n";
  if (!out.empty()) std::cout << "wrote " << out << "\n";
}

int RunPlan(const std::vector<std::string>& raw_args) {
  ArgParser parser("plan",
                   "plan --config FILE [--data DIR] [--set KEY=VALUE]... [--out FILE] [--json]",
                   "Plan method stages 0-13 (preprocessing, SAM pseudo-labels, U-Net self-training "
                   "rounds with S3F, baselines, evaluation) for a dataset: one task per case "
                   "and stage plus the global training and reduce tasks.");
  parser.Option("config", "FILE", "the run config (YAML)", std::nullopt, true)
      .Option("data", "DIR", "dataset folder of BraTS case folders (default: data.root)")
      .Option("set", "KEY=VALUE", "override a config key (repeatable, applied in order)")
      .Option("out", "FILE", "write the plan JSON here (for clisc coordinator --plan)")
      .Flag("json", "print the summary as JSON")
      .Epilog(
          "Only file names are read (no volume is opened). Cases with a discovery problem or\n"
          "without an image of data.modalities are rejected and listed. The splits follow\n"
          "data.splits; cases in no split get only the prep task. The same config and data\n"
          "always give a byte-identical plan.\n"
          "\nexit codes: 0 planned, 1 the data cannot be planned, 2 bad arguments or config\n"
          "\nexample:\n"
          "  clisc plan --config configs/demo.yaml --data /tmp/synth --out /tmp/plan.json\n");
  std::vector<std::string> args = raw_args, overrides;
  if (Status s = TakeRepeatedOption(args, "set", overrides); !s.ok()) {
    std::cerr << "error: clisc plan: " << s.message() << "\n";
    return kExitUsage;
  }
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;

  StatusOr<Config> config = LoadConfigFile(parser.Get("config"), overrides);
  if (!config.ok()) {
    PrintErrorLines(config.status());
    return kExitUsage;
  }
  std::string data = parser.Get("data");
  if (data.empty()) data = config->GetOptionalString("data.root").value_or("");
  if (data.empty()) {
    std::cerr << "error: clisc plan: no dataset: give --data DIR or set data.root\n";
    return kExitUsage;
  }
  StatusOr<MethodPlan> plan = PlanFromDataset(*config, data);
  if (!plan.ok()) {
    PrintErrorLines(plan.status());
    const StatusCode code = plan.status().code();
    return code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument ? kExitUsage
                                                                                 : kExitFailure;
  }
  const std::string out = parser.Get("out");
  if (!out.empty()) {
    if (Status s = WriteFileAtomically(out, TaskPlanJson(plan->tasks)); !s.ok()) {
      std::cerr << "error: cannot write the plan: " << s.ToString() << "\n";
      return kExitFailure;
    }
  }
  if (parser.GetFlag("json")) {
    std::cout << SummaryJson(*config, *plan, out).dump(2) << "\n";
  } else {
    PrintSummary(*config, *plan, out);
  }
  return kExitOk;
}

}  // namespace
CLISC_REGISTER_COMMAND("plan", "plan method stages 0-13 for a dataset as a task graph", RunPlan);
}  // namespace clisc::cli
