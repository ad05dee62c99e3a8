// The ledger tests' fixture: a fresh ledger file in a temp dir per test, with a fake clock.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/ledger.h"

namespace clisc::testutil {

namespace fs = std::filesystem;

inline const std::string kSha(64, 'a');

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("clisc_ledger_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "ledger.db").string();
    Reopen();
    auto run = ledger_->OpenRun("run", "a: 1\n", "fp1");
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    run_ = *run;
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }

  void Reopen(LedgerOptions options = {}) {
    ledger_.reset();
    auto opened = Ledger::Open(path_, &clock_, options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ledger_ = std::move(opened).value();
  }

  static TaskSpec Spec(std::string key, std::optional<std::string> case_id,
                       std::vector<std::string> deps = {}, int max_attempts = 3) {
    TaskSpec s;
    s.task_key = key;
    s.stage = key.substr(0, key.find('/'));
    s.case_id = std::move(case_id);
    s.role = "clip";
    s.max_attempts = max_attempts;
    s.depends_on = std::move(deps);
    return s;
  }

  std::map<std::string, TaskId> Plan(const std::vector<TaskSpec>& specs, UpsertOptions o = {}) {
    auto result = ledger_->UpsertTasks(run_, specs, o);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    std::map<std::string, TaskId> ids;
    if (!result.ok()) return ids;
    for (size_t i = 0; i < specs.size(); ++i) ids[specs[i].task_key] = result->task_ids[i];
    return ids;
  }

  TaskState StateOf(TaskId id) {
    auto t = ledger_->GetTask(id);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? t->state : TaskState::kCancelled;
  }

  // Leases and completes a task; returns the attempt that succeeded.
  int RunToSuccess(TaskId id, const std::string& worker = "w1") {
    auto grant = ledger_->Lease({id, worker, std::nullopt});
    EXPECT_TRUE(grant.ok()) << grant.status().ToString();
    if (!grant.ok()) return 0;
    Completion c{id,
                 grant->attempt,
                 worker,
                 R"({"ok":true})",
                 {{"out", "t" + std::to_string(id) + "/out.nii", 10, kSha}}};
    Status done = ledger_->Complete(c);
    EXPECT_TRUE(done.ok()) << done.ToString();
    return grant->attempt;
  }

  int64_t EventCount() {
    auto events = ledger_->ListEvents(0, 1'000'000);
    return events.ok() ? static_cast<int64_t>(events->size()) : -1;
  }

  FakeClock clock_;
  fs::path dir_;
  std::string path_;
  std::unique_ptr<Ledger> ledger_;
  RunId run_ = 0;
};

// Two cases with three stages, a global reduce over stage b and a per-case stage d after it.
inline std::vector<TaskSpec> DiamondPlan() {
  auto spec = [](std::string stage, std::optional<std::string> c, std::vector<std::string> deps) {
    TaskSpec s;
    s.stage = stage;
    s.case_id = c;
    s.task_key = stage + "/" + c.value_or("-");
    s.role = "clip";
    s.depends_on = std::move(deps);
    return s;
  };
  return {spec("a", "c1", {}),
          spec("a", "c2", {}),
          spec("b", "c1", {"a/c1"}),
          spec("b", "c2", {"a/c2"}),
          spec("c", "c1", {"b/c1"}),
          spec("c", "c2", {"b/c2"}),
          spec("g", std::nullopt, {"b/c1", "b/c2"}),
          spec("d", "c1", {"g/-", "c/c1"}),
          spec("d", "c2", {"g/-", "c/c2"})};
}

}  // namespace clisc::testutil
