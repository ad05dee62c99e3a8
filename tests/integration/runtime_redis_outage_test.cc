// Redis is SIGKILLed in the middle of a run: the run goes on and completes, `clisc status` falls
// back to the coordinator's endpoint while Redis is down, and once Redis is back (empty) the
// coordinator's mirror resyncs it so that status from Redis shows the run again.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "coordinator/redis_status_reader.h"
#include "tests/integration/runtime_harness.h"
#include "tests/support/redis_server.h"

namespace clisc::testutil {
namespace {

using namespace std::chrono_literals;

int64_t SucceededIn(const std::string& status_json) {
  nlohmann::json doc = nlohmann::json::parse(status_json, nullptr, false);
  if (!doc.is_object() || !doc.contains("totals")) return -1;
  return doc["totals"].value("succeeded", int64_t{-1});
}

// Polls the mirror until it holds the run with more than `after` tasks done.
StatusOr<MirroredStatus> WaitForMirror(const std::string& url, int64_t after,
                                       std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Status last = UnavailableError("never asked");
  while (std::chrono::steady_clock::now() < deadline) {
    StatusOr<MirroredStatus> status = ReadMirroredStatus(url, "outage", "clisc", 500ms);
    if (status.ok() && SucceededIn(status->status_json) > after) return status;
    last = status.ok() ? NotFoundError("mirror not past " + std::to_string(after) + " yet")
                       : status.status();
    std::this_thread::sleep_for(100ms);
  }
  return last;
}

struct CommandOutput {
  int exit_code = -1;
  std::string out;
};

CommandOutput RunStatusCommand(const std::vector<std::string>& args, const Scratch& dir) {
  ChildProcess child;
  const std::filesystem::path log = dir / "status.out";
  std::filesystem::remove(log);
  std::vector<std::string> argv = {CLISC_BINARY, "status"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandOutput result;
  if (!child.Start(argv, log)) return result;
  std::optional<int> status = child.Wait(20s);
  if (status && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  result.out = child.Log();
  return result;
}

// The JSON document in `clisc status --json` output: the note about the source goes to stderr,
// which the log interleaves before it; the document starts at the first line that opens an object.
nlohmann::json FindDocument(const std::string& out) {
  size_t start = out.rfind("\n{", 0) == 0 || out.rfind("{", 0) == 0 ? 0 : out.find("\n{");
  if (start == std::string::npos) return {};
  nlohmann::json doc = nlohmann::json::parse(out.substr(start), nullptr, false);
  return doc.is_object() ? doc : nlohmann::json();
}

TEST(RuntimeRedisOutageTest, RunCompletesAndStatusRecoversAfterRedisReturns) {
  StatusOr<std::unique_ptr<RedisServer>> redis = RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status().ToString();
  const std::string url = "redis://127.0.0.1:" + std::to_string((*redis)->port());

  Scratch dir("clisc-redis-outage");
  WriteJson(dir / "plan.json", SleepPlan(/*count=*/500, /*task_ms=*/30));
  const int port = PickFreePort();
  const int http_port = PickFreePort();
  const std::string http = "127.0.0.1:" + std::to_string(http_port);
  CoordinatorArgs args{dir.path(), port, "outage",
                       {"--redis", url, "--http", http, "--heartbeat-ms", "200"}};
  ChildProcess coordinator;
  ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
  ChildProcess worker_a;
  ChildProcess worker_b;
  ASSERT_TRUE(worker_a.Start(WorkerCommand(port, "wa", "sleep", {"--slots", "2"}),
                             dir / "wa.log"));
  ASSERT_TRUE(worker_b.Start(WorkerCommand(port, "wb", "sleep", {"--slots", "2"}),
                             dir / "wb.log"));

  // The live view reaches Redis while the run is going.
  StatusOr<MirroredStatus> before = WaitForMirror(url, 0, 30s);
  ASSERT_TRUE(before.ok()) << before.status().ToString() << "\n" << coordinator.Log();
  const int64_t done_before = SucceededIn(before->status_json);
  ASSERT_LT(done_before, 500) << "the run ended before Redis could be taken down";

  (*redis)->Kill();
  // Status falls back to the coordinator, which soon reports Redis as down.
  nlohmann::json doc = nlohmann::json::object();
  std::string last_output;
  for (int i = 0; i < 20 && doc.value("/coordinator/redis_state"_json_pointer, "") != "down"; ++i) {
    CommandOutput during = RunStatusCommand(
        {"--redis", url, "--coordinator", http, "--run", "outage", "--json"}, dir);
    ASSERT_EQ(during.exit_code, 0) << during.out;
    doc = FindDocument(during.out);
    ASSERT_TRUE(doc.is_object()) << during.out;
    EXPECT_EQ(doc.value("source", ""), "coordinator") << during.out;
    last_output = during.out;
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(doc.value("/coordinator/redis_state"_json_pointer, ""), "down") << last_output;
  std::this_thread::sleep_for(1s);  // the run keeps going meanwhile
  ASSERT_TRUE(coordinator.running()) << coordinator.Log();

  ASSERT_TRUE((*redis)->Restart().ok());
  StatusOr<MirroredStatus> after = WaitForMirror(url, done_before, 30s);
  ASSERT_TRUE(after.ok()) << after.status().ToString() << "\n" << coordinator.Log();
  CommandOutput recovered =
      RunStatusCommand({"--redis", url, "--coordinator", http, "--run", "outage", "--json"}, dir);
  ASSERT_EQ(recovered.exit_code, 0) << recovered.out;
  EXPECT_EQ(FindDocument(recovered.out).value("source", ""), "redis") << recovered.out;

  std::optional<int> exit = coordinator.Wait(90s);
  ASSERT_TRUE(exit.has_value()) << coordinator.Log();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << coordinator.Log();
  EXPECT_EQ(CountSucceeded(dir / "ledger.db", "outage"), 500);
  // The last flush records the finished run in Redis too.
  StatusOr<MirroredStatus> final_status = ReadMirroredStatus(url, "outage", "clisc", 1s);
  ASSERT_TRUE(final_status.ok()) << final_status.status().ToString();
  EXPECT_EQ(SucceededIn(final_status->status_json), 500);
}

}  // namespace
}  // namespace clisc::testutil
