#include "coordinator/scheduler.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/unit/scheduler_fixture.h"

namespace clisc {
namespace {

using testutil::SchedulerTest;
using testutil::Spec;

TEST_F(SchedulerTest, WorkersGetOnlyTheirRolesUpToTheirSlots) {
  auto ids = Plan({Spec("clip", "c1", "clip"), Spec("clip", "c2", "clip"),
                   Spec("clip", "c3", "clip"), Spec("cam", "c4", "cam")});
  Hello("cam-worker", {"cam"}, 4);
  Hello("clip-worker", {"clip"}, 2);
  auto cam = Assign("cam-worker");
  ASSERT_EQ(cam.size(), 1u);
  EXPECT_EQ(cam[0].role, "cam");
  auto clip = Assign("clip-worker");
  ASSERT_EQ(clip.size(), 2u);
  EXPECT_EQ(clip[0].task_key, "clip/c1");  // oldest first
  EXPECT_EQ(clip[1].task_key, "clip/c2");
  EXPECT_TRUE(Assign("clip-worker").empty());  // slots full
  ASSERT_TRUE(Succeed("clip-worker", clip[0]).ok());
  auto more = Assign("clip-worker");
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].task_key, "clip/c3");
  EXPECT_EQ(scheduler_->AssignWork("stranger").status().code(), StatusCode::kNotFound);
}

TEST_F(SchedulerTest, OneBatchServesManyWorkersWithDisjointTasks) {
  std::vector<TaskSpec> plan;
  for (int i = 0; i < 10; ++i) plan.push_back(Spec("clip", "c" + std::to_string(i), "clip"));
  Plan(plan);
  Hello("a", {"clip"}, 3);
  Hello("b", {"clip"}, 3);
  auto batch = scheduler_->AssignWorkBatch({"a", "ghost", "b"});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_EQ((*batch)[1].status().code(), StatusCode::kNotFound);
  ASSERT_TRUE((*batch)[0].ok());
  ASSERT_TRUE((*batch)[2].ok());
  std::set<TaskId> seen;
  for (size_t w : {0u, 2u}) {
    EXPECT_EQ((*batch)[w]->size(), 3u);
    for (const Assignment& a : *(*batch)[w]) EXPECT_TRUE(seen.insert(a.task_id).second);
  }
  EXPECT_EQ(scheduler_->Snapshot().leased, 6u);
  EXPECT_EQ(scheduler_->Snapshot().ready, 4u);

  // Asking twice in one batch fills the slots once; a result sent twice counts once.
  Hello("c", {"clip"}, 2);
  auto twice = scheduler_->AssignWorkBatch({"c", "c"});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ((*twice)[0]->size(), 2u);
  EXPECT_TRUE((*twice)[1]->empty());
  EXPECT_EQ(scheduler_->Snapshot().leased, 8u);
  const Assignment& first = (*batch)[0]->front();
  Completion done{first.task_id, first.attempt, "a", "{}", {}};
  auto reports = scheduler_->ReportSuccessBatch({done, done});
  ASSERT_TRUE(reports.ok());
  EXPECT_TRUE((*reports)[0].ok());
  EXPECT_EQ((*reports)[1].code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->Snapshot().leased, 7u);
}

TEST_F(SchedulerTest, DependentsWaitUntilTheirDependenciesSucceed) {
  auto ids = Plan({Spec("clip", "c1", "any"), Spec("cam", "c1", "any", {"clip/c1"})});
  Hello("w", {"any"}, 4);
  auto first = Assign("w");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].task_key, "clip/c1");
  EXPECT_EQ(scheduler_->Snapshot().waiting, 1u);
  ASSERT_TRUE(Succeed("w", first[0]).ok());
  auto second = Assign("w");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].task_key, "cam/c1");
  ASSERT_TRUE(Succeed("w", second[0]).ok());
  EXPECT_EQ(scheduler_->run_state(), RunState::kSucceeded);
  EXPECT_EQ(ledger_->GetRun(run_)->state, RunState::kSucceeded);
}

