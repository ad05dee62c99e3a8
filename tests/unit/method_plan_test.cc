// The plan of method stages 0-13: which tasks a case list and a config give, their dependencies
// and params (the contract with the roles), determinism, the plan file round trip and splits.
#include "coordinator/method_plan.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "common/config.h"
#include "coordinator/task_plan_file.h"
#include "tests/unit/method_plan_fixture.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace plan_fixture;

TEST(MethodPlanTest, StageTableInPlanOrder) {
  std::vector<std::string> names;
  for (const StageDefinition& s : MethodStages()) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "prep", "clip_label", "train_classifier_raw", "cam_raw", "cam_threshold_raw",
                       "cam_post_raw", "train_classifier_aug", "cam_aug", "cam_threshold_aug",
                       "cam_post_aug", "sam_label", "stage_quality", "train_unet", "predict",
                       "s3f_score", "s3f_rank", "evaluate", "evaluation_summary"}));
}

TEST(MethodPlanTest, TaskCountsPerStageUnsupervised) {
  // Stages 1-8 run on the 6 train cases and, for the SAM-only baseline, on the 2 test cases.
  // Round 1 predicts train (for S3F) and test; round 2, the last, predicts test only.
  const std::vector<TaskSpec> tasks = Plan(MakeConfig("unsupervised"), MakeInputs());
  EXPECT_EQ(CountByStage(tasks), (std::map<std::string, int>{{"prep", 11},
                                                             {"clip_label", 8},
                                                             {"train_classifier_raw", 1},
                                                             {"cam_raw", 8},
                                                             {"cam_threshold_raw", 0},
                                                             {"cam_post_raw", 8},
                                                             {"train_classifier_aug", 1},
                                                             {"cam_aug", 8},
                                                             {"cam_threshold_aug", 0},
                                                             {"cam_post_aug", 8},
                                                             {"sam_label", 8},
                                                             {"stage_quality", 1},
                                                             {"train_unet_r1", 1},
                                                             {"train_unet_r2", 1},
                                                             {"predict_r1", 8},
                                                             {"predict_r2", 2},
                                                             {"s3f_score_r1", 6},
                                                             {"s3f_rank_r1", 1},
                                                             {"evaluate_r1", 1},
                                                             {"evaluate_r2", 1},
                                                             {"evaluate_sam_only", 1},
                                                             {"evaluation_summary", 1}}));
  EXPECT_EQ(tasks.size(), 85u);
  // Without the baseline, stages 1-8 stay on the train split.
  const std::vector<TaskSpec> plain =
      Plan(MakeConfig("unsupervised", {"baselines.sam_only=false"}), MakeInputs());
  EXPECT_EQ(CountByStage(plain)["sam_label"], 6);
  EXPECT_FALSE(Has(plain, "evaluate_sam_only"));
}

TEST(MethodPlanTest, TaskCountsPerStageReference) {
  const std::vector<TaskSpec> tasks = Plan(MakeConfig("reference"), MakeInputs());
  EXPECT_EQ(CountByStage(tasks), (std::map<std::string, int>{{"prep", 11},
                                                             {"clip_label", 8},
                                                             {"train_classifier_raw", 1},
                                                             {"cam_raw", 8},
                                                             {"cam_threshold_raw", 1},
                                                             {"cam_post_raw", 6},
                                                             {"train_classifier_aug", 1},
                                                             {"cam_aug", 8},
                                                             {"cam_threshold_aug", 1},
                                                             {"cam_post_aug", 6},
                                                             {"sam_label", 6},
                                                             {"stage_quality", 1},
                                                             {"train_unet_r1", 1},
                                                             {"train_unet_r2", 1},
                                                             {"predict_r1", 8},
                                                             {"predict_r2", 2},
                                                             {"s3f_score_r1", 6},
                                                             {"s3f_rank_r1", 1},
                                                             {"evaluate_r1", 1},
                                                             {"evaluate_r2", 1},
                                                             {"evaluation_summary", 1}}));
  EXPECT_TRUE(Has(tasks, "cam_raw/c06"));
  EXPECT_FALSE(Has(tasks, "cam_post_raw/c06"));  // valid cases are for selection only
  EXPECT_FALSE(Has(tasks, "clip_label/c08"));
}

