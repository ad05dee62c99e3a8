// `clisc cancel` against a real coordinator: a wrong run name is refused, the right one cancels
// every open task, revokes the running lease, and the coordinator ends the run as cancelled.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/integration/runtime_harness.h"

namespace clisc::testutil {
namespace {

using namespace std::chrono_literals;

int RunCancel(const std::vector<std::string>& args, const std::filesystem::path& log,
              std::string* output) {
  std::vector<std::string> argv = {CLISC_BINARY, "cancel"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess child(argv, log);
  std::optional<int> status = child.Wait(20s);
  *output = child.Log();
  return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

TEST(RuntimeCancelTest, CancellingTheRunStopsEverything) {
  Scratch dir("clisc-cancel");
  WriteJson(dir / "plan.json", SleepPlan(/*count=*/40, /*task_ms=*/5000));
  const int port = PickFreePort();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  CoordinatorArgs args{dir.path(), port, "cancelme", {"--http", "off"}};
  ChildProcess coordinator;
  ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
  ChildProcess worker;
  ASSERT_TRUE(worker.Start(WorkerCommand(port, "w", "sleep"), dir / "worker.log"));
  // Wait until the worker holds a lease.
  for (int i = 0; i < 100 && coordinator.Log().find("worker_hello") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(300ms);

  std::string out;
  EXPECT_EQ(RunCancel({"--coordinator", endpoint, "--run", "other"}, dir / "c1.log", &out), 1)
      << out;
  EXPECT_NE(out.find("serves run cancelme"), std::string::npos) << out;
  EXPECT_EQ(RunCancel({"--coordinator", endpoint, "--run", "cancelme", "--reason", "wrong data"},
                      dir / "c2.log", &out),
            0)
      << out;
  EXPECT_NE(out.find("cancelled 40 task(s)"), std::string::npos) << out;

  std::optional<int> exit = coordinator.Wait(20s);
  ASSERT_TRUE(exit.has_value()) << coordinator.Log();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 1) << coordinator.Log();
  EXPECT_NE(coordinator.Log().find("cancelled"), std::string::npos);
  EXPECT_EQ(CountSucceeded(dir / "ledger.db", "cancelme"), 0);
  RealClock clock;
  StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open((dir / "ledger.db").string(), &clock);
  ASSERT_TRUE(ledger.ok());
  StatusOr<std::optional<RunId>> run = (*ledger)->FindRun("cancelme");
  ASSERT_TRUE(run.ok() && run->has_value());
  StatusOr<RunRecord> record = (*ledger)->GetRun(**run);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, RunState::kCancelled);
  // The worker was told to stop its task and then to leave.
  std::optional<int> worker_exit = worker.Wait(10s);
  ASSERT_TRUE(worker_exit.has_value()) << worker.Log();
  EXPECT_TRUE(WIFEXITED(*worker_exit) && WEXITSTATUS(*worker_exit) == 0) << worker.Log();
}

}  // namespace
}  // namespace clisc::testutil