TEST_F(SchedulerTest, HeartbeatsKeepAWorkerAliveAndSilenceKillsIt) {
  auto ids = Plan({Spec("clip", "c1", "clip")});
  Hello("w1", {"clip"});
  auto work = Assign("w1");
  ASSERT_EQ(work.size(), 1u);
  for (int i = 0; i < 10; ++i) {
    clock_.AdvanceMs(1000);
    ASSERT_TRUE(scheduler_->Heartbeat("w1").ok());
    auto tick = scheduler_->Tick();
    ASSERT_TRUE(tick.ok());
    EXPECT_TRUE(tick->dead_workers.empty());
  }
  clock_.AdvanceMs(3000);  // exactly three missed: not yet
  EXPECT_TRUE(scheduler_->Tick()->dead_workers.empty());
  clock_.AdvanceMs(1);
  auto tick = scheduler_->Tick();
  ASSERT_TRUE(tick.ok());
  EXPECT_EQ(tick->dead_workers, std::vector<std::string>{"w1"});
  ASSERT_EQ(tick->expired_leases.size(), 1u);
  EXPECT_EQ(StateOf(ids["clip/c1"]), TaskState::kPending);
  auto attempts = ledger_->ListAttempts(ids["clip/c1"]);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ(attempts->front().outcome, AttemptOutcome::kLost);
  EXPECT_EQ(scheduler_->Heartbeat("w1").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->Heartbeat("nobody").code(), StatusCode::kNotFound);
  EXPECT_EQ(ledger_->ListWorkers()->front().state, WorkerState::kDead);
}

TEST_F(SchedulerTest, StaleResultFromADeadWorkerIsIgnored) {
  auto ids = Plan({Spec("clip", "c1", "clip")});
  Hello("w1", {"clip"});
  auto old = Assign("w1");
  ASSERT_EQ(old.size(), 1u);
  clock_.AdvanceMs(3001);
  Hello("w2", {"clip"});
  ASSERT_TRUE(scheduler_->Tick().ok());  // w1 dead, lease lost, backoff 1 s
  EXPECT_TRUE(Assign("w2").empty());
  clock_.AdvanceMs(1000);
  auto fresh = Assign("w2");
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].attempt, 2);

  Status stale = Succeed("w1", old[0]);
  EXPECT_EQ(stale.code(), StatusCode::kFailedPrecondition) << stale.ToString();
  EXPECT_EQ(StateOf(ids["clip/c1"]), TaskState::kLeased);
  ASSERT_TRUE(Succeed("w2", fresh[0]).ok());
  auto attempts = ledger_->ListAttempts(ids["clip/c1"]);
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_EQ((*attempts)[0].outcome, AttemptOutcome::kLost);
  EXPECT_EQ((*attempts)[1].outcome, AttemptOutcome::kSucceeded);
}

TEST_F(SchedulerTest, RetryableFailuresBackOffExponentiallyUnderFakeTime) {
  options_.heartbeat_interval_ms = 100'000;  // keep worker liveness out of NextWakeupMs
  auto ids = Plan({Spec("clip", "c1", "clip", {}, /*max_attempts=*/5)});
  Hello("w", {"clip"});
  std::vector<int64_t> waits;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    auto work = Assign("w");
    ASSERT_EQ(work.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(work[0].attempt, attempt);
    ASSERT_TRUE(
        scheduler_->ReportFailure({work[0].task_id, attempt, "w", UnavailableError("cuda oom")})
            .ok());
    int64_t failed_at = clock_.NowMs();
    ASSERT_TRUE(scheduler_->NextWakeupMs().has_value());
    int64_t wake = *scheduler_->NextWakeupMs();
    waits.push_back(wake - failed_at);
    clock_.SetMs(wake - 1);
    ASSERT_TRUE(scheduler_->Heartbeat("w").ok());
    EXPECT_TRUE(Assign("w").empty()) << "still backing off";
    clock_.SetMs(wake);
  }
  EXPECT_EQ(waits, (std::vector<int64_t>{1000, 2000, 4000, 8000}));
}