TEST(MethodPlanTest, KeysUniqueDepsEarlierRoundsNamed) {
  for (const char* mode : {"unsupervised", "reference"}) {
    SCOPED_TRACE(mode);
    const std::vector<TaskSpec> tasks =
        Plan(MakeConfig(mode, {"runtime.max_attempts=5"}), MakeInputs());
    std::set<std::string> seen;
    for (const TaskSpec& t : tasks) {
      for (const std::string& dep : t.depends_on) {
        EXPECT_TRUE(seen.contains(dep)) << t.task_key << " depends on " << dep;
      }
      EXPECT_TRUE(seen.insert(t.task_key).second) << "repeated key " << t.task_key;
      // Round r tasks carry the suffix _r<r>; every other task has round 0.
      const size_t suffix = t.stage.rfind("_r");
      const bool per_round = suffix != std::string::npos && suffix + 2 < t.stage.size() &&
                             std::isdigit(static_cast<unsigned char>(t.stage[suffix + 2]));
      EXPECT_EQ(t.round, per_round ? std::stoi(t.stage.substr(suffix + 2)) : 0) << t.task_key;
      EXPECT_EQ(t.max_attempts, 5) << t.task_key;
      const std::string expected_key = t.case_id ? t.stage + "/" + *t.case_id : t.stage;
      EXPECT_EQ(t.task_key, expected_key);
      const std::set<std::string> roles = {"prep", "clip", "cam", "reduce", "sam", "trainer"};
      EXPECT_TRUE(roles.contains(t.role)) << t.role;
    }
  }
}

TEST(MethodPlanTest, GlobalTasksDependOnEveryTrainCase) {
  for (const char* mode : {"unsupervised", "reference"}) {
    SCOPED_TRACE(mode);
    const bool reference = std::string(mode) == "reference";
    const std::vector<TaskSpec> tasks = Plan(MakeConfig(mode), MakeInputs());
    auto deps_of = [&](const std::string& key) {
      const auto& d = Find(tasks, key).depends_on;
      return std::set<std::string>(d.begin(), d.end());
    };
    const auto raw = deps_of("train_classifier_raw");
    const auto aug = deps_of("train_classifier_aug");
    const auto quality = deps_of("stage_quality");
    for (int i = 0; i <= 7; ++i) {
      const std::string id = "c0" + std::to_string(i);
      const bool labelled = i <= 5 || reference;
      for (const std::string stage : {"clip_label/", "prep/"}) {
        EXPECT_EQ(raw.contains(stage + id), labelled) << stage + id;
        EXPECT_EQ(aug.contains(stage + id), labelled) << stage + id;
      }
      EXPECT_EQ(aug.contains("cam_post_raw/" + id), i <= 5) << id;
      EXPECT_EQ(quality.contains("clip_label/" + id), labelled) << id;
      for (const std::string stage : {"cam_post_raw/", "cam_post_aug/", "sam_label/"}) {
        EXPECT_EQ(quality.contains(stage + id), i <= 5) << stage + id;
      }
    }
    EXPECT_FALSE(raw.contains("prep/c08"));
    if (reference) {
      EXPECT_EQ(deps_of("cam_threshold_raw"),
                (std::set<std::string>{"cam_raw/c06", "cam_raw/c07", "prep/c06", "prep/c07"}));
      EXPECT_EQ(deps_of("cam_threshold_aug"),
                (std::set<std::string>{"cam_aug/c06", "cam_aug/c07", "prep/c06", "prep/c07"}));
    }
  }
}

TEST(MethodPlanTest, PerCaseDependencies) {
  const std::vector<TaskSpec> unsup = Plan(MakeConfig("unsupervised"), MakeInputs());
  const std::vector<TaskSpec> ref = Plan(MakeConfig("reference"), MakeInputs());
  using Deps = std::vector<std::string>;
  EXPECT_EQ(Find(unsup, "prep/c00").depends_on, Deps{});
  EXPECT_EQ(Find(unsup, "clip_label/c00").depends_on, Deps{"prep/c00"});
  EXPECT_EQ(Find(unsup, "cam_raw/c00").depends_on,
            (Deps{"train_classifier_raw", "prep/c00", "clip_label/c00"}));
  EXPECT_EQ(Find(unsup, "cam_post_raw/c00").depends_on,
            (Deps{"cam_raw/c00", "prep/c00", "clip_label/c00"}));
  EXPECT_EQ(Find(ref, "cam_post_raw/c00").depends_on,
            (Deps{"cam_raw/c00", "prep/c00", "clip_label/c00", "cam_threshold_raw"}));
  EXPECT_EQ(Find(unsup, "cam_aug/c00").depends_on,
            (Deps{"train_classifier_aug", "prep/c00", "clip_label/c00"}));
  EXPECT_EQ(Find(ref, "cam_post_aug/c00").depends_on,
            (Deps{"cam_aug/c00", "prep/c00", "clip_label/c00", "cam_threshold_aug"}));
  EXPECT_EQ(Find(unsup, "sam_label/c00").depends_on, (Deps{"cam_post_aug/c00", "prep/c00"}));
}

