// `clisc status` through the real binary: each source in turn, the fallbacks, and the exit
// status when nothing answers.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/http_status_server.h"
#include "coordinator/ledger.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Child {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A port nothing listens on (bound once, then released).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class StatusCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("clisc_status_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    closed_ = "127.0.0.1:" + std::to_string(ClosedPort());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `clisc status ARGS` without CLISC_REDIS_URL; with `interrupt_after`, sends SIGINT then.
  Child Run(const std::vector<std::string>& args,
            std::optional<std::chrono::milliseconds> interrupt_after = std::nullopt) {
    fs::path out = dir_ / "stdout";
    fs::path err = dir_ / "stderr";
    pid_t pid = ::fork();
    if (pid == 0) {
      ::unsetenv("CLISC_REDIS_URL");
      int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      std::vector<std::string> argv_strings = {CLISC_BINARY, "--log-level", "warn", "status"};
      argv_strings.insert(argv_strings.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (std::string& s : argv_strings) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execv(CLISC_BINARY, argv.data());
      ::_exit(127);
    }
    if (interrupt_after.has_value()) {
      std::this_thread::sleep_for(*interrupt_after);
      ::kill(pid, SIGINT);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    Child child;
    child.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    child.out = ReadFile(out);
    child.err = ReadFile(err);
    return child;
  }

  // A ledger with one run of three tasks: one succeeded, one leased to w1, one pending.
  std::string MakeLedger() {
    std::string path = (dir_ / "ledger.db").string();
    auto ledger = Ledger::Open(path, &clock_);
    EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
    auto run = (*ledger)->OpenRun("brats-test", "a: 1\n", "fp");
    EXPECT_TRUE(run.ok());
    std::vector<TaskSpec> specs;
    for (const char* c : {"c1", "c2", "c3"}) {
      TaskSpec s;
      s.task_key = std::string("prep/") + c;
      s.stage = "prep";
      s.case_id = c;
      s.role = "cpu";
      specs.push_back(s);
    }
    auto planned = (*ledger)->UpsertTasks(*run, specs);
    EXPECT_TRUE(planned.ok());
    WorkerRecord worker;
    worker.id = "w1";
    worker.roles = {"cpu"};
    EXPECT_TRUE((*ledger)->UpsertWorker(worker).ok());
    auto first = (*ledger)->Lease({planned->task_ids[0], "w1", std::nullopt});
    EXPECT_TRUE(first.ok());
    EXPECT_TRUE((*ledger)->Complete({planned->task_ids[0], first->attempt, "w1", "{}", {}}).ok());
    EXPECT_TRUE((*ledger)->Lease({planned->task_ids[1], "w1", std::nullopt}).ok());
    return path;
  }

  FakeClock clock_;
  fs::path dir_;
  std::string closed_;
};

TEST_F(StatusCliTest, LedgerJsonPrintsTheDocument) {
  std::string ledger = MakeLedger();
  Child child = Run({"--ledger", ledger, "--json", "--coordinator", closed_});
  ASSERT_EQ(child.exit_code, 0) << child.err;
  json doc = json::parse(child.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << child.out;
  EXPECT_EQ(doc["source"], "ledger");
  EXPECT_EQ(doc["run"]["name"], "brats-test");
  EXPECT_EQ(doc["totals"]["succeeded"], 1);
  EXPECT_EQ(doc["totals"]["leased"], 1);
  EXPECT_EQ(doc["stages"][0]["stage"], "prep");
  EXPECT_EQ(doc["workers"][0]["running"][0]["task_key"], "prep/c2");
  EXPECT_EQ(doc["reader"]["address"], ledger);
  // Which source answered, and why the coordinator did not, goes to stderr only.
  EXPECT_NE(child.err.find("from ledger " + ledger), std::string::npos) << child.err;
  EXPECT_NE(child.err.find("coordinator " + closed_), std::string::npos) << child.err;
}

TEST_F(StatusCliTest, LedgerTextAndNamedRun) {
  std::string ledger = MakeLedger();
  Child child = Run({"--ledger", ledger, "--coordinator", closed_, "--run", "brats-test"});
  ASSERT_EQ(child.exit_code, 0) << child.err;
  EXPECT_NE(child.out.find("run brats-test  running"), std::string::npos) << child.out;
  EXPECT_NE(child.out.find("1/3"), std::string::npos) << child.out;
  EXPECT_NE(child.out.find("(no live worker view)"), std::string::npos) << child.out;

  Child missing = Run({"--ledger", ledger, "--coordinator", closed_, "--run", "other"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no run named other"), std::string::npos) << missing.err;
}

TEST_F(StatusCliTest, NoSourceExitsOneListingWhatWasTried) {
  Child child = Run({"--coordinator", closed_, "--redis", "redis://" + closed_});
  EXPECT_EQ(child.exit_code, 1);
  EXPECT_TRUE(child.out.empty()) << child.out;
  EXPECT_NE(child.err.find("redis redis://" + closed_), std::string::npos) << child.err;
  EXPECT_NE(child.err.find("coordinator " + closed_), std::string::npos) << child.err;
  EXPECT_NE(child.err.find("ledger"), std::string::npos) << child.err;

  Child missing_file = Run({"--coordinator", closed_, "--ledger", (dir_ / "none.db").string()});
  EXPECT_EQ(missing_file.exit_code, 1);
  EXPECT_NE(missing_file.err.find("none.db does not exist"), std::string::npos) << missing_file.err;
}

TEST_F(StatusCliTest, CoordinatorAnswersBeforeTheLedger) {
  json served = {{"schema", 1},
                 {"generated_ms", 1},
                 {"source", "coordinator"},
                 {"run", {{"name", "live-run"}, {"state", "running"}, {"created_ms", 0}}},
                 {"stages", json::array()}};
  auto server = HttpStatusServer::Start("127.0.0.1:0", [&](std::string_view, std::string_view p) {
    if (p != "/api/status") return HttpResponse{404, "", "not found"};
    return HttpResponse{200, "application/json", served.dump()};
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::string ledger = MakeLedger();
  Child child = Run({"--coordinator", (*server)->endpoint(), "--ledger", ledger, "--json"});
  ASSERT_EQ(child.exit_code, 0) << child.err;
  json doc = json::parse(child.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << child.out;
  EXPECT_EQ(doc["run"]["name"], "live-run");
  EXPECT_EQ(doc["source"], "coordinator");
  EXPECT_NE(child.err.find("from coordinator " + (*server)->endpoint()), std::string::npos)
      << child.err;

  // A coordinator serving another run than the one asked for falls through to the ledger.
  Child named = Run({"--coordinator", (*server)->endpoint(), "--ledger", ledger, "--json", "--run",
                     "brats-test"});
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_NE(named.err.find("serves run live-run, not brats-test"), std::string::npos) << named.err;
  EXPECT_EQ(json::parse(named.out, nullptr, false)["source"], "ledger");
}

TEST_F(StatusCliTest, WatchPrintsOneDocumentPerLineUntilInterrupted) {
  std::string ledger = MakeLedger();
  Child child = Run({"--ledger", ledger, "--coordinator", closed_, "--json", "--watch", "0.2"},
                    std::chrono::milliseconds(1200));
  EXPECT_EQ(child.exit_code, 0) << child.err;
  std::istringstream lines(child.out);
  int documents = 0;
  for (std::string line; std::getline(lines, line);) {
    json doc = json::parse(line, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << line;
    EXPECT_EQ(doc["run"]["name"], "brats-test");
    ++documents;
  }
  EXPECT_GE(documents, 2) << child.out;
}

TEST_F(StatusCliTest, HelpAndUsageErrors) {
  Child help = Run({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* option :
       {"--json", "--watch", "--run", "--redis", "--coordinator", "--ledger", "CLISC_REDIS_URL"}) {
    EXPECT_NE(help.out.find(option), std::string::npos) << option;
  }
  EXPECT_EQ(Run({"--coordinator", "nonsense"}).exit_code, 2);
  EXPECT_EQ(Run({"--watch", "0"}).exit_code, 2);
}

}  // namespace
}  // namespace clisc