TEST_F(SchedulerTest, SpentBudgetFailsTheTaskAndExcludesItsCase) {
  options_.min_cases = 1;
  auto ids = Plan({Spec("clip", "c1", "clip", {}, 2), Spec("cam", "c1", "clip", {"clip/c1"}),
                   Spec("clip", "c2", "clip")});
  Hello("w", {"clip"}, 1);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    clock_.AdvanceMs(10'000);
    ASSERT_TRUE(scheduler_->Heartbeat("w").ok());
    auto work = Assign("w");
    ASSERT_EQ(work.size(), 1u);
    ASSERT_EQ(work[0].task_key, "clip/c1");
    ASSERT_TRUE(
        scheduler_->ReportFailure({work[0].task_id, attempt, "w", DeadlineExceededError("timeout")})
            .ok());
  }
  EXPECT_EQ(StateOf(ids["clip/c1"]), TaskState::kFailed);
  EXPECT_EQ(StateOf(ids["cam/c1"]), TaskState::kBlocked);
  auto cases = ledger_->ListCases(run_);
  EXPECT_EQ((*cases)[0].state, CaseState::kExcluded);
  EXPECT_EQ(scheduler_->run_state(), RunState::kRunning);
  auto last = Assign("w");
  ASSERT_EQ(last.size(), 1u);
  ASSERT_TRUE(Succeed("w", last[0]).ok());
  EXPECT_EQ(scheduler_->run_state(), RunState::kSucceeded);  // one case left >= min_cases 1
}

TEST_F(SchedulerTest, RunFailsWhenTooFewCasesRemain) {
  options_.min_cases = 2;
  auto ids =
      Plan({Spec("clip", "c1", "clip"), Spec("clip", "c2", "clip"), Spec("clip", "c3", "clip")});
  Hello("w", {"clip"}, 3);
  auto work = Assign("w");
  ASSERT_EQ(work.size(), 3u);
  ASSERT_TRUE(
      scheduler_->ReportFailure({work[0].task_id, 1, "w", InvalidArgumentError("bad")}).ok());
  EXPECT_EQ(scheduler_->run_state(), RunState::kRunning);
  ASSERT_TRUE(
      scheduler_->ReportFailure({work[1].task_id, 1, "w", InvalidArgumentError("bad")}).ok());
  EXPECT_EQ(scheduler_->run_state(), RunState::kFailed);
  EXPECT_EQ(StateOf(work[2].task_id), TaskState::kCancelled);
  auto run = ledger_->GetRun(run_);
  EXPECT_NE(run->state_reason.find("fewer than min_cases 2"), std::string::npos);
  EXPECT_TRUE(Assign("w").empty());
}

TEST_F(SchedulerTest, TerminalFailureBlocksDependentsTransitivelyAndReduceGoesOn) {
  std::vector<TaskSpec> plan;
  for (const char* c : {"c1", "c2", "c3"}) {
    plan.push_back(Spec("clip", c, "w"));
    plan.push_back(Spec("cam", c, "w", {"clip/" + std::string(c)}));
  }
  plan.push_back(Spec("reduce", std::nullopt, "w", {"cam/c1", "cam/c2", "cam/c3"}));
  for (const char* c : {"c1", "c2", "c3"}) {
    plan.push_back(Spec("sam", c, "w", {"reduce/-", "cam/" + std::string(c)}));
  }
  auto ids = Plan(plan);
  Hello("w", {"w"}, 8);
  int succeeded = 0;
  while (scheduler_->run_state() == RunState::kRunning) {
    auto work = Assign("w");
    ASSERT_FALSE(work.empty());
    for (const Assignment& a : work) {
      if (a.task_key == "clip/c2") {
        ASSERT_TRUE(
            scheduler_
                ->ReportFailure({a.task_id, a.attempt, "w", InvalidArgumentError("corrupt header")})
                .ok());
      } else {
        ASSERT_TRUE(Succeed("w", a).ok());
        ++succeeded;
      }
    }
  }
  EXPECT_EQ(scheduler_->run_state(), RunState::kSucceeded);
  EXPECT_EQ(succeeded, 7);  // 2 clip + 2 cam + reduce + 2 sam
  EXPECT_EQ(StateOf(ids["cam/c2"]), TaskState::kBlocked);
  EXPECT_EQ(StateOf(ids["sam/c2"]), TaskState::kBlocked);
  auto failures = ledger_->ListFailures(run_);
  ASSERT_EQ(failures->size(), 3u);
  EXPECT_NE((*failures)[1].error_message.find("corrupt header"), std::string::npos);
}