TEST(MethodPlanTest, PrepParams) {
  const std::vector<TaskSpec> tasks =
      Plan(MakeConfig("unsupervised", {"data.modalities=[t2, flair]"}), MakeInputs());
  const json p = ParamsOf(tasks, "prep/c00");
  EXPECT_EQ(Outputs(p),
            (std::map<std::string, std::string>{{"image_t2", "cases/c00/prep/t2.nii"},
                                                {"image_flair", "cases/c00/prep/flair.nii"},
                                                {"brain_mask", "cases/c00/prep/brain_mask.nii.gz"},
                                                {"gt", "cases/c00/prep/gt_wt.nii.gz"},
                                                {"crop", "cases/c00/prep/crop.json"}}));
  EXPECT_EQ(p.at("outputs")[0].at("name"), "image_t2");  // modalities in config order
  EXPECT_EQ(Keys(p.at("config")), (std::set<std::string>{"data", "mode", "preprocess"}));
  EXPECT_EQ(p.at("config").at("data"), (json{{"modalities", {"t2", "flair"}}}));
  EXPECT_EQ(p.at("config").at("mode"), "unsupervised");
  EXPECT_EQ(p.at("case_dir"), "/data/brats/c00");
  EXPECT_EQ(p.at("split"), "train");
  EXPECT_EQ(Keys(p), (std::set<std::string>{"case_dir", "config", "outputs", "split"}));
  // No seg file, no gt output; a case in no split is still prepared.
  EXPECT_FALSE(Outputs(ParamsOf(tasks, "prep/c09")).contains("gt"));
  EXPECT_EQ(ParamsOf(tasks, "prep/c09").at("split"), "test");
  EXPECT_EQ(ParamsOf(tasks, "prep/c10").at("split"), "none");
  EXPECT_TRUE(Outputs(ParamsOf(tasks, "prep/c10")).contains("gt"));
}

TEST(MethodPlanTest, ClipLabelParams) {
  const std::vector<TaskSpec> tasks = Plan(MakeConfig("reference"), MakeInputs());
  const json p = ParamsOf(tasks, "clip_label/c01");
  EXPECT_EQ(Outputs(p),
            (std::map<std::string, std::string>{{"slices", "cases/c01/clip/slices.json"}}));
  EXPECT_EQ(Keys(p.at("config")), (std::set<std::string>{"clip", "data", "mode"}));
  EXPECT_EQ(Keys(p.at("config").at("data")), std::set<std::string>{"modalities"});
  EXPECT_EQ(p.at("source"), "clip");
  EXPECT_EQ(p.at("split"), "train");
  const json v = ParamsOf(tasks, "clip_label/c06");
  EXPECT_EQ(v.at("source"), "gt");
  EXPECT_EQ(v.at("split"), "valid");
}

