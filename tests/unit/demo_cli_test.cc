// `clisc demo` through the real binary: it prepares a synthetic dataset end to end and says
// plainly which method stages this build does not have.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DemoCliTest, PreparesSyntheticDataAndNamesMissingStages) {
  if (!std::filesystem::exists("/usr/share/mricron/templates/ch2bet.nii.gz")) {
    if (std::getenv("CLISC_REQUIRE_FIXTURES")) FAIL() << "mricron-data template missing";
    GTEST_SKIP() << "mricron-data is not installed (Colin27 template missing)";
  }
  const auto dir = std::filesystem::path(::testing::TempDir()) /
                   ("clisc_demo_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto out = dir / "stdout";
  const std::string command = std::string(CLISC_BINARY) + " demo --cases 3 --workdir " +
                              (dir / "run").string() + " >" + out.string() + " 2>/dev/null";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string text = ReadAll(out);
  EXPECT_NE(text.find("3 cases: 3 accepted, 0 rejected"), std::string::npos) << text;
  EXPECT_NE(text.find("not built into this version"), std::string::npos) << text;
  for (const char* id : {"BraTS20_Training_001", "BraTS20_Training_002", "BraTS20_Training_003"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / "run" / "preprocessed" / "crop" /
                                        (std::string(id) + ".json")))
        << id;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
