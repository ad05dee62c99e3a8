// The worker's session with a coordinator, in process: a real Worker on its own thread talks to a
// scripted ROUTER socket over loopback TCP.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "common/wire/protocol_version.h"
#include "tests/unit/worker_coordinator_fixture.h"
#include "workers/runtime/test_roles.h"
#include "workers/runtime/worker.h"

namespace clisc::worker_test {
namespace {

using std::chrono::milliseconds;
using worker::Worker;
using worker::WorkerOptions;
using worker::WorkerSummary;

class WorkerSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(worker::RegisterTestRoles(registry_).ok()); }

  void TearDown() override {
    if (thread_.joinable()) {
      worker_->RequestDrain(SIGTERM);
      worker_->RequestDrain(SIGTERM);
      thread_.join();
    }
  }

  WorkerOptions Options(std::vector<std::string> roles, uint32_t slots = 2) {
    WorkerOptions options;
    options.connect = coordinator_.endpoint();
    options.worker_id = "test-worker";
    options.roles = std::move(roles);
    options.slots = slots;
    options.hostname = "testhost";
    options.pid = static_cast<uint32_t>(getpid());
    options.software_version = "test";
    options.scratch_dir = temp_.path() / "scratch";
    options.heartbeat_interval = milliseconds(100);
    options.heartbeat_liveness = 3;
    options.drain_timeout = milliseconds(2000);
    options.exit_flush = milliseconds(50);
    return options;
  }

  void Start(WorkerOptions options) {
    auto created = Worker::Create(std::move(options), registry_);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    worker_ = std::move(*created);
    thread_ = std::thread([this] { summary_ = worker_->Run(); });
  }

  WorkerSummary Join() {
    thread_.join();
    return summary_;
  }

  // Starts a worker and completes the handshake.
  void StartAndConnect(std::vector<std::string> roles, uint32_t slots = 2) {
    Start(Options(std::move(roles), slots));
    ASSERT_TRUE(coordinator_.AcceptHello());
  }

  TempDir temp_;
  FakeCoordinator coordinator_;
  worker::RoleRegistry registry_;
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
  WorkerSummary summary_;
};

TEST_F(WorkerSessionTest, HelloDescribesTheWorker) {
  Start(Options({"sleep", "noop"}, 3));
  auto hello = coordinator_.AcceptHello();
  ASSERT_TRUE(hello);
  const wire::Hello& body = hello->envelope.hello();
  EXPECT_EQ(body.worker_id(), "test-worker");
  EXPECT_EQ(body.protocol_version(), kProtocolVersion);
  EXPECT_EQ(hello->envelope.protocol_version(), kProtocolVersion);
  ASSERT_EQ(body.roles_size(), 2);
  EXPECT_EQ(body.roles(0), "sleep");
  EXPECT_EQ(body.device(), "cpu");
  EXPECT_EQ(body.slots(), 3u);
  EXPECT_EQ(body.hostname(), "testhost");
  EXPECT_FALSE(body.capabilities().shared_filesystem());
  EXPECT_EQ(body.capabilities().software_version(), "test");
  EXPECT_TRUE(body.running().empty());
}

