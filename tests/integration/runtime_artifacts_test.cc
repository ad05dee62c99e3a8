// Artifacts across real processes: a worker without the shared filesystem moves its inputs and
// outputs through the coordinator, and a restarted coordinator that finds a finished task's
// artifact corrupt or missing runs that task and everything downstream of it again.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "common/artifact_store.h"
#include "tests/integration/runtime_harness.h"

namespace clisc::testutil {
namespace {

using namespace std::chrono_literals;

bool Exited0(const std::optional<int>& status) {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

// Every task of the run succeeded and its recorded outputs match the store.
void ExpectAllSucceededAndIntact(const std::filesystem::path& ledger_path, const std::string& run,
                                 const std::filesystem::path& store_root, size_t tasks) {
  RealClock clock;
  StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(ledger_path.string(), &clock);
  ASSERT_TRUE(ledger.ok());
  StatusOr<std::optional<RunId>> id = (*ledger)->FindRun(run);
  ASSERT_TRUE(id.ok() && id->has_value());
  StatusOr<std::vector<TaskRecord>> records = (*ledger)->ListTasks(**id);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), tasks);
  StatusOr<ArtifactStore> store = ArtifactStore::Open(store_root);
  ASSERT_TRUE(store.ok());
  for (const TaskRecord& task : *records) {
    EXPECT_EQ(task.state, TaskState::kSucceeded) << task.task_key;
    StatusOr<std::vector<ArtifactRecord>> outputs = (*ledger)->ListArtifacts(task.id);
    ASSERT_TRUE(outputs.ok());
    ASSERT_EQ(outputs->size(), 1u) << task.task_key;
    const ArtifactRecord& out = outputs->front();
    Status verified =
        store->Verify({out.relative_path, static_cast<uint64_t>(out.size_bytes), out.sha256});
    EXPECT_TRUE(verified.ok()) << task.task_key << ": " << verified.ToString();
  }
}

TEST(RuntimeArtifactsTest, WorkerWithoutSharedFilesystemGoesThroughTheCoordinator) {
  Scratch dir("clisc-relay");
  const std::filesystem::path store = dir / "store";
  const int port = PickFreePort();
  CoordinatorArgs args{dir.path(), port, "relay", {"--artifact-root", store.string(),
                                                   "--http", "off"}};
  // Two workers without the shared filesystem, one after the other: the first produces stage 1,
  // the second (a fresh node) must fetch those outputs through the coordinator for stage 2 and
  // push its own outputs back. 300 KB artifacts.
  auto run_phase = [&](int stages, const std::string& worker_id) {
    WriteJson(dir / "plan.json", ArtifactChainPlan(/*cases=*/8, stages, 300'000, 0));
    ChildProcess coordinator;
    ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
    ChildProcess worker;
    ASSERT_TRUE(worker.Start(WorkerCommand(port, worker_id, "write_artifact",
                                           {"--slots", "2", "--scratch",
                                            (dir / ("scratch-" + worker_id)).string()}),
                             dir / (worker_id + ".log")));
    ASSERT_TRUE(Exited0(coordinator.Wait(90s))) << coordinator.Log() << worker.Log();
  };
  run_phase(1, "first");
  run_phase(3, "second");
  ExpectAllSucceededAndIntact(dir / "ledger.db", "relay", store, 24);
  nlohmann::json summary = nlohmann::json::parse(std::ifstream(dir / "summary.json"));
  EXPECT_EQ(summary.value("tasks_succeeded", 0), 24) << summary.dump();
  EXPECT_EQ(summary.value("results_this_process", 0), 16) << summary.dump();
  EXPECT_GE(summary.value("artifact_chunks_served", 0), 8) << summary.dump();
  EXPECT_GE(summary.value("artifact_puts", 0), 16) << summary.dump();
}

TEST(RuntimeArtifactsTest, CorruptOrMissingArtifactsRunAgainOnResume) {
  Scratch dir("clisc-resume");
  WriteJson(dir / "plan.json", ArtifactChainPlan(/*cases=*/10, /*stages=*/3, 2048, 0));
  const std::filesystem::path store = dir / "store";
  const int port = PickFreePort();
  CoordinatorArgs args{dir.path(), port, "resume", {"--artifact-root", store.string(),
                                                    "--http", "off"}};
  const std::vector<std::string> worker_args = {"--slots", "2", "--artifact-root", store.string()};
  {
    ChildProcess coordinator;
    ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
    ChildProcess worker;
    ASSERT_TRUE(worker.Start(WorkerCommand(port, "w", "write_artifact", worker_args),
                             dir / "worker.log"));
    ASSERT_TRUE(Exited0(coordinator.Wait(60s))) << coordinator.Log();
  }
  // One stage-1 output corrupted (same size, other bytes), one stage-2 output deleted.
  {
    std::fstream corrupt(store / "s1" / "case3.bin", std::ios::in | std::ios::out |
                                                         std::ios::binary);
    ASSERT_TRUE(corrupt.good());
    corrupt.seekp(100);
    corrupt.write("XXXXXXXX", 8);
  }
  ASSERT_TRUE(std::filesystem::remove(store / "s2" / "case5.bin"));

  ChildProcess coordinator;
  ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
  ChildProcess worker;
  ASSERT_TRUE(worker.Start(WorkerCommand(port, "w", "write_artifact", worker_args),
                           dir / "worker.log"));
  ASSERT_TRUE(Exited0(coordinator.Wait(60s))) << coordinator.Log();
  ExpectAllSucceededAndIntact(dir / "ledger.db", "resume", store, 30);
  // Exactly the damaged tasks and their dependents ran again: s1, s2, s3 of case3 and s2, s3 of
  // case5.
  nlohmann::json summary = nlohmann::json::parse(std::ifstream(dir / "summary.json"));
  EXPECT_EQ(summary.value("results_this_process", 0), 5) << summary.dump();
  RealClock clock;
  StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open((dir / "ledger.db").string(), &clock);
  ASSERT_TRUE(ledger.ok());
  StatusOr<std::optional<RunId>> run = (*ledger)->FindRun("resume");
  ASSERT_TRUE(run.ok() && run->has_value());
  for (const char* key : {"s1/case3", "s2/case3", "s3/case3", "s2/case5", "s3/case5", "s1/case5",
                          "s3/case0"}) {
    StatusOr<std::optional<TaskRecord>> task = (*ledger)->FindTask(**run, key);
    ASSERT_TRUE(task.ok() && task->has_value()) << key;
    const bool rerun = std::string(key) != "s1/case5" && std::string(key) != "s3/case0";
    EXPECT_EQ((*task)->attempt, rerun ? 2 : 1) << key;
  }
}

}  // namespace
}  // namespace clisc::testutil
