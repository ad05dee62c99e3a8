// Hostile peers against a real coordinator process: a worker whose CurveZMQ key is not on the
// allow-list gets no work (while an allowed one finishes the run), and a storm of garbage,
// truncated, oversized, wrong-version and out-of-place frames neither crashes the coordinator
// nor stops a real worker from completing the run afterwards.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <random>
#include <thread>

#include "common/wire/curve_auth.h"
#include "common/wire/frame_codec.h"
#include "common/wire/router_framing.h"
#include "common/wire/zmq_socket.h"
#include "coordinator/http_get.h"
#include "tests/integration/runtime_harness.h"

namespace clisc::testutil {
namespace {

using namespace std::chrono_literals;

bool Exited0(const std::optional<int>& status) {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

TEST(RuntimeSecurityTest, WorkerWithUnknownCurveKeyGetsNoWork) {
  Scratch dir("clisc-curve");
  for (const char* name : {"coordinator", "allowed", "stranger"}) {
    StatusOr<CurveKeyPair> keys = GenerateCurveKeyPair();
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    ASSERT_TRUE(WriteCurveKeyFiles(dir / name, *keys).ok());
  }
  std::filesystem::create_directories(dir / "allow");
  std::filesystem::copy_file(dir / "allowed.pub", dir / "allow" / "allowed.pub");
  WriteJson(dir / "plan.json", SleepPlan(20, 10));
  const int port = PickFreePort();
  CoordinatorArgs args{dir.path(), port, "curve",
                       {"--http", "off", "--curve-key", (dir / "coordinator.key").string(),
                        "--curve-allow", (dir / "allow").string()}};
  ChildProcess coordinator;
  ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
  const std::vector<std::string> server_key = {"--curve-server-key",
                                               (dir / "coordinator.pub").string()};
  auto with_key = [&](const char* key) {
    std::vector<std::string> extra = server_key;
    extra.push_back("--curve-key");
    extra.push_back((dir / (std::string(key) + ".key")).string());
    return extra;
  };

  ChildProcess stranger;
  ASSERT_TRUE(
      stranger.Start(WorkerCommand(port, "stranger", "sleep", with_key("stranger")),
                     dir / "stranger.log"));
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(CountSucceeded(dir / "ledger.db", "curve"), 0);
  EXPECT_TRUE(coordinator.running()) << coordinator.Log();
  EXPECT_EQ(coordinator.Log().find("worker_hello worker=stranger"), std::string::npos)
      << coordinator.Log();

  ChildProcess allowed;
  ASSERT_TRUE(allowed.Start(WorkerCommand(port, "allowed", "sleep", with_key("allowed")),
                            dir / "allowed.log"));
  std::optional<int> exit = coordinator.Wait(60s);
  ASSERT_TRUE(Exited0(exit)) << coordinator.Log();
  EXPECT_EQ(CountSucceeded(dir / "ledger.db", "curve"), 20);
  // Every task went to the allowed worker; the stranger never registered.
  RealClock clock;
  StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open((dir / "ledger.db").string(), &clock);
  ASSERT_TRUE(ledger.ok());
  StatusOr<std::vector<WorkerRecord>> workers = (*ledger)->ListWorkers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ(workers->front().id, "allowed");
}

// Frames a confused or malicious peer might send, most of them invalid in a different way.
std::vector<std::vector<std::string>> HostileMessages(std::mt19937& random) {
  std::vector<std::vector<std::string>> out;
  auto bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(random() & 0xff);
    return s;
  };
  wire::Envelope hello = NewEnvelope(1);
  hello.mutable_hello()->set_worker_id("intruder");
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  hello.mutable_hello()->add_roles("sleep");
  hello.mutable_hello()->set_device("cpu");
  hello.mutable_hello()->set_slots(1);
  const std::string valid_hello = EncodeFrame(hello);
  wire::Envelope result = NewEnvelope(2);
  result.mutable_task_result()->set_task_id("1");
  result.mutable_task_result()->set_attempt(1);
  result.mutable_task_result()->set_ok(true);
  const std::string unknown_result = EncodeFrame(result);
  wire::Envelope old_version = hello;
  old_version.set_protocol_version(kProtocolVersion + 7);
  old_version.mutable_hello()->set_protocol_version(kProtocolVersion + 7);

  for (int i = 0; i < 3000; ++i) {
    switch (i % 10) {
      case 0:
        out.push_back({"", bytes(random() % 200)});  // garbage payload
        break;
      case 1: {  // a valid frame with flipped bytes
        std::string mutated = valid_hello;
        for (int k = 0; k < 3; ++k) mutated[random() % mutated.size()] ^= 1 << (random() % 8);
        out.push_back({"", mutated});
        break;
      }
      case 2:  // truncated
        out.push_back({"", valid_hello.substr(0, random() % valid_hello.size())});
        break;
      case 3:  // no delimiter, extra parts
        out.push_back({bytes(8), valid_hello, bytes(4)});
        break;
      case 4:
        out.push_back({"", EncodeFrame(old_version)});
        break;
      case 5:  // a result before any hello
        out.push_back({"", unknown_result});
        break;
      case 6:
        if (i % 100 == 6) out.push_back({"", bytes((size_t{2} << 20) + 17)});  // over 1 MiB
        break;
      case 7:
        out.push_back({"not empty", valid_hello});
        break;
      default:
        out.push_back({""});  // empty payload
        break;
    }
  }
  return out;
}

TEST(RuntimeSecurityTest, HostileFramesNeverStopTheCoordinator) {
  Scratch dir("clisc-hostile");
  WriteJson(dir / "plan.json", SleepPlan(30, 10));
  const int port = PickFreePort();
  const std::string http = "127.0.0.1:" + std::to_string(PickFreePort());
  // Some bit-flipped hellos are still valid hellos: those "workers" register, lease a task and
  // vanish, which costs attempts until their leases expire (short heartbeats, a large budget).
  CoordinatorArgs args{dir.path(), port, "hostile",
                       {"--http", http, "--heartbeat-ms", "200", "--max-attempts", "100"}};
  ChildProcess coordinator;
  ASSERT_TRUE(coordinator.Start(CoordinatorCommand(args), dir / "coordinator.log"));
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);