TEST_F(WorkerSessionTest, SleepTaskReportsProgressAndResultWhileHeartbeatsContinue) {
  StartAndConnect({"sleep"});
  coordinator_.ClearLog();
  const auto assigned = SteadyClock::now();
  coordinator_.Assign("7", 1, "sleep", R"({"ms": 1200})");
  auto result = coordinator_.WaitForResult("7", 1, milliseconds(5000));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok()) << result->error().message();
  EXPECT_FALSE(result->has_error());
  EXPECT_GE(result->duration_ms(), 1200u);
  EXPECT_EQ(result->metrics().at("slept_ms"), 1200.0);

  // Heartbeats kept coming from the IO thread while the task ran, listing the lease.
  std::vector<Received> heartbeats = coordinator_.LogOf(Body::kHeartbeat);
  EXPECT_GE(heartbeats.size(), 8u);
  size_t listing_task = 0;
  for (const Received& h : heartbeats) {
    const wire::Heartbeat& hb = h.envelope.heartbeat();
    EXPECT_EQ(hb.sender_id(), "test-worker");
    if (hb.running_size() == 1 && hb.running(0).task_id() == "7") {
      ++listing_task;
      EXPECT_EQ(hb.free_slots(), 1u);
      EXPECT_DOUBLE_EQ(hb.load(), 0.5);
    }
  }
  EXPECT_GE(listing_task, 8u);

  // Progress is rate-limited (the role reports every 20 ms) and the last report arrives.
  std::vector<Received> progress = coordinator_.LogOf(Body::kProgress);
  ASSERT_GE(progress.size(), 2u);
  EXPECT_LE(progress.size(), 5u);
  for (size_t i = 1; i + 1 < progress.size(); ++i) {
    EXPECT_GE(progress[i].at - progress[i - 1].at, milliseconds(400));
  }
  EXPECT_DOUBLE_EQ(progress.back().envelope.progress().fraction(), 1.0);
  EXPECT_EQ(progress.back().envelope.progress().task_id(), "7");
  EXPECT_LT(progress.front().at - assigned, milliseconds(500));

  // After the result, the lease is gone from the heartbeats.
  auto next = coordinator_.WaitFor(Body::kHeartbeat, milliseconds(1000));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->envelope.heartbeat().running_size(), 0);
  EXPECT_EQ(next->envelope.heartbeat().free_slots(), 2u);
}

TEST_F(WorkerSessionTest, FailRoleFailsRetryablyThenSucceeds) {
  StartAndConnect({"fail"});
  coordinator_.Assign("3", 1, "fail", R"({"times": 1, "code": "UNAVAILABLE", "message": "flaky"})");
  auto first = coordinator_.WaitForResult("3", 1, milliseconds(3000));
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->ok());
  ASSERT_TRUE(first->has_error());
  EXPECT_EQ(first->error().code(), wire::Error::UNAVAILABLE);
  EXPECT_TRUE(first->error().retryable());
  EXPECT_NE(first->error().message().find("flaky"), std::string::npos);

  coordinator_.Assign("3", 2, "fail", R"({"times": 1, "code": "UNAVAILABLE", "message": "flaky"})");
  auto second = coordinator_.WaitForResult("3", 2, milliseconds(3000));
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->ok());

  coordinator_.Assign("4", 1, "fail", R"({"code": "INTERNAL"})");
  auto terminal = coordinator_.WaitForResult("4", 1, milliseconds(3000));
  ASSERT_TRUE(terminal);
  EXPECT_EQ(terminal->error().code(), wire::Error::INTERNAL);
  EXPECT_FALSE(terminal->error().retryable());

  coordinator_.Assign("5", 1, "fail", R"({"times": "many"})");
  auto bad_params = coordinator_.WaitForResult("5", 1, milliseconds(3000));
  ASSERT_TRUE(bad_params);
  EXPECT_EQ(bad_params->error().code(), wire::Error::INVALID_ARGUMENT);
  EXPECT_FALSE(bad_params->error().retryable());
}

