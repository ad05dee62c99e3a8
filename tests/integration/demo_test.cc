// `clisc demo` through the real binary, shrunk by --set to a minute of CPU: it synthesizes the
// dataset, runs the whole method with local workers, prints progress and the results table, and
// writes the report. Run again on the same workdir, it reuses the dataset and redoes nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/integration/runtime_harness.h"

namespace clisc::testutil {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> DemoCommand(const std::filesystem::path& workdir) {
  std::vector<std::string> argv = {CLISC_BINARY, "demo", "--workdir", workdir.string(),
                                   "--cases",    "6",    "--workers", "2"};
  for (const char* set :
       {"classifier.epochs=1", "classifier.image_size=64", "unet.feature_channels=[4,8,16]",
        "train.max_iterations=10", "train.checkpoint_every=5", "s3f.rounds=1",
        "baselines.supervised=false", "data.splits.train_fraction=0.5",
        "data.splits.valid_fraction=0.0", "data.splits.test_fraction=0.5"}) {
    argv.push_back("--set");
    argv.push_back(set);
  }
  return argv;
}

TEST(DemoTest, RunsTheWholeMethodWritesTheReportAndResumes) {
  if (!std::filesystem::exists("/usr/share/mricron/templates/ch2bet.nii.gz")) {
    if (std::getenv("CLISC_REQUIRE_FIXTURES")) FAIL() << "mricron-data template missing";
    GTEST_SKIP() << "mricron-data is not installed (Colin27 template missing)";
  }
  Scratch dir("clisc-demo");
  ChildProcess demo(DemoCommand(dir / "demo"), dir / "demo.log");
  auto status = demo.Wait(10min);
  ASSERT_TRUE(status.has_value()) << demo.Log();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << demo.Log();
  const std::string log = demo.Log();
  EXPECT_NE(log.find("synthesizing 6 half-size cases"), std::string::npos) << log;
  EXPECT_NE(log.find("stage train_unet_r1 done: 1/1 succeeded"), std::string::npos) << log;
  EXPECT_NE(log.find("the run succeeded"), std::string::npos) << log;
  EXPECT_NE(log.find("* final round"), std::string::npos) << log;  // the results table
  EXPECT_NE(log.find("SAM pseudo-label Dice"), std::string::npos) << log;

  const std::filesystem::path run = dir / "demo" / "run";
  for (const char* file : {"report/index.html", "report/metrics.csv", "report/summary.json",
                           "report/data/evaluation.json", "config.yaml", "plan.json", "run.json"}) {
    EXPECT_TRUE(std::filesystem::exists(run / file)) << file;
  }
  std::ifstream summary_file(run / "report" / "summary.json");
  nlohmann::json summary = nlohmann::json::parse(summary_file, nullptr, false);
  ASSERT_TRUE(summary.is_object());
  std::ifstream config(run / "config.yaml");
  std::string config_text((std::istreambuf_iterator<char>(config)), {});
  EXPECT_NE(config_text.find("backend: heuristic"), std::string::npos);

  // Again: the dataset is reused (same files, same identity keys) and every task is done.
  ChildProcess again(DemoCommand(dir / "demo"), dir / "again.log");
  status = again.Wait(3min);
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << again.Log();
  const std::string again_log = again.Log();
  EXPECT_NE(again_log.find("reusing the synthetic dataset"), std::string::npos) << again_log;
  EXPECT_NE(again_log.find("resuming"), std::string::npos) << again_log;
  EXPECT_EQ(again_log.find("stage prep done"), std::string::npos)
      << "a finished stage was reported again:\n"
      << again_log;
}

TEST(DemoTest, RefusesTooFewCases) {
  Scratch dir("clisc-demo-args");
  ChildProcess demo({CLISC_BINARY, "demo", "--cases", "2", "--workdir", (dir / "w").string()},
                    dir / "demo.log");
  auto status = demo.Wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << demo.Log();
  EXPECT_NE(demo.Log().find("--cases must be at least 6"), std::string::npos) << demo.Log();
}

}  // namespace
}  // namespace clisc::testutil
