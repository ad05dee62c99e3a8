// `clisc worker` as a process (the built CLISC_BINARY as a child) against a scripted ROUTER:
// refusals and exit codes, signals and drains, a role that kills the process, the command line.
#include <gtest/gtest.h>

#include <csignal>

#include "common/wire/curve_auth.h"
#include "common/wire/protocol_version.h"
#include "tests/unit/worker_coordinator_fixture.h"

namespace clisc::worker_test {
namespace {

using std::chrono::milliseconds;

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(CLISC_BINARY)) GTEST_SKIP() << "clisc not built: " << CLISC_BINARY;
  }

  std::unique_ptr<ChildProcess> Spawn(std::vector<std::string> extra) {
    std::vector<std::string> args{CLISC_BINARY,
                                  "worker",
                                  "--connect",
                                  coordinator_.endpoint(),
                                  "--id",
                                  "proc-worker",
                                  "--heartbeat-interval-ms",
                                  "100",
                                  "--scratch",
                                  (temp_.path() / "scratch").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(args, temp_.path() / "stderr.txt");
  }

  std::unique_ptr<ChildProcess> Run(std::vector<std::string> args) {
    args.insert(args.begin(), {CLISC_BINARY, "worker"});
    auto child = std::make_unique<ChildProcess>(args, temp_.path() / "stderr.txt");
    EXPECT_TRUE(child->Wait(milliseconds(10'000)));
    return child;
  }

  static int ExitCode(const std::optional<int>& status) {
    if (!status || !WIFEXITED(*status)) return -1;
    return WEXITSTATUS(*status);
  }

  TempDir temp_;
  FakeCoordinator coordinator_;
};

TEST_F(WorkerProcessTest, ProtocolVersionRefusalExitsOneNamingBothVersions) {
  auto child = Spawn({"--roles", "noop"});
  auto hello = coordinator_.WaitFor(Body::kHello, milliseconds(10'000));
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->envelope.hello().worker_id(), "proc-worker");
  // A coordinator of a newer release answers in its own version, as the real one does.
  const uint32_t theirs = kProtocolVersion + 1;
  wire::Envelope refused;
  refused.mutable_refused()->set_code(wire::Refused::PROTOCOL_VERSION);
  refused.mutable_refused()->set_supported_protocol_version(theirs);
  refused.mutable_refused()->set_reason("the coordinator speaks protocol version " +
                                        std::to_string(theirs));
  coordinator_.Send(hello->identity, refused, theirs);
  const auto status = child->Wait(milliseconds(5000));
  ASSERT_TRUE(status) << "the worker did not exit";
  EXPECT_EQ(ExitCode(status), 1);
  const std::string err = child->Log();
  EXPECT_NE(err.find("protocol version " + std::to_string(theirs)), std::string::npos) << err;
  EXPECT_NE(err.find("protocol version " + std::to_string(kProtocolVersion)), std::string::npos)
      << err;
}

TEST_F(WorkerProcessTest, SigtermDrainsRunningTaskThenExitsZero) {
  auto child = Spawn({"--roles", "sleep", "--slots", "2"});
  ASSERT_TRUE(coordinator_.AcceptHello(milliseconds(10'000)));
  coordinator_.Assign("1", 1, "sleep", R"({"ms": 600})");
  ASSERT_TRUE(coordinator_.WaitFor(Body::kProgress, milliseconds(3000)));
  coordinator_.ClearLog();
  child->Signal(SIGTERM);

  auto draining = coordinator_.WaitFor(Body::kDisconnect, milliseconds(3000));
  ASSERT_TRUE(draining);
  EXPECT_TRUE(draining->envelope.disconnect().draining());
  EXPECT_EQ(draining->envelope.disconnect().reason(), "SIGTERM");
  EXPECT_EQ(draining->envelope.disconnect().sender_id(), "proc-worker");
  auto result = coordinator_.WaitForResult("1", 1, milliseconds(3000));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok());
  auto leaving = coordinator_.WaitFor(Body::kDisconnect, milliseconds(3000));
  ASSERT_TRUE(leaving);
  EXPECT_FALSE(leaving->envelope.disconnect().draining());
  EXPECT_EQ(ExitCode(child->Wait(milliseconds(5000))), 0) << child->Log();
  const std::string err = child->Log();
  EXPECT_NE(err.find("worker_exit"), std::string::npos) << err;
  EXPECT_NE(err.find("succeeded=1"), std::string::npos) << err;
}

TEST_F(WorkerProcessTest, TaskLongerThanDrainTimeoutIsHandedBack) {
  auto child = Spawn({"--roles", "sleep", "--drain-timeout-ms", "300"});
  ASSERT_TRUE(coordinator_.AcceptHello(milliseconds(10'000)));
  coordinator_.Assign("1", 1, "sleep", R"({"ms": 60000})");
  ASSERT_TRUE(coordinator_.WaitFor(Body::kProgress, milliseconds(3000)));
  coordinator_.ClearLog();
  const auto signalled = SteadyClock::now();
  child->Signal(SIGTERM);

  auto draining = coordinator_.WaitFor(Body::kDisconnect, milliseconds(3000));
  ASSERT_TRUE(draining);
  EXPECT_TRUE(draining->envelope.disconnect().draining());
  auto result = coordinator_.WaitForResult("1", 1, milliseconds(5000));
  ASSERT_TRUE(result);
  EXPECT_GE(SteadyClock::now() - signalled, milliseconds(250));
  EXPECT_FALSE(result->ok());
  EXPECT_EQ(result->error().code(), wire::Error::UNAVAILABLE);
  EXPECT_TRUE(result->error().retryable());
  EXPECT_NE(result->error().message().find("proc-worker shut down before the task finished"),
            std::string::npos)
      << result->error().message();
  auto leaving = coordinator_.WaitFor(Body::kDisconnect, milliseconds(3000));
  ASSERT_TRUE(leaving);
  EXPECT_FALSE(leaving->envelope.disconnect().draining());
  EXPECT_EQ(ExitCode(child->Wait(milliseconds(5000))), 0) << child->Log();
}

TEST_F(WorkerProcessTest, SecondSignalStopsWithoutWaiting) {
  auto child = Spawn({"--roles", "sleep"});
  ASSERT_TRUE(coordinator_.AcceptHello(milliseconds(10'000)));
  coordinator_.Assign("1", 1, "sleep", R"({"ms": 60000})");
  ASSERT_TRUE(coordinator_.WaitFor(Body::kProgress, milliseconds(3000)));
  child->Signal(SIGINT);
  ASSERT_TRUE(coordinator_.WaitFor(Body::kDisconnect, milliseconds(3000)));
  child->Signal(SIGINT);
  auto result = coordinator_.WaitForResult("1", 1, milliseconds(3000));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->error().code(), wire::Error::UNAVAILABLE);
  EXPECT_EQ(ExitCode(child->Wait(milliseconds(5000))), 0) << child->Log();
}

TEST_F(WorkerProcessTest, CrashRoleKillsTheWorkerProcess) {
  auto child = Spawn({"--roles", "crash"});
  ASSERT_TRUE(coordinator_.AcceptHello(milliseconds(10'000)));
  coordinator_.Assign("1", 1, "crash", R"({"after_ms": 50})");
  const auto status = child->Wait(milliseconds(5000));
  ASSERT_TRUE(status) << "the worker survived the crash role";
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGABRT);
  EXPECT_FALSE(coordinator_.WaitForResult("1", 1, milliseconds(100)));
}

TEST_F(WorkerProcessTest, CrashRoleSucceedsOnLaterAttempts) {
  auto child = Spawn({"--roles", "crash"});
  ASSERT_TRUE(coordinator_.AcceptHello(milliseconds(10'000)));
  coordinator_.Assign("1", 2, "crash", R"({"times": 1, "after_ms": 50})");
  auto result = coordinator_.WaitForResult("1", 2, milliseconds(3000));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok());
  child->Signal(SIGTERM);
  EXPECT_EQ(ExitCode(child->Wait(milliseconds(5000))), 0);
}

TEST(WorkerCurveTest, WorkerWithAnAllowedKeyGetsThrough) {
  if (!std::filesystem::exists(CLISC_BINARY)) GTEST_SKIP() << "clisc not built: " << CLISC_BINARY;
  TempDir temp;
  auto server_keys = GenerateCurveKeyPair();
  auto worker_keys = GenerateCurveKeyPair();
  ASSERT_TRUE(server_keys.ok()) << server_keys.status().ToString();
  ASSERT_TRUE(worker_keys.ok());
  ASSERT_TRUE(WriteCurveKeyFiles(temp.path() / "coordinator", *server_keys).ok());
  ASSERT_TRUE(WriteCurveKeyFiles(temp.path() / "worker", *worker_keys).ok());

  std::unique_ptr<CurveAuthenticator> authenticator;
  ZmqSocketOptions options;
  options.configure = [&](void* raw) { return EnableCurveServer(raw, *server_keys); };
  FakeCoordinator coordinator(options, [&](const std::shared_ptr<ZmqContext>& context) {
    auto started = CurveAuthenticator::Start(context, {worker_keys->public_z85});
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    authenticator = std::move(*started);
  });
  ChildProcess child(
      {CLISC_BINARY, "worker", "--connect", coordinator.endpoint(), "--roles", "noop", "--id",
       "curve-worker", "--curve-server-key", (temp.path() / "coordinator.pub").string(),
       "--curve-key", (temp.path() / "worker.key").string()},
      temp.path() / "stderr.txt");
  auto hello = coordinator.AcceptHello(milliseconds(10'000));
  ASSERT_TRUE(hello) << child.Log();
  EXPECT_EQ(hello->envelope.hello().worker_id(), "curve-worker");
  coordinator.Assign("1", 1, "noop", "{}");
  auto result = coordinator.WaitForResult("1", 1, milliseconds(3000));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok());
  EXPECT_GE(authenticator->allowed(), 1u);
  child.Signal(SIGTERM);
  const auto status = child.Wait(milliseconds(5000));
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << child.Log();
  authenticator.reset();
}

TEST_F(WorkerProcessTest, HelpExplainsEveryFlag) {
  auto child = std::make_unique<ChildProcess>(
      std::vector<std::string>{
          "/bin/sh", "-c",
          std::string(CLISC_BINARY) + " worker --help >" + (temp_.path() / "help.txt").string()},
      temp_.path() / "stderr.txt");
  ASSERT_EQ(ExitCode(child->Wait(milliseconds(10'000))), 0);
  std::ifstream in(temp_.path() / "help.txt");
  std::stringstream help;
  help << in.rdbuf();
  for (const char* flag : {"--connect", "--roles", "--device", "--slots", "--id", "--artifact-root",
                           "--scratch", "--drain-timeout-ms", "--curve-server-key", "--curve-key",
                           "--log-format", "write_artifact"}) {
    EXPECT_NE(help.str().find(flag), std::string::npos) << flag;
  }
}

TEST_F(WorkerProcessTest, BadCommandLinesAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--connect", "tcp://127.0.0.1:1", "--roles", "noop,nope"},
       "noop, prep, reduce, sam, sleep, write_artifact"},
      {{"--connect", "tcp://127.0.0.1:1", "--roles", "noop", "--device", "gpu0"}, "cuda:N"},
      {{"--connect", "tcp://127.0.0.1:1", "--roles", "noop", "--slots", "0"}, "1 to 1024"},
      {{"--connect", "tcp://127.0.0.1:1", "--roles", "noop", "--slots", "2000"}, "1 to 1024"},
      {{"--roles", "noop"}, "--connect"},
      {{"--connect", "tcp://127.0.0.1:1", "--roles", "noop", "--artifact-root", "/tmp/a",
        "--scratch", "/tmp/b"},
       "exclude"},
      {{"--connect", "tcp://127.0.0.1:1", "--roles", "noop", "--curve-key", "/tmp/x.key"},
       "--curve-server-key"},
  };
  for (const Case& c : cases) {
    auto child = Run(c.args);
    EXPECT_EQ(ExitCode(child->Wait(milliseconds(0))), 2) << c.expected;
    EXPECT_NE(child->Log().find(c.expected), std::string::npos) << child->Log();
  }
}

}  // namespace
}  // namespace clisc::worker_test