TEST_F(WorkerSessionTest, SilenceMakesTheWorkerReconnectAndResendRecentResults) {
  StartAndConnect({"noop", "sleep"});
  const std::string first_identity = coordinator_.peer();
  coordinator_.Assign("1", 1, "noop", "{}");
  auto done = coordinator_.WaitForResult("1", 1, milliseconds(3000));
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->ok());
  coordinator_.Assign("2", 1, "sleep", R"({"ms": 20000})");
  ASSERT_TRUE(coordinator_.WaitFor(Body::kProgress, milliseconds(2000)));

  // The coordinator goes quiet: after liveness x interval (5 x 100 ms) the worker says hello
  // again on a new connection, listing the task it still runs and then the finished task whose
  // result it is about to send again (so a restarted coordinator keeps that lease for it).
  coordinator_.set_silent(true);
  const auto silent_from = SteadyClock::now();
  auto hello = coordinator_.WaitFor(Body::kHello, milliseconds(5000));
  ASSERT_TRUE(hello);
  EXPECT_GE(SteadyClock::now() - silent_from, milliseconds(400));
  EXPECT_NE(hello->identity, first_identity);
  ASSERT_EQ(hello->envelope.hello().running_size(), 2);
  EXPECT_EQ(hello->envelope.hello().running(0).task_id(), "2");
  EXPECT_EQ(hello->envelope.hello().running(0).attempt(), 1u);
  EXPECT_EQ(hello->envelope.hello().running(1).task_id(), "1");
  EXPECT_EQ(hello->envelope.hello().running(1).attempt(), 1u);

  // After the new ack, the result sent on the old connection comes again.
  coordinator_.set_silent(false);
  coordinator_.ClearLog();
  wire::Envelope ack;
  ack.mutable_hello_ack()->set_coordinator_id("restarted-coordinator");
  ack.mutable_hello_ack()->set_protocol_version(kProtocolVersion);
  ack.mutable_hello_ack()->set_heartbeat_interval_ms(100);
  ack.mutable_hello_ack()->set_heartbeat_liveness(5);
  coordinator_.Send(hello->identity, ack);
  coordinator_.set_peer(hello->identity);
  auto resent = coordinator_.WaitForResult("1", 1, milliseconds(2000));
  ASSERT_TRUE(resent);
  EXPECT_TRUE(resent->ok());

  // The task kept running across the reconnect; cancelling it frees the slot without a result.
  auto heartbeat = coordinator_.WaitFor(Body::kHeartbeat, milliseconds(1000));
  ASSERT_TRUE(heartbeat);
  ASSERT_EQ(heartbeat->envelope.heartbeat().running_size(), 1);
  coordinator_.Cancel("2", 1);
  EXPECT_FALSE(coordinator_.WaitForResult("2", 1, milliseconds(500)));
  auto after_cancel = coordinator_.WaitFor(Body::kHeartbeat, milliseconds(1000));
  ASSERT_TRUE(after_cancel);
  EXPECT_EQ(after_cancel->envelope.heartbeat().running_size(), 0);
  EXPECT_EQ(after_cancel->envelope.heartbeat().free_slots(), 2u);
}

TEST_F(WorkerSessionTest, UnansweredHelloIsRetriedOnNewConnections) {
  Start(Options({"noop"}));
  auto first = coordinator_.WaitFor(Body::kHello, milliseconds(3000));
  ASSERT_TRUE(first);
  // No ack: after 3 x 100 ms a new connection says hello again, and again.
  auto second = coordinator_.WaitFor(Body::kHello, milliseconds(3000));
  ASSERT_TRUE(second);
  EXPECT_NE(second->identity, first->identity);
  EXPECT_GE(second->at - first->at, milliseconds(300));
  ASSERT_TRUE(coordinator_.AcceptHello(milliseconds(3000)));
  coordinator_.Assign("1", 1, "noop", "");
  auto result = coordinator_.WaitForResult("1", 1, milliseconds(3000));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok());
}

TEST_F(WorkerSessionTest, GarbageFromTheCoordinatorIsDropped) {
  StartAndConnect({"noop"});
  const std::string peer = coordinator_.peer();
  coordinator_.SendRaw(peer, {"", "this is not a protobuf \xff\xfe"});
  coordinator_.SendRaw(peer, {"only one frame"});
  coordinator_.SendRaw(peer, {"not-empty", "payload"});
  coordinator_.SendRaw(peer, {"", "", ""});
  coordinator_.SendRaw(peer, {"", ""});
  wire::Envelope no_body;
  coordinator_.Send(peer, no_body);
  wire::Envelope bad_attempt;
  bad_attempt.mutable_task_assign()->set_task_id("9");
  bad_attempt.mutable_task_assign()->set_attempt(0);
  bad_attempt.mutable_task_assign()->set_role("noop");
  bad_attempt.mutable_task_assign()->set_stage("s");
  coordinator_.Send(peer, bad_attempt);
  wire::Envelope escaping_path;
  wire::TaskAssign* assign = escaping_path.mutable_task_assign();
  assign->set_task_id("10");
  assign->set_attempt(1);
  assign->set_role("noop");
  assign->set_stage("s");
  assign->add_expected_outputs()->set_name("x");
  assign->mutable_expected_outputs(0)->set_path("../../etc/passwd");
  coordinator_.Send(peer, escaping_path);
  wire::Envelope other_version;
  other_version.mutable_heartbeat()->set_sender_id("c");
  coordinator_.Send(peer, other_version, kProtocolVersion + 7);
  wire::Envelope not_for_workers;
  not_for_workers.mutable_status_request();
  coordinator_.Send(peer, not_for_workers);

  // Still serving: the next valid task runs, and nothing ran for the invalid ones.
  coordinator_.Assign("11", 1, "noop", "{}");
  auto result = coordinator_.WaitForResult("11", 1, milliseconds(3000));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok());
  EXPECT_TRUE(coordinator_.LogOf(Body::kTaskResult).size() == 1);

  worker_->RequestDrain(SIGTERM);
  WorkerSummary summary = Join();
  EXPECT_EQ(summary.exit_code, 0);
  EXPECT_GE(summary.frames_dropped, 9u);
  EXPECT_EQ(summary.tasks_run, 1u);
}

