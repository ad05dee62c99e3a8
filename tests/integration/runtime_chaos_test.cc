// One coordinator and four workers run 2,001 tasks in three dependent stages while a random
// worker is SIGKILLed and restarted every ~1.5 s and the coordinator is SIGKILLed twice (at about
// a quarter and at about two thirds of the run) and restarted on the same ledger. At the end every
// task must have succeeded exactly once, every attempt must be recorded and closed, and every
// artifact must be in the store with the size and checksum the ledger recorded.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "common/artifact_store.h"
#include "tests/integration/runtime_harness.h"

namespace clisc::testutil {
namespace {

using namespace std::chrono_literals;

constexpr int kCases = 667;
constexpr int kStages = 3;
constexpr int kTasks = kCases * kStages;
constexpr int kWorkers = 4;

TEST(RuntimeChaosTest, EveryTaskSucceedsOnceDespiteKilledWorkersAndCoordinator) {
  Scratch dir("clisc-chaos");
  WriteJson(dir / "plan.json", ArtifactChainPlan(kCases, kStages, /*bytes=*/512, /*task_ms=*/25));
  const std::filesystem::path store = dir / "store";
  const int port = PickFreePort();
  ASSERT_GT(port, 0);
  CoordinatorArgs args{dir.path(), port, "chaos",
                       {"--artifact-root", store.string(), "--http", "off", "--heartbeat-ms",
                        "200", "--liveness", "3", "--restart-grace-ms", "1500",
                        "--retry-backoff-ms", "50", "--max-attempts", "25"}};

  ChildProcess coordinator;
  ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
  std::vector<std::unique_ptr<ChildProcess>> workers;
  auto start_worker = [&](int i) {
    workers[i] = std::make_unique<ChildProcess>();
    ASSERT_TRUE(workers[i]->Start(
        WorkerCommand(port, "w" + std::to_string(i), "write_artifact",
                      {"--slots", "2", "--artifact-root", store.string()}),
        dir / ("worker" + std::to_string(i) + ".log")));
  };
  workers.resize(kWorkers);
  for (int i = 0; i < kWorkers; ++i) start_worker(i);

  std::mt19937 random(20261128);
  int worker_kills = 0;
  int coordinator_kills = 0;
  const double kill_points[] = {0.25, 0.65};
  auto next_worker_kill = std::chrono::steady_clock::now() + 1500ms;
  const auto deadline = std::chrono::steady_clock::now() + 240s;
  std::optional<int> final_status;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!coordinator.running()) {
      final_status = coordinator.exit_status();
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_worker_kill) {
      const int victim = static_cast<int>(random() % kWorkers);
      workers[victim]->Kill(SIGKILL);
      ++worker_kills;
      std::this_thread::sleep_for(100ms);
      start_worker(victim);
      next_worker_kill = now + 1500ms;
    }
    if (coordinator_kills < 2) {
      const int64_t done = CountSucceeded(dir / "ledger.db", "chaos");
      if (done >= kill_points[coordinator_kills] * kTasks) {
        coordinator.Kill(SIGKILL);
        ++coordinator_kills;
        std::this_thread::sleep_for(200ms);
        ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
      }
    }
    // Workers the run told to leave (or that died of their own accord) come back, as a cluster
    // supervisor would restart them.
    for (int i = 0; i < kWorkers; ++i) {
      if (!workers[i]->running() && coordinator.running()) start_worker(i);
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(final_status.has_value()) << "the run did not finish in time\n"
                                        << coordinator.Log();
  EXPECT_TRUE(WIFEXITED(*final_status) && WEXITSTATUS(*final_status) == 0) << coordinator.Log();
  EXPECT_EQ(coordinator_kills, 2);
  EXPECT_GE(worker_kills, 3);
  for (auto& worker : workers) worker->Kill(SIGTERM);

  // The ledger: every task succeeded exactly once, with every attempt recorded and closed.
  RealClock clock;
  StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open((dir / "ledger.db").string(), &clock);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  StatusOr<std::optional<RunId>> run = (*ledger)->FindRun("chaos");
  ASSERT_TRUE(run.ok() && run->has_value());
  StatusOr<RunRecord> run_record = (*ledger)->GetRun(**run);
  ASSERT_TRUE(run_record.ok());
  EXPECT_EQ(run_record->state, RunState::kSucceeded);
  StatusOr<std::vector<TaskRecord>> tasks = (*ledger)->ListTasks(**run);
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), static_cast<size_t>(kTasks));
  StatusOr<ArtifactStore> artifacts = ArtifactStore::Open(store);
  ASSERT_TRUE(artifacts.ok());
  int retried = 0;
  std::map<std::string, int> outcomes;
  for (const TaskRecord& task : *tasks) {
    ASSERT_EQ(task.state, TaskState::kSucceeded) << task.task_key;
    StatusOr<std::vector<AttemptRecord>> attempts = (*ledger)->ListAttempts(task.id);
    ASSERT_TRUE(attempts.ok());
    ASSERT_EQ(attempts->size(), static_cast<size_t>(task.attempt)) << task.task_key;
    int succeeded = 0;
    for (size_t i = 0; i < attempts->size(); ++i) {
      const AttemptRecord& attempt = (*attempts)[i];
      EXPECT_EQ(attempt.attempt, static_cast<int>(i) + 1) << task.task_key;
      EXPECT_NE(attempt.outcome, AttemptOutcome::kRunning) << task.task_key;
      EXPECT_TRUE(attempt.ended_ms.has_value()) << task.task_key;
      ++outcomes[std::string(AttemptOutcomeName(attempt.outcome))];
      if (attempt.outcome == AttemptOutcome::kSucceeded) ++succeeded;
    }
    EXPECT_EQ(succeeded, 1) << task.task_key;
    EXPECT_EQ(attempts->back().outcome, AttemptOutcome::kSucceeded) << task.task_key;
    if (task.attempt > 1) ++retried;
    StatusOr<std::vector<ArtifactRecord>> outputs = (*ledger)->ListArtifacts(task.id);
    ASSERT_TRUE(outputs.ok());
    ASSERT_EQ(outputs->size(), 1u) << task.task_key;
    const ArtifactRecord& out = outputs->front();
    EXPECT_EQ(out.relative_path, task.task_key + ".bin");
    Status verified = artifacts->Verify(
        {out.relative_path, static_cast<uint64_t>(out.size_bytes), out.sha256});
    EXPECT_TRUE(verified.ok()) << verified.ToString();
  }
  // The kills really cost attempts (otherwise this test proved nothing).
  EXPECT_GT(retried, 0);
  std::string breakdown;
  for (const auto& [outcome, count] : outcomes) {
    breakdown += outcome + "=" + std::to_string(count) + " ";
  }
  std::cout << "tasks=" << kTasks << " retried=" << retried << " worker_kills=" << worker_kills
            << " coordinator_kills=" << coordinator_kills << " attempts: " << breakdown << "\n";
}

}  // namespace
}  // namespace clisc::testutil