TEST(MethodPlanTest, ClassifierAndCamParams) {
  const std::vector<TaskSpec> tasks =
      Plan(MakeConfig("reference", {"cam.threshold=0.35", "amda.train_on=union"}), MakeInputs());
  for (const std::string variant : {"raw", "aug"}) {
    SCOPED_TRACE(variant);
    const json train = ParamsOf(tasks, "train_classifier_" + variant);
    EXPECT_EQ(Outputs(train), (std::map<std::string, std::string>{
                                  {"model", "classifier/" + variant + "/model.pth"},
                                  {"log", "classifier/" + variant + "/train_log.json"}}));
    std::set<std::string> sections = {"classifier", "data", "device", "mode", "precision"};
    if (variant == "aug") sections.insert("amda");
    EXPECT_EQ(Keys(train.at("config")), sections);
    if (variant == "aug") {
      EXPECT_EQ(train.at("config").at("amda"), (json{{"train_on", "union"}}));
    }
    EXPECT_EQ(train.at("variant"), variant);
    EXPECT_FALSE(train.contains("split"));
    EXPECT_FALSE(Find(tasks, "train_classifier_" + variant).case_id.has_value());

    const json cam = ParamsOf(tasks, "cam_" + variant + "/c06");
    EXPECT_EQ(Outputs(cam), (std::map<std::string, std::string>{
                                {"cam", "cases/c06/cam_" + variant + "/cam.nii"},
                                {"info", "cases/c06/cam_" + variant + "/info.json"}}));
    EXPECT_EQ(Keys(cam.at("config")),
              (std::set<std::string>{"cam", "classifier", "data", "device", "mode", "precision"}));
    EXPECT_EQ(cam.at("variant"), variant);
    EXPECT_EQ(cam.at("split"), "valid");

    const json threshold = ParamsOf(tasks, "cam_threshold_" + variant);
    EXPECT_EQ(
        Outputs(threshold),
        (std::map<std::string, std::string>{{"threshold", "cam/" + variant + "/threshold.json"}}));
    EXPECT_EQ(Keys(threshold.at("config")), (std::set<std::string>{"cam", "mode"}));
    EXPECT_EQ(Find(tasks, "cam_threshold_" + variant).role, "reduce");

    const json post = ParamsOf(tasks, "cam_post_" + variant + "/c02");
    std::map<std::string, std::string> post_outputs = {
        {"mask", "cases/c02/cam_" + variant + "/mask.nii.gz"},
        {"quality", "cases/c02/cam_" + variant + "/quality.json"}};
    if (variant == "raw") {
      post_outputs["amda_slices"] = "cases/c02/amda/slices.nii.gz";
      post_outputs["amda_index"] = "cases/c02/amda/slices.json";
    }
    EXPECT_EQ(Outputs(post), post_outputs);
    EXPECT_EQ(Keys(post.at("config")), (std::set<std::string>{"amda", "cam", "classifier", "data",
                                                              "debug", "mode", "seed"}));
    // AMDA draws the slices at the classifier's input size; only that key of the section.
    EXPECT_EQ(Keys(post.at("config").at("classifier")), (std::set<std::string>{"image_size"}));
    EXPECT_DOUBLE_EQ(post.at("config").at("cam").at("threshold").get<double>(), 0.35);
    EXPECT_EQ(post.at("config").at("mode"), "reference");
  }
}

TEST(MethodPlanTest, SamAndQualityParams) {
  const std::vector<TaskSpec> tasks = Plan(MakeConfig("unsupervised"), MakeInputs());
  const json sam = ParamsOf(tasks, "sam_label/c04");
  EXPECT_EQ(Outputs(sam), (std::map<std::string, std::string>{
                              {"pseudo_label", "cases/c04/sam/pseudo_label.nii.gz"},
                              {"pseudo_label_cropped", "cases/c04/sam/pseudo_label_cropped.nii.gz"},
                              {"info", "cases/c04/sam/info.json"}}));
  EXPECT_EQ(Keys(sam.at("config")),
            (std::set<std::string>{"data", "debug", "device", "mode", "precision", "sam"}));
  EXPECT_EQ(Find(tasks, "sam_label/c04").role, "sam");
  const json quality = ParamsOf(tasks, "stage_quality");
  EXPECT_EQ(Outputs(quality),
            (std::map<std::string, std::string>{{"report", "report/data/stages_1_8.json"}}));
  EXPECT_EQ(quality.at("config"), (json{{"mode", "unsupervised"},
                                        {"clip", {{"backend", "model"}}},
                                        {"sam", {{"backend", "model"}}}}));
}