TEST_F(SchedulerTest, ExcludedCaseIsDroppedDownstream) {
  auto ids = Plan({Spec("clip", "c1", "w"), Spec("clip", "c2", "w"),
                   Spec("reduce", std::nullopt, "w", {"clip/c1", "clip/c2"})});
  Hello("w", {"w"}, 4);
  auto effects = scheduler_->ExcludeCase("c1", "rejected by review");
  ASSERT_TRUE(effects.ok()) << effects.status().ToString();
  EXPECT_EQ(effects->blocked, std::vector<TaskId>{ids["clip/c1"]});
  std::vector<std::string> ran;
  while (scheduler_->run_state() == RunState::kRunning) {
    auto work = Assign("w");
    ASSERT_FALSE(work.empty());
    for (const Assignment& a : work) {
      ran.push_back(a.task_key);
      ASSERT_TRUE(Succeed("w", a).ok());
    }
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"clip/c2", "reduce/-"}));
  EXPECT_EQ(scheduler_->run_state(), RunState::kSucceeded);
}

TEST_F(SchedulerTest, RestartKeepsLeasesOfWorkersThatComeBackAndExpiresTheRest) {
  auto ids = Plan({Spec("clip", "c1", "clip"), Spec("clip", "c2", "clip"),
                   Spec("cam", "c1", "clip", {"clip/c1"})});
  Hello("w1", {"clip"});
  Hello("w2", {"clip"});
  auto a1 = Assign("w1");
  auto a2 = Assign("w2");
  ASSERT_EQ(a1.size(), 1u);
  ASSERT_EQ(a2.size(), 1u);

  Restart();
  EXPECT_EQ(scheduler_->Snapshot().leased, 2u);
  EXPECT_EQ(scheduler_->Heartbeat("w1").code(), StatusCode::kNotFound);  // must say hello
  auto reply = scheduler_->RegisterWorker(
      {"w1", {"clip"}, "cpu", 1, "h", {{a1[0].task_id, a1[0].attempt}, {999, 1}}});
  ASSERT_TRUE(reply.ok());
  ASSERT_EQ(reply->adopted.size(), 1u);
  ASSERT_EQ(reply->abandon.size(), 1u);
  EXPECT_EQ(reply->abandon[0].task_id, 999);
  ASSERT_TRUE(Succeed("w1", a1[0]).ok());  // the work done across the restart counts

  clock_.AdvanceMs(options_.restart_grace_ms - 1);
  ASSERT_TRUE(scheduler_->Heartbeat("w1").ok());
  EXPECT_TRUE(scheduler_->Tick()->expired_leases.empty());
  clock_.AdvanceMs(1);
  ASSERT_TRUE(scheduler_->Heartbeat("w1").ok());
  auto tick = scheduler_->Tick();
  ASSERT_EQ(tick->expired_leases.size(), 1u);
  EXPECT_EQ(tick->expired_leases[0].task_id, a2[0].task_id);
  clock_.AdvanceMs(1000);
  ASSERT_TRUE(scheduler_->Heartbeat("w1").ok());
  auto next = Assign("w1");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].task_key, "clip/c2");  // older than cam/c1
  EXPECT_EQ(next[0].attempt, 2);
}

TEST_F(SchedulerTest, WorkerThatRestartedLosesItsLeasesAtOnce) {
  auto ids = Plan({Spec("clip", "c1", "clip")});
  Hello("w1", {"clip"});
  auto work = Assign("w1");
  ASSERT_EQ(work.size(), 1u);
  Hello("w1", {"clip"});  // reconnect, running nothing
  EXPECT_EQ(StateOf(ids["clip/c1"]), TaskState::kPending);
  EXPECT_EQ(Succeed("w1", work[0]).code(), StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerTest, FinishedTasksAreNeverRedoneAfterRestart) {
  auto ids = Plan({Spec("clip", "c1", "clip"), Spec("clip", "c2", "clip")});
  Hello("w", {"clip"});
  auto work = Assign("w");
  ASSERT_TRUE(Succeed("w", work[0]).ok());
  Restart();
  EXPECT_EQ(scheduler_->Snapshot().open_tasks, 1u);
  auto again = Plan({Spec("clip", "c1", "clip"), Spec("clip", "c2", "clip")});
  EXPECT_EQ(again, ids);
  Hello("w", {"clip"});
  auto next = Assign("w");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].task_key, "clip/c2");
}