  StatusOr<std::shared_ptr<ZmqContext>> context = ZmqContext::Create(1);
  ASSERT_TRUE(context.ok());
  std::mt19937 random(7);
  for (int connection = 0; connection < 4; ++connection) {
    StatusOr<ZmqSocket> dealer = ZmqSocket::Open(*context, ZmqSocketType::kDealer);
    ASSERT_TRUE(dealer.ok());
    ASSERT_TRUE(dealer->Connect(endpoint).ok());
    for (const std::vector<std::string>& message : HostileMessages(random)) {
      // A full queue drops the message, which is fine for a flood.
      (void)dealer->Send(message);
    }
    std::this_thread::sleep_for(200ms);
  }
  // Raw TCP garbage that is not even ZMTP.
  for (int i = 0; i < 20; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      std::string junk(4096, '\0');
      for (char& c : junk) c = static_cast<char>(random() & 0xff);
      (void)!write(fd, junk.data(), junk.size());
    }
    close(fd);
  }
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(coordinator.running()) << coordinator.Log();
  StatusOr<std::string> metrics = HttpGet(http, "/metrics", 2000ms);
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  EXPECT_NE(metrics->find("clisc_frames_dropped_total"), std::string::npos) << *metrics;

  // A real worker still gets the whole run done.
  ChildProcess worker;
  ASSERT_TRUE(worker.Start(WorkerCommand(port, "honest", "sleep", {"--slots", "4"}),
                           dir / "worker.log"));
  std::optional<int> exit = coordinator.Wait(60s);
  ASSERT_TRUE(Exited0(exit)) << coordinator.Log();
  EXPECT_EQ(CountSucceeded(dir / "ledger.db", "hostile"), 30);
  nlohmann::json summary = nlohmann::json::parse(std::ifstream(dir / "summary.json"));
  EXPECT_GT(summary.value("frames_dropped", 0), 1000) << summary.dump();
}

}  // namespace
}  // namespace clisc::testutil
