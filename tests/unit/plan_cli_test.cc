// `clisc plan` through the real binary, on hand-made case folders (discovery reads names only):
// the plan file it writes, its summaries, determinism, --set, and its errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class PlanCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("clisc_plan_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "run.yaml") << "mode: unsupervised\nruntime:\n  max_attempts: 4\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  RunResult Run(const std::string& args) {
    const fs::path out = dir_ / "stdout", err = dir_ / "stderr";
    const std::string command =
        std::string(CLISC_BINARY) + " plan " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    RunResult result;
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    result.out = ReadAll(out);
    result.err = ReadAll(err);
    return result;
  }

  // `cases` complete BraTS2020 cases (empty files), and with `broken` one without a FLAIR image.
  fs::path MakeDataset(int cases, bool broken = true) {
    const fs::path data = dir_ / "data";
    auto make_case = [&](const std::string& id, const std::vector<std::string>& suffixes) {
      fs::create_directories(data / id);
      for (const std::string& s : suffixes) std::ofstream(data / id / (id + "_" + s + ".nii.gz"));
    };
    for (int i = 1; i <= cases; ++i) {
      char id[32];
      std::snprintf(id, sizeof(id), "BraTS20_Training_%03d", i);
      make_case(id, {"flair", "t1", "t1ce", "t2", "seg"});
    }
    if (broken) make_case("BraTS20_Training_900", {"t1", "seg"});
    return data;
  }

  std::string Common(const fs::path& data) const {
    return "--config " + (dir_ / "run.yaml").string() + " --data " + data.string();
  }

  fs::path dir_;
};

TEST_F(PlanCliTest, HelpDocumentsTheOptions) {
  const RunResult run = Run("--help");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  for (const char* word : {"--config", "--data", "--set", "--out", "--json"}) {
    EXPECT_NE(run.out.find(word), std::string::npos) << word << "\n" << run.out;
  }
}

TEST_F(PlanCliTest, WritesThePlanAndPrintsTheStageTable) {
  const fs::path data = MakeDataset(10);
  const fs::path plan_file = dir_ / "plans" / "plan.json";
  fs::create_directories(plan_file.parent_path());
  const RunResult run = Run(Common(data) + " --out " + plan_file.string());
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  for (const char* text :
       {"prep", "clip_label", "train_classifier_aug", "sam_label", "stage_quality",
        "cases: 10 planned, 1 rejected", "rejected BraTS20_Training_900: no flair", "wrote "}) {
    EXPECT_NE(run.out.find(text), std::string::npos) << text << "\n" << run.out;
  }
  const nlohmann::json plan = nlohmann::json::parse(ReadAll(plan_file));
  ASSERT_TRUE(plan.at("tasks").is_array());
  // The 11 discovered cases split 7/1/3 before the broken one is dropped.
  size_t train = 0, test = 0, sam = 0;
  for (const auto& task : plan.at("tasks")) {
    train += task.at("stage") == "s3f_score_r1";
    test += task.at("stage") == "predict_r2";
    sam += task.at("stage") == "sam_label";
  }
  EXPECT_TRUE(train == 6 || train == 7) << train;
  EXPECT_TRUE(test == 2 || test == 3) << test;
  EXPECT_EQ(sam, train + test);  // the SAM-only baseline runs stages 1-8 on the test split too
  // 10 prep; per train and test case clip_label, cam_raw, cam_post_raw, cam_aug, cam_post_aug
  // and sam_label; 2 classifier trainings and the quality report; round 1: a U-Net training,
  // predictions of train and test, S3F scores of train, the ranking, an evaluation; round 2: a
  // training, predictions of test, an evaluation; the SAM-only evaluation and the summary.
  EXPECT_EQ(plan.at("tasks").size(),
            10u + (train + test) * 6u + 3u + (3u + 2 * train + test) + (2u + test) + 2u);
  EXPECT_EQ(plan.at("tasks")[0].at("key"), "prep/BraTS20_Training_001");
  EXPECT_EQ(plan.at("tasks")[0].at("max_attempts"), 4);
  EXPECT_EQ(plan.at("tasks").back().at("key"), "evaluation_summary");
  for (const char* text : {"train_unet_r1", "predict_r2", "s3f_rank_r1", "evaluate_sam_only"}) {
    EXPECT_NE(run.out.find(text), std::string::npos) << text << "\n" << run.out;
  }

  // Same config and data: byte-identical plan.
  const std::string first = ReadAll(plan_file);
  ASSERT_EQ(Run(Common(data) + " --out " + plan_file.string()).exit_code, 0);
  EXPECT_EQ(ReadAll(plan_file), first);
}

TEST_F(PlanCliTest, JsonSummaryAndOverrides) {
  const fs::path data = MakeDataset(10, /*broken=*/false);
  const RunResult run = Run(Common(data) + " --set mode=reference --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json summary = nlohmann::json::parse(run.out);
  EXPECT_EQ(summary.at("mode"), "reference");
  EXPECT_EQ(summary.at("splits").at("train"), 7);
  EXPECT_EQ(summary.at("splits").at("valid"), 1);
  EXPECT_EQ(summary.at("cases").at("planned"), 10);
  EXPECT_TRUE(summary.at("cases").at("rejected").empty());
  EXPECT_TRUE(summary.at("out").is_null());
  std::map<std::string, int> counts;
  for (const auto& stage : summary.at("stages")) counts[stage.at("stage")] = stage.at("tasks");
  EXPECT_EQ(counts["cam_threshold_raw"], 1);
  EXPECT_EQ(counts["clip_label"], 8);  // train + valid in reference mode
  int total = 0;
  for (const auto& [stage, n] : counts) total += n;
  EXPECT_EQ(summary.at("tasks"), total);
}

TEST_F(PlanCliTest, MissingDataFolderIsAUsageError) {
  const RunResult run = Run(Common(dir_ / "nowhere"));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("nowhere"), std::string::npos) << run.err;
}

TEST_F(PlanCliTest, NoCasesFails) {
  fs::create_directories(dir_ / "empty");
  const RunResult run = Run(Common(dir_ / "empty"));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("no BraTS case"), std::string::npos) << run.err;
}

TEST_F(PlanCliTest, InvalidConfigIsAUsageError) {
  const fs::path data = MakeDataset(3);
  RunResult run = Run(Common(data) + " --set mode=bogus");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("mode"), std::string::npos) << run.err;
  run = Run("--config " + (dir_ / "absent.yaml").string() + " --data " + data.string());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("absent.yaml"), std::string::npos) << run.err;
  run = Run("--data " + data.string());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("--config"), std::string::npos) << run.err;
}

}  // namespace
