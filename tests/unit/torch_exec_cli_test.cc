// `clisc worker` with a role that runs networks re-executes itself as clisc-torch: through the
// real binary with CLISC_TORCH_BINARY naming a script that records its arguments, and the clear
// error (exit status 1) when clisc-torch is not there. Also FindTorchBinary on its own.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/torch_exec.h"

namespace clisc::cli {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string err;
};

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class TorchExecCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("clisc_torch_exec_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A stand-in for clisc-torch: writes $0 and each argument on its own line, exits 7.
  fs::path RecordingScript() {
    const fs::path script = dir_ / "fake-clisc-torch";
    std::ofstream(script) << "#!/bin/sh\n"
                             "out=\""
                          << (dir_ / "argv").string()
                          << "\"\n"
                             "printf '%s\\n' \"$0\" > \"$out\"\n"
                             "for a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$out\"; done\n"
                             "exit 7\n";
    fs::permissions(script, fs::perms::owner_all);
    return script;
  }

  RunResult Run(const std::string& env, const std::string& args) {
    const fs::path err = dir_ / "stderr";
    const std::string command =
        env + " " + CLISC_BINARY + " " + args + " >/dev/null 2>" + err.string();
    const int status = std::system(command.c_str());
    RunResult result;
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    result.err = ReadAll(err);
    return result;
  }

  fs::path dir_;
};

TEST_F(TorchExecCliTest, WorkerWithANetworkRoleRunsTorchBinaryWithTheSameArguments) {
  const fs::path script = RecordingScript();
  const RunResult run =
      Run("CLISC_TORCH_BINARY=" + script.string(),
          "--log-level warn worker --connect tcp://127.0.0.1:1 --roles noop,cam --slots 2 "
          "--id 'worker one'");
  // The script's exit status is the worker's: the process was replaced, not forked.
  EXPECT_EQ(run.exit_code, 7) << run.err;
  const std::vector<std::string> expected = {
      script.string(), "--log-level", "warn",    "worker", "--connect", "tcp://127.0.0.1:1",
      "--roles",       "noop,cam",    "--slots", "2",      "--id",      "worker one"};
  EXPECT_EQ(Lines(ReadAll(dir_ / "argv")), expected);
}

TEST_F(TorchExecCliTest, MissingTorchBinaryIsAClearError) {
  const fs::path absent = dir_ / "no-such-clisc-torch";
  const RunResult run = Run("CLISC_TORCH_BINARY=" + absent.string(),
                            "worker --connect tcp://127.0.0.1:1 --roles sam");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("role 'sam'"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("LibTorch"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(absent.string()), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("CLISC_TORCH_BINARY"), std::string::npos) << run.err;

  // A path that is there but cannot be executed.
  const fs::path not_executable = dir_ / "clisc-torch.txt";
  std::ofstream(not_executable) << "not a program\n";
  const RunResult second = Run("CLISC_TORCH_BINARY=" + not_executable.string(),
                               "worker --connect tcp://127.0.0.1:1 --roles sam");
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("not an executable file"), std::string::npos) << second.err;
}

TEST_F(TorchExecCliTest, RolesWithoutNetworksStayInThePlainBinary) {
  const fs::path script = RecordingScript();
  // noop is a test role: the worker starts here (and fails to parse a bad flag value) instead of
  // re-executing.
  const RunResult run = Run("CLISC_TORCH_BINARY=" + script.string(),
                            "worker --connect tcp://127.0.0.1:1 --roles noop --slots 0");
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("--slots"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(dir_ / "argv"));
}

TEST_F(TorchExecCliTest, FindTorchBinaryPrefersTheEnvironmentThenTheSiblingFile) {
  const fs::path self = dir_ / "bin" / "clisc";
  fs::create_directories(self.parent_path());
  auto found = FindTorchBinary(nullptr, self);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
  EXPECT_NE(found.status().message().find((dir_ / "bin" / "clisc-torch").string()),
            std::string::npos)
      << found.status().ToString();

  const fs::path sibling = dir_ / "bin" / "clisc-torch";
  std::ofstream(sibling) << "#!/bin/sh\n";
  fs::permissions(sibling, fs::perms::owner_all);
  found = FindTorchBinary("", self);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, sibling);

  const fs::path script = RecordingScript();
  found = FindTorchBinary(script.c_str(), self);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, script);

  found = FindTorchBinary((dir_ / "absent").c_str(), self);
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("CLISC_TORCH_BINARY="), std::string::npos);
}

TEST(FirstRoleNeedingTorchTest, FindsTheFirstInOrder) {
  const auto needs = [](std::string_view role) { return role == "cam" || role == "sam"; };
  EXPECT_EQ(FirstRoleNeedingTorch({"prep", "sam", "cam"}, needs), "sam");
  EXPECT_EQ(FirstRoleNeedingTorch({"prep", "reduce"}, needs), std::nullopt);
  EXPECT_EQ(FirstRoleNeedingTorch({}, needs), std::nullopt);
}

}  // namespace
}  // namespace clisc::cli