TEST(MethodPlanTest, EveryTaskConfigRebuildsATypedConfig) {
  const Config original = MakeConfig("reference", {"cam.threshold=0.4", "device=cuda:1"});
  for (const TaskSpec& t : Plan(original, MakeInputs())) {
    Config rebuilt;
    const Status merged = rebuilt.Merge(json::parse(t.params_json).at("config").dump(), "task");
    ASSERT_TRUE(merged.ok()) << t.task_key << ": " << merged.ToString();
    EXPECT_EQ(rebuilt.GetString("mode"), "reference");
  }
  Config rebuilt;
  ASSERT_TRUE(
      rebuilt
          .Merge(ParamsOf(Plan(original, MakeInputs()), "cam_raw/c00").at("config").dump(), "task")
          .ok());
  EXPECT_EQ(rebuilt.GetString("device"), "cuda:1");
  EXPECT_EQ(rebuilt.Fingerprint("cam"), original.Fingerprint("cam"));
  EXPECT_EQ(rebuilt.Fingerprint("classifier"), original.Fingerprint("classifier"));
}

TEST(MethodPlanTest, SameInputsGiveByteIdenticalJson) {
  const Config config = MakeConfig("reference");
  const MethodPlanInputs inputs = MakeInputs();
  MethodPlanInputs shuffled = inputs;
  std::mt19937 rng(7);
  std::shuffle(shuffled.cases.begin(), shuffled.cases.end(), rng);
  std::shuffle(shuffled.splits.train.begin(), shuffled.splits.train.end(), rng);
  const std::string first = TaskPlanJson(Plan(config, inputs));
  EXPECT_EQ(first, TaskPlanJson(Plan(config, inputs)));
  EXPECT_EQ(first, TaskPlanJson(Plan(config, shuffled)));
  EXPECT_EQ(first.substr(0, 10), "{\"tasks\": ");
  EXPECT_NE(first, TaskPlanJson(Plan(MakeConfig("reference", {"cam.threshold=0.4"}), inputs)));
}

TEST(MethodPlanTest, PlanFileRoundTrip) {
  const std::vector<TaskSpec> tasks = Plan(MakeConfig("reference"), MakeInputs());
  StatusOr<std::vector<TaskSpec>> parsed = ParseTaskPlan(TaskPlanJson(tasks), 1);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    SCOPED_TRACE(tasks[i].task_key);
    EXPECT_EQ((*parsed)[i].task_key, tasks[i].task_key);
    EXPECT_EQ((*parsed)[i].stage, tasks[i].stage);
    EXPECT_EQ((*parsed)[i].case_id, tasks[i].case_id);
    EXPECT_EQ((*parsed)[i].round, tasks[i].round);
    EXPECT_EQ((*parsed)[i].role, tasks[i].role);
    EXPECT_EQ((*parsed)[i].params_json, tasks[i].params_json);
    EXPECT_EQ((*parsed)[i].max_attempts, tasks[i].max_attempts);
    EXPECT_EQ((*parsed)[i].depends_on, tasks[i].depends_on);
  }
}

TEST(MethodPlanTest, RefusesPlansTheMethodCannotRun) {
  MethodPlanInputs no_train = MakeInputs();
  no_train.splits.test.insert(no_train.splits.test.end(), no_train.splits.train.begin(),
                              no_train.splits.train.end());
  no_train.splits.train.clear();
  EXPECT_EQ(PlanMethodStages(MakeConfig("unsupervised"), no_train).status().code(),
            StatusCode::kFailedPrecondition);

  MethodPlanInputs no_valid = MakeInputs();
  no_valid.splits.valid.clear();
  EXPECT_TRUE(PlanMethodStages(MakeConfig("unsupervised"), no_valid).ok());
  EXPECT_EQ(PlanMethodStages(MakeConfig("reference"), no_valid).status().code(),
            StatusCode::kFailedPrecondition);

  MethodPlanInputs valid_without_gt = MakeInputs();
  valid_without_gt.cases[6].has_seg = false;
  EXPECT_TRUE(PlanMethodStages(MakeConfig("unsupervised"), valid_without_gt).ok());
  const Status status = PlanMethodStages(MakeConfig("reference"), valid_without_gt).status();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("c06"), std::string::npos) << status.message();

  MethodPlanInputs unknown = MakeInputs();
  unknown.splits.test.push_back("c99");
  EXPECT_EQ(PlanMethodStages(MakeConfig("unsupervised"), unknown).status().code(),
            StatusCode::kInvalidArgument);
  MethodPlanInputs twice = MakeInputs();
  twice.splits.test.push_back("c00");
  EXPECT_EQ(PlanMethodStages(MakeConfig("unsupervised"), twice).status().code(),
            StatusCode::kInvalidArgument);
}

class SplitFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("clisc_method_plan_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string WriteCsv(const std::string& name, const std::vector<std::string>& ids) {
    std::ofstream out(dir_ / name);
    out << "image_pth,mask_pth\n";
    for (const std::string& id : ids) out << "image/" << id << ".nii.gz,label/" << id << ".nii\n";
    return (dir_ / name).string();
  }

  fs::path dir_;
};

TEST_F(SplitFilesTest, SeededSplitsFollowTheConfig) {
  const std::vector<std::string> ids = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  const Config config = MakeConfig("unsupervised", {"data.splits.seed=9"});
  StatusOr<Splits> splits = SplitsForConfig(config, ids);
  ASSERT_TRUE(splits.ok()) << splits.status().ToString();
  StatusOr<Splits> expected = MakeSeededSplits(ids, {0.7, 0.1, 0.2}, 9);
  EXPECT_EQ(splits->train, expected->train);
  EXPECT_EQ(splits->valid, expected->valid);
  EXPECT_EQ(splits->test, expected->test);
}

TEST_F(SplitFilesTest, CsvSplitsReadTheFiles) {
  const std::string train = WriteCsv("train.csv", {"a", "b"});
  const std::string test = WriteCsv("test.csv", {"c"});
  const Config config = MakeConfig(
      "unsupervised",
      {"data.splits.source=csv", "data.splits.train_csv=" + train, "data.splits.test_csv=" + test});
  StatusOr<Splits> splits = SplitsForConfig(config, {"a", "b", "c", "d"});
  ASSERT_TRUE(splits.ok()) << splits.status().ToString();
  EXPECT_EQ(splits->train, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(splits->valid.empty());  // no valid_csv in unsupervised mode
  EXPECT_EQ(splits->test, std::vector<std::string>{"c"});
}

TEST_F(SplitFilesTest, CsvIdNotOnDiskIsAnErrorNamingIt) {
  const Config config = MakeConfig(
      "unsupervised", {"data.splits.source=csv",
                       "data.splits.train_csv=" + WriteCsv("train.csv", {"a", "ghost_case"}),
                       "data.splits.test_csv=" + WriteCsv("test.csv", {"c"})});
  const Status status = SplitsForConfig(config, {"a", "c"}).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("ghost_case"), std::string::npos) << status.message();
}

TEST_F(SplitFilesTest, PlanFromDatasetRejectsIncompleteCases) {
  // Discovery reads names only, so empty files make a dataset.
  auto make_case = [&](const std::string& id, std::vector<std::string> files) {
    fs::create_directories(dir_ / "data" / id);
    for (const std::string& f : files) std::ofstream(dir_ / "data" / id / (id + "_" + f));
  };
  for (int i = 1; i <= 10; ++i) {
    char id[32];
    std::snprintf(id, sizeof(id), "BraTS20_Training_%03d", i);
    make_case(id, {"flair.nii.gz", "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz", "seg.nii.gz"});
  }
  make_case("BraTS20_Training_011", {"t1.nii.gz"});  // no flair
  const Config config = MakeConfig("unsupervised");
  StatusOr<MethodPlan> plan = PlanFromDataset(config, dir_ / "data");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->cases.size(), 10u);
  ASSERT_EQ(plan->rejected.size(), 1u);
  EXPECT_EQ(plan->rejected[0].id, "BraTS20_Training_011");
  EXPECT_NE(plan->rejected[0].reason.find("flair"), std::string::npos);
  EXPECT_EQ(plan->splits.train.size() + plan->splits.valid.size() + plan->splits.test.size(), 10u);
  EXPECT_TRUE(plan->unassigned.empty());
  EXPECT_EQ(CountByStage(plan->tasks)["prep"], 10);
  EXPECT_EQ(CountByStage(plan->tasks)["sam_label"],
            static_cast<int>(plan->splits.train.size() + plan->splits.test.size()));
  const json prep = ParamsOf(plan->tasks, "prep/BraTS20_Training_001");
  EXPECT_EQ(fs::path(prep.at("case_dir").get<std::string>()),
            fs::absolute(dir_ / "data" / "BraTS20_Training_001").lexically_normal());

  EXPECT_EQ(PlanFromDataset(config, dir_ / "missing").status().code(), StatusCode::kNotFound);
  fs::create_directories(dir_ / "empty");
  EXPECT_EQ(PlanFromDataset(config, dir_ / "empty").status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace clisc
