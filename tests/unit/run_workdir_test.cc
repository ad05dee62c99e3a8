// The workdir of `clisc run`: one holder at a time, one dataset per workdir, a resume needs a run,
// and a damaged run.json is reported rather than overwritten. Progress lines: a finished stage is
// announced once, and not at all when it was finished before a resume.
#include "cli/run_workdir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "cli/run_progress.h"

namespace clisc::cli {
namespace {

class RunWorkdirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "clisc-workdir-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(RunWorkdirTest, ASecondHolderIsRefusedUntilTheFirstLetsGo) {
  {
    auto first = RunWorkdir::Open(dir_ / "w", false);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    auto second = RunWorkdir::Open(dir_ / "w", false);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(second.status().message().find("in use by another clisc run (pid " +
                                             std::to_string(getpid()) + ")"),
              std::string::npos)
        << second.status().ToString();
  }
  EXPECT_TRUE(RunWorkdir::Open(dir_ / "w", false).ok());
}

TEST_F(RunWorkdirTest, ResumeNeedsARunAndAWorkdirKeepsItsDataset) {
  auto none = RunWorkdir::Open(dir_ / "w", true);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no run to resume"), std::string::npos);
  {
    auto workdir = RunWorkdir::Open(dir_ / "w", false);
    ASSERT_TRUE(workdir.ok());
    EXPECT_FALSE(workdir->resuming());
    ASSERT_TRUE(workdir->RecordSession("/data/a", "c.yaml", "local").ok());
    ASSERT_TRUE(workdir->RecordSplits({"x"}, {}, {"y"}).ok());
    ASSERT_TRUE(workdir->RecordSessionEnd("the run succeeded").ok());
    std::ofstream(workdir->ledger()) << "";  // what a started run leaves
  }
  auto again = RunWorkdir::Open(dir_ / "w", true);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->resuming());
  EXPECT_EQ(again->recorded_data(), "/data/a");
  Status other = again->RecordSession("/data/b", "c.yaml", "local");
  EXPECT_EQ(other.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.message().find("holds a run on /data/a"), std::string::npos) << other.ToString();
  EXPECT_TRUE(again->RecordSession("/data/a", "d.yaml", "cluster").ok());
  std::ifstream in(dir_ / "w" / "run.json");
  nlohmann::json record = nlohmann::json::parse(in);
  ASSERT_EQ(record["sessions"].size(), 2u);
  EXPECT_EQ(record["sessions"][0]["outcome"], "the run succeeded");
  EXPECT_EQ(record["sessions"][1]["mode"], "cluster");
  EXPECT_EQ(record["splits"]["test"], nlohmann::json::array({"y"}));
}

TEST_F(RunWorkdirTest, ADamagedRunRecordIsReportedNotOverwritten) {
  std::filesystem::create_directories(dir_ / "w");
  std::ofstream(dir_ / "w" / "run.json") << "{not json";
  auto workdir = RunWorkdir::Open(dir_ / "w", false);
  ASSERT_FALSE(workdir.ok());
  EXPECT_EQ(workdir.status().code(), StatusCode::kDataLoss);
  std::ifstream in(dir_ / "w" / "run.json");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "{not json");
}

nlohmann::json StatusDoc(int prep_done, int prep_total, const std::string& running_message) {
  nlohmann::json worker = {{"running", nlohmann::json::array()}};
  if (!running_message.empty()) {
    worker["running"].push_back(
        {{"stage", "train_unet_r1"}, {"case_id", nullptr}, {"message", running_message}});
  }
  return {{"stages",
           {{{"stage", "prep"},
             {"total", prep_total},
             {"pending", prep_total - prep_done},
             {"leased", 0},
             {"succeeded", prep_done},
             {"failed", 0},
             {"blocked", 0}}}},
          {"totals", {{"total", 10}, {"succeeded", prep_done}}},
          {"workers", {worker}}};
}

TEST(RunProgressTest, AnnouncesAStageOnceAndShowsTheWorkersMessages) {
  std::ostringstream out;
  RunProgressPrinter printer(out, std::chrono::steady_clock::now(), false,
                             std::chrono::milliseconds(0));
  printer.Update(StatusDoc(1, 2, ""));
  printer.Update(StatusDoc(2, 2, "iteration 5/300 loss 0.4"));
  printer.Update(StatusDoc(2, 2, "iteration 5/300 loss 0.4"));  // nothing new
  const std::string text = out.str();
  EXPECT_NE(text.find("1/10 tasks done"), std::string::npos) << text;
  EXPECT_NE(text.find("stage prep done: 2/2 succeeded"), std::string::npos) << text;
  EXPECT_EQ(text.find("stage prep done"), text.rfind("stage prep done")) << text;
  EXPECT_NE(text.find("running: train_unet_r1 (iteration 5/300 loss 0.4)"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("2/10 tasks done"), text.rfind("2/10 tasks done")) << text;
}

TEST(RunProgressTest, StagesFinishedBeforeAResumeAreNotAnnouncedAgain) {
  std::ostringstream out;
  RunProgressPrinter printer(out, std::chrono::steady_clock::now(), true,
                             std::chrono::milliseconds(0));
  printer.Update(StatusDoc(2, 2, ""));
  EXPECT_EQ(out.str().find("stage prep done"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace clisc::cli