TEST_F(WorkerSessionTest, UnknownRoleAndFullSlotsAreRefusedAtOnce) {
  StartAndConnect({"sleep"}, 1);
  coordinator_.Assign("1", 1, "noop", "{}");  // registered, but not one of this worker's roles
  auto unknown = coordinator_.WaitForResult("1", 1, milliseconds(2000));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->error().code(), wire::Error::FAILED_PRECONDITION);
  EXPECT_FALSE(unknown->error().retryable());
  EXPECT_NE(unknown->error().message().find("sleep"), std::string::npos);

  coordinator_.Assign("2", 1, "sleep", R"({"ms": 20000})");
  coordinator_.Assign("3", 1, "sleep", R"({"ms": 10})");
  auto full = coordinator_.WaitForResult("3", 1, milliseconds(2000));
  ASSERT_TRUE(full);
  EXPECT_EQ(full->error().code(), wire::Error::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(full->error().retryable());

  // A duplicate assignment of a running lease is ignored rather than run twice.
  coordinator_.Assign("2", 1, "sleep", R"({"ms": 20000})");
  EXPECT_FALSE(coordinator_.WaitForResult("2", 1, milliseconds(300)));
  coordinator_.Cancel("2", 1);
}

TEST_F(WorkerSessionTest, DeadlineEndsTheTaskWithDeadlineExceeded) {
  StartAndConnect({"sleep"});
  coordinator_.Assign("1", 1, "sleep", R"({"ms": 10000})", /*deadline_ms=*/150);
  auto result = coordinator_.WaitForResult("1", 1, milliseconds(3000));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->error().code(), wire::Error::DEADLINE_EXCEEDED);
  EXPECT_TRUE(result->error().retryable());
  EXPECT_GE(result->duration_ms(), 100u);
  EXPECT_LT(result->duration_ms(), 1000u);
}

TEST_F(WorkerSessionTest, ParallelSlotsRunTasksAtOnce) {
  StartAndConnect({"sleep"}, 4);
  const auto start = SteadyClock::now();
  for (int i = 1; i <= 4; ++i) coordinator_.Assign(std::to_string(i), 1, "sleep", R"({"ms": 400})");
  for (int i = 1; i <= 4; ++i) {
    auto result = coordinator_.WaitForResult(std::to_string(i), 1, milliseconds(3000));
    ASSERT_TRUE(result) << i;
    EXPECT_TRUE(result->ok());
  }
  EXPECT_LT(SteadyClock::now() - start, milliseconds(1200));
}

TEST_F(WorkerSessionTest, CoordinatorDisconnectEndsTheWorker) {
  StartAndConnect({"sleep"});
  coordinator_.Assign("1", 1, "sleep", R"({"ms": 20000})");
  ASSERT_TRUE(coordinator_.WaitFor(Body::kProgress, milliseconds(2000)));
  coordinator_.Disconnect(/*draining=*/false, "run finished");
  WorkerSummary summary = Join();
  EXPECT_EQ(summary.exit_code, 0);
  EXPECT_NE(summary.reason.find("run finished"), std::string::npos);
  EXPECT_FALSE(coordinator_.WaitForResult("1", 1, milliseconds(200)));
}