TEST_F(SchedulerTest, HardLeaseTimeoutExpiresHungTasks) {
  options_.lease_timeout_ms = 60'000;
  auto ids = Plan({Spec("clip", "c1", "clip")});
  Hello("w", {"clip"});
  auto work = Assign("w");
  ASSERT_EQ(work.size(), 1u);
  ASSERT_TRUE(work[0].lease_deadline_ms.has_value());
  for (int i = 0; i < 60; ++i) {
    clock_.AdvanceMs(1000);
    ASSERT_TRUE(scheduler_->Heartbeat("w").ok());
    ASSERT_TRUE(scheduler_->Tick().ok());
  }
  EXPECT_EQ(StateOf(ids["clip/c1"]), TaskState::kPending);
}

TEST_F(SchedulerTest, CancellationStopsWorkAndFencesRunningLeases) {
  auto ids = Plan({Spec("clip", "c1", "clip"), Spec("cam", "c1", "clip", {"clip/c1"}),
                   Spec("clip", "c2", "clip")});
  Hello("w", {"clip"}, 2);
  auto work = Assign("w");
  ASSERT_EQ(work.size(), 2u);
  auto cancelled = scheduler_->CancelTask(ids["clip/c1"], "operator");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->revoked_leases.size(), 1u);
  EXPECT_EQ(StateOf(ids["cam/c1"]), TaskState::kCancelled);
  EXPECT_EQ(Succeed("w", work[0]).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(scheduler_->CancelRun("user abort").ok());
  EXPECT_EQ(scheduler_->run_state(), RunState::kCancelled);
  EXPECT_EQ(Succeed("w", work[1]).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Assign("w").empty());
}

TEST_F(SchedulerTest, InvalidationRerunsDownstream) {
  auto ids = Plan({Spec("clip", "c1", "w"), Spec("cam", "c1", "w", {"clip/c1"}),
                   Spec("sam", "c1", "w", {"cam/c1"})});
  Hello("w", {"w"}, 4);
  while (scheduler_->run_state() == RunState::kRunning) {
    for (const Assignment& a : Assign("w")) ASSERT_TRUE(Succeed("w", a).ok());
  }
  auto effects = scheduler_->Invalidate(ids["cam/c1"], "mask checksum mismatch");
  ASSERT_TRUE(effects.ok()) << effects.status().ToString();
  EXPECT_EQ(effects->reset.size(), 2u);
  EXPECT_EQ(scheduler_->run_state(), RunState::kRunning);
  std::vector<std::string> rerun;
  while (scheduler_->run_state() == RunState::kRunning) {
    for (const Assignment& a : Assign("w")) {
      rerun.push_back(a.task_key);
      ASSERT_TRUE(Succeed("w", a).ok());
    }
  }
  EXPECT_EQ(rerun, (std::vector<std::string>{"cam/c1", "sam/c1"}));
}

TEST(RetryPolicyTest, ExponentialCappedAndDeterministicJitter) {
  RetryPolicy p;
  p.initial_delay_ms = 100;
  p.multiplier = 3;
  p.max_delay_ms = 1000;
  EXPECT_EQ(p.DelayMs(1, 1), 100);
  EXPECT_EQ(p.DelayMs(1, 2), 300);
  EXPECT_EQ(p.DelayMs(1, 3), 900);
  EXPECT_EQ(p.DelayMs(1, 4), 1000);
  EXPECT_EQ(p.DelayMs(1, 50), 1000);
  p.jitter = 0.5;
  std::set<int64_t> spread;
  for (TaskId t = 0; t < 50; ++t) {
    int64_t d = p.DelayMs(t, 4);
    EXPECT_EQ(d, p.DelayMs(t, 4));
    EXPECT_GT(d, 500);
    EXPECT_LE(d, 1000);
    spread.insert(d);
  }
  EXPECT_GT(spread.size(), 40u);
}

}  // namespace
}  // namespace clisc
