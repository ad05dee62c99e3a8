// `clisc keygen` through the real binary: the files it writes, their modes, --force, and
// --print-public agreeing with the .pub file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class KeygenCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("clisc_keygen_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  RunResult Run(const std::string& args) {
    const fs::path out = dir_ / "stdout", err = dir_ / "stderr";
    const std::string command =
        std::string(CLISC_BINARY) + " keygen " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    RunResult result;
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    result.out = ReadAll(out);
    result.err = ReadAll(err);
    return result;
  }

  // The key of the "public = <key>" line of a .pub file.
  static std::string PublicLineOf(const fs::path& pub) {
    std::istringstream in(ReadAll(pub));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("public = ", 0) == 0) return line.substr(9);
    }
    return "";
  }

  static mode_t ModeOf(const fs::path& path) {
    struct stat info {};
    EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
    return info.st_mode & 07777;
  }

  fs::path dir_;
};

TEST_F(KeygenCliTest, WritesKeyPairAndPrintsPublicKey) {
  const fs::path stem = dir_ / "keys" / "worker1";
  const RunResult run = Run("--out " + stem.string());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const fs::path key = dir_ / "keys" / "worker1.key", pub = dir_ / "keys" / "worker1.pub";
  ASSERT_TRUE(fs::exists(key));
  ASSERT_TRUE(fs::exists(pub));
  EXPECT_EQ(ModeOf(key), 0600u);
  const std::string public_key = PublicLineOf(pub);
  EXPECT_EQ(public_key.size(), 40u);
  EXPECT_EQ(Trimmed(run.out), public_key);
  EXPECT_NE(ReadAll(key).find("secret = "), std::string::npos);
  EXPECT_EQ(ReadAll(pub).find("secret"), std::string::npos);
}

TEST_F(KeygenCliTest, RefusesToOverwriteWithoutForce) {
  const fs::path stem = dir_ / "coordinator";
  ASSERT_EQ(Run("--out " + stem.string()).exit_code, 0);
  const std::string original = ReadAll(dir_ / "coordinator.key");

  const RunResult again = Run("--out " + stem.string());
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("coordinator.key"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(ReadAll(dir_ / "coordinator.key"), original);

  const RunResult forced = Run("--out " + stem.string() + " --force");
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(ReadAll(dir_ / "coordinator.key"), original);
  EXPECT_EQ(ModeOf(dir_ / "coordinator.key"), 0600u);
  EXPECT_EQ(Trimmed(forced.out), PublicLineOf(dir_ / "coordinator.pub"));
}

TEST_F(KeygenCliTest, PrintPublicMatchesPubFile) {
  // --out also accepts the .key name itself.
  ASSERT_EQ(Run("--out " + (dir_ / "node.key").string()).exit_code, 0);
  const std::string expected = PublicLineOf(dir_ / "node.pub");
  ASSERT_FALSE(expected.empty());
  for (const char* file : {"node.key", "node.pub"}) {
    const RunResult run = Run("--print-public " + (dir_ / file).string());
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(Trimmed(run.out), expected) << file;
  }
}

TEST_F(KeygenCliTest, PrintPublicRefusesLooseSecretKeyFile) {
  ASSERT_EQ(Run("--out " + (dir_ / "loose").string()).exit_code, 0);
  const fs::path key = dir_ / "loose.key";
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  const RunResult run = Run("--print-public " + key.string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(run.out.empty());
  EXPECT_NE(run.err.find(key.string()), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("chmod 600"), std::string::npos) << run.err;
}

TEST_F(KeygenCliTest, UsageErrorsAndHelp) {
  EXPECT_EQ(Run("").exit_code, 2);
  EXPECT_EQ(Run("--out a --print-public b").exit_code, 2);
  EXPECT_EQ(Run("--print-public " + (dir_ / "absent.key").string()).exit_code, 1);
  const RunResult help = Run("--help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* text : {"--curve-key", "--curve-allow", "--curve-server-key", "chmod", ".pub"}) {
    EXPECT_NE(help.out.find(text), std::string::npos) << text;
  }
}

}  // namespace