TEST_F(WorkerSessionTest, DrainingDisconnectFinishesRunningTasksFirst) {
  StartAndConnect({"sleep", "noop"});
  coordinator_.Assign("1", 1, "sleep", R"({"ms": 300})");
  ASSERT_TRUE(coordinator_.WaitFor(Body::kProgress, milliseconds(2000)));
  coordinator_.Disconnect(/*draining=*/true, "run finishing");
  coordinator_.Assign("2", 1, "noop", "{}");
  auto refused = coordinator_.WaitForResult("2", 1, milliseconds(2000));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error().code(), wire::Error::UNAVAILABLE);
  auto result = coordinator_.WaitForResult("1", 1, milliseconds(3000));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok());
  auto goodbye = coordinator_.WaitFor(Body::kDisconnect, milliseconds(2000));
  ASSERT_TRUE(goodbye);
  EXPECT_FALSE(goodbye->envelope.disconnect().draining());
  EXPECT_EQ(Join().exit_code, 0);
}

TEST_F(WorkerSessionTest, DrainRequestFinishesTasksThenSaysGoodbye) {
  StartAndConnect({"sleep"});
  coordinator_.Assign("1", 1, "sleep", R"({"ms": 400})");
  ASSERT_TRUE(coordinator_.WaitFor(Body::kProgress, milliseconds(2000)));
  coordinator_.ClearLog();
  worker_->RequestDrain(SIGTERM);
  auto draining = coordinator_.WaitFor(Body::kDisconnect, milliseconds(3000));
  ASSERT_TRUE(draining);
  EXPECT_TRUE(draining->envelope.disconnect().draining());
  EXPECT_EQ(draining->envelope.disconnect().reason(), "SIGTERM");
  ASSERT_TRUE(coordinator_.WaitForResult("1", 1, milliseconds(3000)));
  auto goodbye = coordinator_.WaitFor(Body::kDisconnect, milliseconds(3000));
  ASSERT_TRUE(goodbye);
  EXPECT_FALSE(goodbye->envelope.disconnect().draining());
  WorkerSummary summary = Join();
  EXPECT_EQ(summary.exit_code, 0);
  EXPECT_EQ(summary.tasks_succeeded, 1u);

  // In order: Disconnect(draining), the result, Disconnect(leaving).
  std::vector<Body> order;
  for (const Received& r : coordinator_.log()) {
    if (r.envelope.body_case() == Body::kDisconnect || r.envelope.body_case() == Body::kTaskResult)
      order.push_back(r.envelope.body_case());
  }
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], Body::kDisconnect);
  EXPECT_EQ(order[1], Body::kTaskResult);
  EXPECT_EQ(order[2], Body::kDisconnect);
}

TEST_F(WorkerSessionTest, RefusalEndsTheWorkerWithExitOne) {
  Start(Options({"noop"}));
  auto hello = coordinator_.WaitFor(Body::kHello, milliseconds(3000));
  ASSERT_TRUE(hello);
  wire::Envelope refused;
  refused.mutable_refused()->set_code(wire::Refused::DUPLICATE_WORKER);
  refused.mutable_refused()->set_reason("test-worker is connected from another host");
  coordinator_.Send(hello->identity, refused);
  WorkerSummary summary = Join();
  EXPECT_EQ(summary.exit_code, 1);
  EXPECT_NE(summary.reason.find("test-worker"), std::string::npos);
  EXPECT_NE(summary.reason.find("--id"), std::string::npos);
}

TEST_F(WorkerSessionTest, ShuttingDownRefusalEndsTheWorkerWithExitZero) {
  Start(Options({"noop"}));
  auto hello = coordinator_.WaitFor(Body::kHello, milliseconds(3000));
  ASSERT_TRUE(hello);
  wire::Envelope refused;
  refused.mutable_refused()->set_code(wire::Refused::SHUTTING_DOWN);
  coordinator_.Send(hello->identity, refused);
  EXPECT_EQ(Join().exit_code, 0);
}

TEST(WorkerCreateTest, RefusesUnknownRolesAndBadIds) {
  worker::RoleRegistry registry;
  ASSERT_TRUE(worker::RegisterTestRoles(registry).ok());
  TempDir temp;
  WorkerOptions options;
  options.connect = "tcp://127.0.0.1:1";
  options.worker_id = "w";
  options.roles = {"noop", "nope"};
  options.scratch_dir = temp.path();
  auto unknown = Worker::Create(options, registry);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("nope"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("write_artifact"), std::string::npos);

  options.roles = {"noop"};
  options.worker_id = "bad\nid";
  EXPECT_FALSE(Worker::Create(options, registry).ok());
}

}  // namespace
}  // namespace clisc::worker_test
