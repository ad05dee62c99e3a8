// The dataset half of the method plan: the splits a config asks for, and which discovered cases
// can be planned (the task graph itself is method_plan.cc).
#include <optional>
#include <set>

#include "common/brats_layout.h"
#include "coordinator/method_plan.h"
#include "coordinator/method_plan_internal.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using plan_internal::JoinIds;

// Drops the ids not in `keep` from every split, keeping the order.
Splits RestrictSplits(const Splits& splits, const std::set<std::string>& keep) {
  auto restrict = [&](const std::vector<std::string>& ids) {
    std::vector<std::string> out;
    for (const std::string& id : ids) {
      if (keep.contains(id)) out.push_back(id);
    }
    return out;
  };
  return {restrict(splits.train), restrict(splits.valid), restrict(splits.test)};
}

// Why a discovered case cannot be planned, or "" when it can.
std::string RejectionReason(const CaseFiles& files, const std::vector<std::string>& modalities) {
  if (!files.listed) return "case folder could not be listed";
  if (!files.problems.empty()) {
    std::string reason;
    for (const std::string& p : files.problems) reason += (reason.empty() ? "" : "; ") + p;
    return reason;
  }
  std::vector<std::string> missing;
  for (const std::string& name : modalities) {
    StatusOr<Modality> m = ParseModality(name);
    if (!m.ok() || !files.image(*m)) missing.push_back(name);
  }
  if (!missing.empty()) return "no " + JoinIds(missing) + " image (data.modalities)";
  return "";
}

}  // namespace

StatusOr<Splits> SplitsForConfig(const Config& config, const std::vector<std::string>& ids) {
  Splits splits;
  if (config.GetString("data.splits.source") == "seeded") {
    SplitFractions fractions{config.GetDouble("data.splits.train_fraction"),
                             config.GetDouble("data.splits.valid_fraction"),
                             config.GetDouble("data.splits.test_fraction")};
    ASSIGN_OR_RETURN(
        splits,
        MakeSeededSplits(ids, fractions, static_cast<uint64_t>(config.GetInt("data.splits.seed"))));
    return splits;
  }
  auto read = [&](const char* key, std::vector<std::string>& out) -> Status {
    std::optional<std::string> file = config.GetOptionalString(key);
    if (!file) return OkStatus();
    StatusOr<std::vector<std::string>> read_ids = ReadSplitCsv(*file);
    if (!read_ids.ok()) return read_ids.status().WithContext(key);
    out = std::move(*read_ids);
    return OkStatus();
  };
  RETURN_IF_ERROR(read("data.splits.train_csv", splits.train));
  RETURN_IF_ERROR(read("data.splits.valid_csv", splits.valid));
  RETURN_IF_ERROR(read("data.splits.test_csv", splits.test));
  RETURN_IF_ERROR(ValidateDisjoint(splits));
  SplitCheck check = CheckSplits(splits, ids);
  if (!check.unknown_ids.empty()) {
    return InvalidArgumentError("the split CSVs name " + std::to_string(check.unknown_ids.size()) +
                                " case(s) not found in the dataset: " + JoinIds(check.unknown_ids));
  }
  return splits;
}

StatusOr<MethodPlan> PlanFromDataset(const Config& config, const fs::path& data_dir) {
  MethodPlan plan;
  std::error_code ec;
  plan.data_dir = fs::absolute(data_dir, ec).lexically_normal();
  if (ec) plan.data_dir = data_dir;
  StatusOr<DiscoveryResult> found = DiscoverCases(plan.data_dir);
  if (!found.ok()) return found.status();
  plan.warnings = found->warnings;
  if (found->cases.empty()) {
    return FailedPreconditionError("no BraTS case folder found in " + plan.data_dir.string());
  }
  std::vector<std::string> all_ids;
  for (const CaseFiles& files : found->cases) all_ids.push_back(files.id);
  StatusOr<Splits> splits = SplitsForConfig(config, all_ids);
  if (!splits.ok()) return splits.status();

  const std::vector<std::string> modalities = config.GetStringList("data.modalities");
  std::set<std::string> planned;
  for (const CaseFiles& files : found->cases) {
    if (std::string reason = RejectionReason(files, modalities); !reason.empty()) {
      plan.rejected.push_back({files.id, std::move(reason)});
      continue;
    }
    // Discovery lists a repeated id as a problem of the later folder, so ids here are unique.
    if (!planned.insert(files.id).second) continue;
    plan.cases.push_back({files.id, files.dir, files.seg.has_value()});
  }
  if (plan.cases.empty()) {
    return FailedPreconditionError("none of the " + std::to_string(found->cases.size()) +
                                   " case(s) in " + plan.data_dir.string() +
                                   " can be planned; first: " + plan.rejected.front().id + ": " +
                                   plan.rejected.front().reason);
  }
  plan.splits = RestrictSplits(*splits, planned);
  plan.unassigned = CheckSplits(plan.splits, {planned.begin(), planned.end()}).unassigned_ids;
  const MethodPlanInputs inputs{plan.cases, plan.splits};
  ASSIGN_OR_RETURN(plan.tasks, PlanMethodStages(config, inputs));
  return plan;
}

}  // namespace clisc
