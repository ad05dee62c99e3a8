// Durability against process crashes: a writer killed with SIGKILL at random moments leaves a
// consistent ledger behind.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <random>

#include "coordinator/ledger.h"
#include "coordinator/sqlite_db.h"
#include "tests/unit/ledger_fixture.h"

namespace clisc {
namespace {

using testutil::LedgerTest;

// The worker side of the kill test: leases and completes ready tasks in batches until none is
// left, writing a byte to `progress_fd` after each committed batch. Runs in a child process that
// the test kills at random moments.
[[noreturn]] void DriveUntilDone(const std::string& path, RunId run, uint32_t seed,
                                 int progress_fd) {
  FakeClock clock;
  auto ledger = Ledger::Open(path, &clock);
  if (!ledger.ok()) _exit(2);
  std::mt19937 rng(seed);
  while (true) {
    auto open = (*ledger)->LoadOpenTasks(run);
    if (!open.ok()) _exit(3);
    if (open->empty()) _exit(0);
    std::vector<LeaseRequest> requests;
    for (const OpenTask& o : *open) {
      if (o.task.state == TaskState::kPending && o.unmet_deps.empty()) {
        requests.push_back({o.task.id, "child", std::nullopt});
      }
      if (requests.size() >= 1 + rng() % 24) break;
    }
    auto grants = (*ledger)->LeaseBatch(requests);
    if (!grants.ok()) _exit(4);
    std::vector<Completion> done;
    for (const auto& g : *grants) {
      if (!g.ok()) continue;
      done.push_back({g->task_id,
                      g->attempt,
                      "child",
                      "{}",
                      {{"out", "t/" + std::to_string(g->task_id), 1, std::string(64, 'b')}}});
    }
    if (!(*ledger)->CompleteBatch(done).ok()) _exit(5);
    const char tick = 1;
    (void)!::write(progress_fd, &tick, 1);
  }
}

// Kills a process that is writing the ledger with SIGKILL at random moments (mid-transaction
// included) and checks after each kill that the file is intact and every committed transition
// came with its attempt row and its event: WAL + synchronous=NORMAL is durable and atomic
// against process crashes.
TEST_F(LedgerTest, SurvivesSigkillMidTransaction) {
  std::vector<TaskSpec> plan;
  // Enough work that an idle machine does not finish it between kills.
  for (int c = 0; c < 200; ++c) {
    std::string id = "c" + std::to_string(c);
    plan.push_back(Spec("a/" + id, id));
    plan.push_back(Spec("b/" + id, id, {"a/" + id}, 50));
    plan.push_back(Spec("c/" + id, id, {"b/" + id}, 50));
  }
  auto ids = Plan(plan);
  ledger_.reset();  // no SQLite connection may cross a fork

  std::mt19937 rng(7);
  int kills = 0;
  int succeeded_under_kills = 0;  // progress made by children that were then killed
  bool finished = false;
  constexpr int kKillRounds = 40;  // then the child is left to finish
  for (int round = 0; round <= kKillRounds && !finished; ++round) {
    int progress[2];
    ASSERT_EQ(::pipe2(progress, O_NONBLOCK), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(progress[0]);
      ::signal(SIGPIPE, SIG_IGN);  // the test stops reading before the last child is done
      DriveUntilDone(path_, run_, static_cast<uint32_t>(round), progress[1]);
    }
    ::close(progress[1]);
    if (round < kKillRounds) {
      // Kill after the child committed a few batches (however slow the machine is), at a random
      // moment of the next one, which is often mid-transaction.
      const int batches = 1 + static_cast<int>(rng() % 3);
      int seen = 0;
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (seen < batches && std::chrono::steady_clock::now() < give_up) {
        pollfd wait{progress[0], POLLIN, 0};
        if (::poll(&wait, 1, 100) <= 0) continue;
        char buffer[64];
        const ssize_t n = ::read(progress[0], buffer, sizeof(buffer));
        if (n <= 0) break;  // the child finished (or died) and closed its end
        seen += static_cast<int>(n);
      }
      ::usleep(static_cast<useconds_t>(rng() % 2'000));
      ::kill(pid, SIGKILL);
    }
    ::close(progress[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed";
      finished = true;
    } else {
      ++kills;
    }

    Reopen();
    auto db = sqlite::Database::Open(path_, false);
    ASSERT_TRUE(db.ok());
    auto check = (*db)->Prepare("PRAGMA integrity_check");
    ASSERT_TRUE(check.ok());
    ASSERT_TRUE((*check)->Step().ok());
    ASSERT_EQ((*check)->Text(0), "ok");
    std::map<TaskId, int> leased_events, succeeded_events;
    auto events = ledger_->ListEvents(0, 10'000'000);
    ASSERT_TRUE(events.ok());
    for (const EventRecord& e : *events) {
      if (e.kind == "task_leased") ++leased_events[e.task_id.value_or(0)];
      if (e.kind == "task_succeeded") ++succeeded_events[e.task_id.value_or(0)];
    }
    std::vector<LeaseExpiry> lost;
    auto tasks = ledger_->ListTasks(run_);
    ASSERT_TRUE(tasks.ok());
    for (const TaskRecord& t : *tasks) {
      auto attempts = ledger_->ListAttempts(t.id);
      ASSERT_EQ(static_cast<int>(attempts->size()), t.attempt) << t.task_key;
      ASSERT_EQ(leased_events[t.id], t.attempt) << t.task_key;
      ASSERT_EQ(succeeded_events[t.id], t.state == TaskState::kSucceeded ? 1 : 0) << t.task_key;
      if (t.attempt > 0) {
        AttemptOutcome last = attempts->back().outcome;
        ASSERT_EQ(last == AttemptOutcome::kRunning, t.state == TaskState::kLeased) << t.task_key;
        ASSERT_EQ(last == AttemptOutcome::kSucceeded, t.state == TaskState::kSucceeded);
        ASSERT_EQ(ledger_->ListArtifacts(t.id)->size(), t.state == TaskState::kSucceeded ? 1u : 0u);
      }
      if (t.state == TaskState::kLeased) lost.push_back({t.id, t.attempt, "child killed", 0});
    }
    if (!finished) {
      succeeded_under_kills = 0;
      for (const TaskRecord& t : *tasks) succeeded_under_kills += t.state == TaskState::kSucceeded;
    }
    // What a restarted coordinator does with leases nobody comes back for.
    ASSERT_TRUE(ledger_->ExpireLeases(lost).ok());
    ledger_.reset();
  }
  ASSERT_TRUE(finished) << "the child never finished";
  Reopen();
  EXPECT_GT(kills, 3);
  EXPECT_GT(succeeded_under_kills, 0);
  auto tasks = ledger_->ListTasks(run_);
  ASSERT_TRUE(tasks.ok());
  for (const TaskRecord& t : *tasks) {
    EXPECT_EQ(t.state, TaskState::kSucceeded) << t.task_key;
  }
  std::cout << "kills=" << kills << " succeeded_before_last_run=" << succeeded_under_kills << " of "
            << plan.size() << "\n";
}

}  // namespace
}  // namespace clisc
