// The ledger's graph-wide transitions: blocking and case exclusion after terminal failures,
// invalidation, cancellation and re-planning.
#include <gtest/gtest.h>

#include "coordinator/ledger.h"
#include "coordinator/task_key.h"
#include "tests/unit/ledger_fixture.h"

namespace clisc {
namespace {

using testutil::DiamondPlan;
using testutil::LedgerTest;

TEST_F(LedgerTest, TerminalFailureBlocksDependentsAndExcludesTheCase) {
  auto ids = Plan(DiamondPlan());
  RunToSuccess(ids["a/c2"]);
  RunToSuccess(ids["b/c2"]);
  auto lease = ledger_->Lease({ids["a/c1"], "w1", std::nullopt});
  ASSERT_TRUE(lease.ok());
  auto failed = ledger_->Fail({ids["a/c1"], 1, "w1", InvalidArgumentError("no t1ce"), false, 0});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(*failed->outcomes.front(), TaskState::kFailed);
  EXPECT_EQ(failed->effects.excluded_cases, std::vector<std::string>{"c1"});
  for (const char* key : {"b/c1", "c/c1", "d/c1"}) {
    EXPECT_EQ(StateOf(ids[key]), TaskState::kBlocked) << key;
  }
  auto blocked = ledger_->GetTask(ids["b/c1"]);
  EXPECT_NE(blocked->error_message.value_or("").find("a/c1"), std::string::npos);
  auto cases = ledger_->ListCases(run_);
  ASSERT_EQ(cases->size(), 2u);
  EXPECT_EQ((*cases)[0].state, CaseState::kExcluded);
  EXPECT_NE((*cases)[0].excluded_reason.find("no t1ce"), std::string::npos);
  EXPECT_EQ((*cases)[1].state, CaseState::kActive);

  // The global reduce drops the excluded case and runs on what is left.
  EXPECT_EQ(StateOf(ids["g/-"]), TaskState::kPending);
  auto grant = ledger_->Lease({ids["g/-"], "w1", std::nullopt});
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  auto health = ledger_->GetRunHealth(run_);
  EXPECT_EQ(health->active_cases, 1);
  EXPECT_EQ(health->excluded_cases, 1);
  EXPECT_EQ(health->failed_global_tasks, 0);
  auto failures = ledger_->ListFailures(run_);
  EXPECT_EQ(failures->size(), 4u);
}

TEST_F(LedgerTest, GlobalFailureBlocksEverythingDownstream) {
  auto ids = Plan(DiamondPlan());
  for (const char* key : {"a/c1", "a/c2", "b/c1", "b/c2"}) RunToSuccess(ids[key]);
  ASSERT_TRUE(ledger_->Lease({ids["g/-"], "w1", std::nullopt}).ok());
  auto failed = ledger_->Fail({ids["g/-"], 1, "w1", InternalError("nan loss"), false, 0});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(StateOf(ids["d/c1"]), TaskState::kBlocked);
  EXPECT_EQ(StateOf(ids["d/c2"]), TaskState::kBlocked);
  EXPECT_EQ(ledger_->GetRunHealth(run_)->failed_global_tasks, 1);
}

TEST_F(LedgerTest, RetryFailedOnReplanRestoresTheCase) {
  auto ids = Plan(DiamondPlan());
  ASSERT_TRUE(ledger_->Lease({ids["a/c1"], "w1", std::nullopt}).ok());
  ASSERT_TRUE(ledger_->Fail({ids["a/c1"], 1, "w1", InternalError("bug"), false, 0}).ok());
  ASSERT_EQ(StateOf(ids["b/c1"]), TaskState::kBlocked);
  UpsertOptions retry;
  retry.retry_failed = true;
  auto again = ledger_->UpsertTasks(run_, DiamondPlan(), retry);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->effects.restored_cases, std::vector<std::string>{"c1"});
  for (const char* key : {"a/c1", "b/c1", "c/c1", "d/c1"}) {
    EXPECT_EQ(StateOf(ids[key]), TaskState::kPending) << key;
  }
  auto grant = ledger_->Lease({ids["a/c1"], "w1", std::nullopt});
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(grant->attempt, 2);  // numbers continue: attempt 1's late result stays fenced
}

TEST_F(LedgerTest, InvalidationRerunsEverythingDownstream) {
  auto ids = Plan(DiamondPlan());
  for (const auto& spec : DiamondPlan()) RunToSuccess(ids[spec.task_key]);
  ASSERT_EQ(ledger_->GetRun(run_)->state, RunState::kRunning);
  ASSERT_TRUE(ledger_->SetRunState(run_, RunState::kSucceeded, "done").ok());

  auto effects = ledger_->Invalidate(ids["b/c1"], "checksum mismatch");
  ASSERT_TRUE(effects.ok()) << effects.status().ToString();
  for (const char* key : {"b/c1", "c/c1", "g/-", "d/c1", "d/c2"}) {
    EXPECT_EQ(StateOf(ids[key]), TaskState::kPending) << key;
    EXPECT_TRUE(ledger_->ListArtifacts(ids[key])->empty()) << key;
  }
  for (const char* key : {"a/c1", "a/c2", "b/c2", "c/c2"}) {
    EXPECT_EQ(StateOf(ids[key]), TaskState::kSucceeded) << key;
  }
  EXPECT_EQ(ledger_->GetRun(run_)->state, RunState::kRunning);
  EXPECT_EQ(RunToSuccess(ids["b/c1"]), 2);
  EXPECT_EQ(ledger_->Invalidate(ids["c/c1"], "x").status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(LedgerTest, CancelTaskCascadesAndCancelRunStopsEverything) {
  auto ids = Plan(DiamondPlan());
  ASSERT_TRUE(ledger_->Lease({ids["a/c1"], "w1", std::nullopt}).ok());
  auto effects = ledger_->CancelTask(ids["a/c1"], "operator");
  ASSERT_TRUE(effects.ok()) << effects.status().ToString();
  ASSERT_EQ(effects->revoked_leases.size(), 1u);
  EXPECT_EQ(effects->revoked_leases[0].worker_id, "w1");
  for (const char* key : {"a/c1", "b/c1", "c/c1", "g/-", "d/c1", "d/c2"}) {
    EXPECT_EQ(StateOf(ids[key]), TaskState::kCancelled) << key;
  }
  EXPECT_EQ(ledger_->Complete({ids["a/c1"], 1, "w1", "{}", {}}).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ledger_->ListAttempts(ids["a/c1"])->front().outcome, AttemptOutcome::kRevoked);

  auto all = ledger_->CancelRun(run_, "user abort");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(ledger_->GetRunHealth(run_)->open_tasks, 0);
  EXPECT_EQ(ledger_->GetRun(run_)->state, RunState::kCancelled);
}

TEST_F(LedgerTest, ChangedStageConfigRekeysThatStageAndDownstreamOnly) {
  // Keys chain through upstream keys, as a planner builds them.
  auto plan = [](const std::map<std::string, std::string>& config) {
    std::vector<TaskSpec> specs;
    std::vector<std::string> cam_keys;
    for (int c = 0; c < 4; ++c) {
      std::string case_id = "case" + std::to_string(c);
      std::string prev = "sha-of-input-" + std::to_string(c);
      for (const std::string stage : {"clip", "cam", "sam"}) {
        TaskSpec s;
        s.stage = stage;
        s.case_id = case_id;
        s.role = stage;
        s.task_key = MakeTaskKey({stage, case_id, 0, config.at(stage), {prev}});
        if (stage != "clip") s.depends_on = {prev};
        prev = s.task_key;
        specs.push_back(s);
      }
    }
    return specs;
  };
  std::map<std::string, std::string> config = {{"clip", "t=0.5"}, {"cam", "k=3"}, {"sam", "m=1"}};
  auto first = plan(config);
  auto ids = Plan(first);
  for (const TaskSpec& s : first) RunToSuccess(ids[s.task_key]);

  config["cam"] = "k=5";
  ASSERT_TRUE(ledger_->OpenRun("run", "cam: {k: 5}\n", "fp2").ok());  // the new config
  auto second = plan(config);
  UpsertOptions replace;
  replace.replace_plan = true;
  auto result = ledger_->UpsertTasks(run_, second, replace);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->reused, 4);    // clip unchanged
  EXPECT_EQ(result->inserted, 8);  // cam and sam for every case
  for (size_t i = 0; i < first.size(); ++i) {
    bool clip = first[i].stage == "clip";
    EXPECT_EQ(first[i].task_key == second[i].task_key, clip) << first[i].task_key;
  }
  auto open = ledger_->LoadOpenTasks(run_);
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->size(), 8u);
  for (const OpenTask& o : *open) EXPECT_NE(o.task.stage, "clip");
}

TEST_F(LedgerTest, ReplanSupersedesOpenTasksOfTheOldPlan) {
  auto ids = Plan({Spec("a/c1", "c1"), Spec("b/c1", "c1", {"a/c1"})});
  ASSERT_TRUE(ledger_->Lease({ids["a/c1"], "w1", std::nullopt}).ok());
  UpsertOptions replace;
  replace.replace_plan = true;
  auto result = ledger_->UpsertTasks(run_, {Spec("a2/c1", "c1")}, replace);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->superseded, 2);
  EXPECT_EQ(StateOf(ids["a/c1"]), TaskState::kCancelled);
  EXPECT_EQ(result->effects.revoked_leases.size(), 1u);
}

TEST_F(LedgerTest, OpenTasksCarryTheirUnmetDependencies) {
  auto ids = Plan(DiamondPlan());
  RunToSuccess(ids["a/c1"]);
  auto open = ledger_->LoadOpenTasks(run_);
  ASSERT_TRUE(open.ok());
  std::map<TaskId, std::vector<TaskId>> unmet;
  for (const OpenTask& o : *open) unmet[o.task.id] = o.unmet_deps;
  EXPECT_EQ(unmet.count(ids["a/c1"]), 0u);
  EXPECT_TRUE(unmet[ids["b/c1"]].empty());
  EXPECT_EQ(unmet[ids["g/-"]], (std::vector<TaskId>{ids["b/c1"], ids["b/c2"]}));
}

}  // namespace
}  // namespace clisc
