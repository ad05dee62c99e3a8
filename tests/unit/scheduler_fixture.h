// The scheduler tests' fixture: a ledger file in a temp dir, a fake clock, and helpers that act
// as workers.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"

namespace clisc::testutil {

namespace fs = std::filesystem;

inline const std::string kOutputSha(64, '0');

inline TaskSpec Spec(std::string stage, std::optional<std::string> case_id, std::string role,
                     std::vector<std::string> deps = {}, int max_attempts = 3) {
  TaskSpec s;
  s.stage = std::move(stage);
  s.case_id = std::move(case_id);
  s.task_key = s.stage + "/" + s.case_id.value_or("-");
  s.role = std::move(role);
  s.depends_on = std::move(deps);
  s.max_attempts = max_attempts;
  return s;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("clisc_scheduler_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "ledger.db").string();
    options_.retry.initial_delay_ms = 1000;
    options_.retry.multiplier = 2.0;
    options_.retry.max_delay_ms = 8000;
    options_.restart_grace_ms = 5000;
    OpenLedger();
    auto run = ledger_->OpenRun("run", "", "fp");
    ASSERT_TRUE(run.ok());
    run_ = *run;
  }
  void TearDown() override {
    scheduler_.reset();
    ledger_.reset();
    fs::remove_all(dir_);
  }

  void OpenLedger() {
    auto ledger = Ledger::Open(path_, &clock_);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(ledger).value();
  }

  // Simulates a coordinator crash: everything in memory is gone, the file stays.
  void Restart() {
    scheduler_.reset();
    ledger_.reset();
    OpenLedger();
    StartScheduler();
  }

  void StartScheduler() {
    auto scheduler = Scheduler::Create(ledger_.get(), run_, options_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status().ToString();
    scheduler_ = std::move(scheduler).value();
  }

  std::map<std::string, TaskId> Plan(const std::vector<TaskSpec>& specs) {
    if (!scheduler_) StartScheduler();
    auto result = scheduler_->Plan(specs);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    std::map<std::string, TaskId> ids;
    for (size_t i = 0; result.ok() && i < specs.size(); ++i) {
      ids[specs[i].task_key] = result->task_ids[i];
    }
    return ids;
  }

  void Hello(const std::string& id, std::vector<std::string> roles, int slots = 1,
             std::vector<RunningAttempt> running = {}) {
    auto reply = scheduler_->RegisterWorker({id, std::move(roles), "cpu", slots, "host", running});
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  }

  std::vector<Assignment> Assign(const std::string& worker) {
    auto work = scheduler_->AssignWork(worker);
    EXPECT_TRUE(work.ok()) << work.status().ToString();
    return work.ok() ? *work : std::vector<Assignment>{};
  }

  Status Succeed(const std::string& worker, const Assignment& a) {
    return scheduler_->ReportSuccess(
        {a.task_id,
         a.attempt,
         worker,
         "{}",
         {{"out", a.stage + "/" + std::to_string(a.task_id), 1, kOutputSha}}});
  }

  TaskState StateOf(TaskId id) { return ledger_->GetTask(id)->state; }

  FakeClock clock_;
  fs::path dir_;
  std::string path_;
  SchedulerOptions options_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Scheduler> scheduler_;
  RunId run_ = 0;
};

}  // namespace clisc::testutil
