// Restart and crash resilience of the scheduler over a whole run.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <random>

#include "coordinator/scheduler.h"
#include "tests/unit/scheduler_fixture.h"

namespace clisc {
namespace {

using testutil::SchedulerTest;
using testutil::Spec;

// A simulated worker process: what it runs, and whether it is down or cut off.
struct SimWorker {
  std::string id;
  std::vector<std::string> roles;
  int slots = 1;
  std::vector<Assignment> running;
  bool registered = false;       // has said hello to the current scheduler
  int64_t down_until_ms = 0;     // crashed: comes back empty-handed
  int64_t cut_off_until_ms = 0;  // partitioned: comes back still holding its tasks

  static SimWorker Make(std::string id, std::vector<std::string> roles, int slots) {
    SimWorker w;
    w.id = std::move(id);
    w.roles = std::move(roles);
    w.slots = slots;
    return w;
  }
};

// Drives a 3-stage graph (per case: clip -> cam -> sam, with a global reduce over every cam
// before sam) of 496 tasks with random flaky failures, worker crashes, network partitions and
// coordinator restarts (ledger and scheduler closed and reopened from the file), then checks
// that every task succeeded exactly once and that every attempt is on record.
class SchedulerRestartTest : public SchedulerTest {
 protected:
  void RunChaos(uint32_t seed);
};

void SchedulerRestartTest::RunChaos(uint32_t seed) {
  options_.retry.initial_delay_ms = 200;
  options_.retry.max_delay_ms = 2000;
  options_.retry.jitter = 0.3;
  options_.restart_grace_ms = 2000;
  constexpr int kCases = 165;
  constexpr int kMaxAttempts = 40;
  std::vector<TaskSpec> plan;
  std::vector<std::string> cams;
  for (int c = 0; c < kCases; ++c) {
    std::string id = "case" + std::to_string(c);
    plan.push_back(Spec("clip", id, "clip", {}, kMaxAttempts));
    plan.push_back(Spec("cam", id, "cam", {"clip/" + id}, kMaxAttempts));
    cams.push_back("cam/" + id);
  }
  plan.push_back(Spec("reduce", std::nullopt, "trainer", cams, kMaxAttempts));
  for (int c = 0; c < kCases; ++c) {
    std::string id = "case" + std::to_string(c);
    plan.push_back(Spec("sam", id, "sam", {"reduce/-", "cam/" + id}, kMaxAttempts));
  }
  ASSERT_EQ(plan.size(), 496u);
  Plan(plan);

  std::vector<SimWorker> workers = {SimWorker::Make("w0", {"clip", "cam"}, 3),
                                    SimWorker::Make("w1", {"cam", "sam"}, 2),
                                    SimWorker::Make("w2", {"sam", "trainer", "clip"}, 4),
                                    SimWorker::Make("w3", {"clip", "cam", "sam", "trainer"}, 1),
                                    SimWorker::Make("w4", {"sam"}, 2)};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::map<TaskId, int> accepted;
  int restarts = 0, crashes = 0, partitions = 0, stale = 0;

  auto report = [&](SimWorker& w, const Assignment& a, bool ok) {
    Status s =
        ok ? Succeed(w.id, a)
           : scheduler_->ReportFailure({a.task_id, a.attempt, w.id, UnavailableError("flaky gpu")});
    if (s.ok()) {
      if (ok) ++accepted[a.task_id];
    } else {
      EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
      ++stale;
    }
  };

  for (int step = 0; step < 100'000 && scheduler_->run_state() == RunState::kRunning; ++step) {
    clock_.AdvanceMs(50 + static_cast<int64_t>(rng() % 200));
    int64_t now = clock_.NowMs();
    for (SimWorker& w : workers) {
      if (now < w.down_until_ms || now < w.cut_off_until_ms) continue;
      if (w.cut_off_until_ms > 0) {
        // Back from a partition: its results arrive late; leases may have moved on meanwhile.
        w.cut_off_until_ms = 0;
        for (const Assignment& a : w.running) report(w, a, true);
        w.running.clear();
      }
      if (!w.registered) {
        std::vector<RunningAttempt> running;
        for (const Assignment& a : w.running) running.push_back({a.task_id, a.attempt});
        auto reply = scheduler_->RegisterWorker({w.id, w.roles, "cpu", w.slots, "h", running});
        ASSERT_TRUE(reply.ok()) << reply.status().ToString();
        for (const RunningAttempt& gone : reply->abandon) {
          std::erase_if(w.running, [&](const Assignment& a) { return a.task_id == gone.task_id; });
        }
        w.registered = true;
      }
      if (!scheduler_->Heartbeat(w.id).ok()) {
        w.registered = false;  // unknown or declared dead: say hello next time
        continue;
      }
      std::vector<Assignment> still_running;
      for (const Assignment& a : w.running) {
        double r = u(rng);
        if (r < 0.8) {
          still_running.push_back(a);
        } else {
          report(w, a, r < 0.9);
        }
      }
      w.running = std::move(still_running);
      auto work = scheduler_->AssignWork(w.id);
      ASSERT_TRUE(work.ok()) << work.status().ToString();
      w.running.insert(w.running.end(), work->begin(), work->end());
    }
    ASSERT_TRUE(scheduler_->Tick().ok());

    // Some of each disruption on a fixed beat, more at random.
    double event = u(rng);
    if (step % 37 == 17) event = 0.0;
    if (step % 53 == 29) event = 0.025;
    if (step % 61 == 40) event = 0.035;
    if (event < 0.02) {
      Restart();  // the coordinator process dies between two transactions
      for (SimWorker& w : workers) w.registered = false;
      ++restarts;
    } else if (event < 0.03) {
      SimWorker& w = workers[rng() % workers.size()];
      if (w.down_until_ms <= now && w.cut_off_until_ms == 0) {
        w.running.clear();
        w.registered = false;
        w.down_until_ms = now + 3500 + static_cast<int64_t>(rng() % 3000);
        ++crashes;
      }
    } else if (event < 0.04) {
      SimWorker& w = workers[rng() % workers.size()];
      if (w.down_until_ms <= now && w.cut_off_until_ms == 0) {
        w.registered = false;
        w.cut_off_until_ms = now + 2000 + static_cast<int64_t>(rng() % 4000);
        ++partitions;
      }
    }
  }
  ASSERT_EQ(scheduler_->run_state(), RunState::kSucceeded);
  EXPECT_GT(restarts, 3);
  EXPECT_GT(crashes, 0);
  EXPECT_GT(partitions, 0);
  EXPECT_GT(stale, 0);

  auto tasks = ledger_->ListTasks(run_);
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 496u);
  std::map<TaskId, int> succeeded_events;
  auto events = ledger_->ListEvents(0, 10'000'000);
  ASSERT_TRUE(events.ok());
  for (const EventRecord& e : *events) {
    if (e.kind == "task_succeeded") ++succeeded_events[e.task_id.value_or(0)];
  }
  for (const TaskRecord& t : *tasks) {
    EXPECT_EQ(t.state, TaskState::kSucceeded) << t.task_key;
    EXPECT_EQ(accepted[t.id], 1) << t.task_key;
    EXPECT_EQ(succeeded_events[t.id], 1) << t.task_key;
    auto attempts = ledger_->ListAttempts(t.id);
    ASSERT_TRUE(attempts.ok());
    ASSERT_EQ(static_cast<int>(attempts->size()), t.attempt) << t.task_key;
    int wins = 0;
    for (size_t i = 0; i < attempts->size(); ++i) {
      const AttemptRecord& a = (*attempts)[i];
      EXPECT_EQ(a.attempt, static_cast<int>(i) + 1);
      EXPECT_NE(a.outcome, AttemptOutcome::kRunning) << t.task_key;
      EXPECT_TRUE(a.ended_ms.has_value());
      wins += a.outcome == AttemptOutcome::kSucceeded ? 1 : 0;
    }
    EXPECT_EQ(wins, 1) << t.task_key;
    EXPECT_EQ(attempts->back().outcome, AttemptOutcome::kSucceeded) << t.task_key;
  }
  EXPECT_EQ(ledger_->GetRunHealth(run_)->excluded_cases, 0);
  std::cout << "seed=" << seed << " restarts=" << restarts << " crashes=" << crashes
            << " partitions=" << partitions << " stale_reports=" << stale
            << " events=" << events->size() << "\n";
}

TEST_F(SchedulerRestartTest, ChaosSeed1EndsWithEveryTaskDoneExactlyOnce) { RunChaos(1); }
TEST_F(SchedulerRestartTest, ChaosSeed2EndsWithEveryTaskDoneExactlyOnce) { RunChaos(2); }
TEST_F(SchedulerRestartTest, ChaosSeed3EndsWithEveryTaskDoneExactlyOnce) { RunChaos(3); }

}  // namespace
}  // namespace clisc
