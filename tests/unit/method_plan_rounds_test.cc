// The plan of stages 9-13: self-training rounds chained through S3F, the baselines, and what the
// config's rounds, baselines and mode change.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "coordinator/method_plan.h"
#include "tests/unit/method_plan_fixture.h"

namespace clisc {
namespace {

using nlohmann::json;
using namespace plan_fixture;

TEST(MethodPlanTest, SelfTrainingRoundsChainThroughS3f) {
  const std::vector<TaskSpec> tasks = Plan(MakeConfig("unsupervised"), MakeInputs());
  const std::vector<std::string> train = {"c00", "c01", "c02", "c03", "c04", "c05"};

  // Round 1 learns the SAM pseudo-labels of the train split.
  const json r1 = ParamsOf(tasks, "train_unet_r1");
  EXPECT_EQ(Find(tasks, "train_unet_r1").role, "trainer");
  EXPECT_EQ(r1.at("labels_stage"), "sam_label");
  EXPECT_EQ(r1.at("labels_artifact"), "pseudo_label_cropped");
  EXPECT_EQ(r1.at("kept_from"), "");
  EXPECT_EQ(Outputs(r1), (std::map<std::string, std::string>{{"model", "unet/r1/model.pth"},
                                                             {"log", "unet/r1/train_log.json"}}));
  EXPECT_EQ(Keys(r1.at("config")), (std::set<std::string>{"mode", "device", "precision", "data",
                                                          "unet", "train", "inference"}));
  std::set<std::string> expected;
  for (const std::string& id : train) expected.insert({"sam_label/" + id, "prep/" + id});
  EXPECT_EQ(DepsOf(tasks, "train_unet_r1"), expected);

  // Round 1 predicts the train split for S3F (largest component) and the test split.
  EXPECT_EQ(ParamsOf(tasks, "predict_r1/c00").at("purpose"), "pseudo_label");
  EXPECT_EQ(ParamsOf(tasks, "predict_r1/c08").at("purpose"), "test");
  EXPECT_EQ(DepsOf(tasks, "predict_r1/c00"), (std::set<std::string>{"train_unet_r1", "prep/c00"}));
  EXPECT_EQ(Outputs(ParamsOf(tasks, "predict_r1/c00")).at("prediction_cropped"),
            "cases/c00/unet_r1/prediction_cropped.nii.gz");
  EXPECT_EQ(Find(tasks, "s3f_score_r1/c00").role, "sam");
  EXPECT_EQ(DepsOf(tasks, "s3f_score_r1/c00"),
            (std::set<std::string>{"predict_r1/c00", "prep/c00"}));
  expected.clear();
  for (const std::string& id : train) expected.insert("s3f_score_r1/" + id);
  EXPECT_EQ(DepsOf(tasks, "s3f_rank_r1"), expected);
  EXPECT_EQ(Outputs(ParamsOf(tasks, "s3f_rank_r1")).at("kept"), "s3f/r1/kept.json");

  // Round 2 learns the round-1 predictions of the cases S3F kept; being the last, it predicts
  // the test split only.
  const json r2 = ParamsOf(tasks, "train_unet_r2");
  EXPECT_EQ(r2.at("labels_stage"), "predict_r1");
  EXPECT_EQ(r2.at("labels_artifact"), "prediction_cropped");
  EXPECT_EQ(r2.at("kept_from"), "s3f_rank_r1");
  expected = {"s3f_rank_r1"};
  for (const std::string& id : train) expected.insert({"predict_r1/" + id, "prep/" + id});
  EXPECT_EQ(DepsOf(tasks, "train_unet_r2"), expected);
  EXPECT_EQ(Find(tasks, "train_unet_r2").round, 2);
  EXPECT_FALSE(Has(tasks, "predict_r2/c00"));
  EXPECT_FALSE(Has(tasks, "s3f_score_r2/c00"));
  EXPECT_EQ(DepsOf(tasks, "evaluate_r2"),
            (std::set<std::string>{"predict_r2/c08", "predict_r2/c09", "prep/c08", "prep/c09"}));
  EXPECT_EQ(ParamsOf(tasks, "evaluate_sam_only").at("mask_artifact"), "pseudo_label_cropped");
  EXPECT_EQ(DepsOf(tasks, "evaluation_summary"),
            (std::set<std::string>{"evaluate_r1", "evaluate_r2", "evaluate_sam_only"}));

  // The SAM-only baseline's test cases feed no training.
  for (const char* key :
       {"train_classifier_raw", "train_classifier_aug", "train_unet_r1", "stage_quality"}) {
    for (const std::string& dep : DepsOf(tasks, key)) {
      EXPECT_EQ(dep.find("c08"), std::string::npos) << key << " depends on " << dep;
    }
  }
  EXPECT_EQ(ParamsOf(tasks, "clip_label/c08").at("source"), "clip");
}

TEST(MethodPlanTest, RoundsAndBaselinesFollowTheConfig) {
  const std::vector<TaskSpec> one =
      Plan(MakeConfig("unsupervised", {"s3f.rounds=1"}), MakeInputs());
  EXPECT_FALSE(Has(one, "s3f_rank_r1"));
  EXPECT_FALSE(Has(one, "predict_r1/c00"));
  EXPECT_TRUE(Has(one, "predict_r1/c08"));
  const std::vector<TaskSpec> three =
      Plan(MakeConfig("unsupervised", {"s3f.rounds=3"}), MakeInputs());
  EXPECT_EQ(ParamsOf(three, "train_unet_r3").at("kept_from"), "s3f_rank_r2");
  EXPECT_TRUE(Has(three, "s3f_score_r2/c05"));

  // The supervised baseline trains on GT (no pseudo-label dependency) and is evaluated apart.
  const std::vector<TaskSpec> supervised =
      Plan(MakeConfig("unsupervised", {"baselines.supervised=true"}), MakeInputs());
  const json params = ParamsOf(supervised, "train_unet_supervised");
  EXPECT_EQ(params.at("labels_stage"), "prep");
  EXPECT_EQ(params.at("labels_artifact"), "gt");
  EXPECT_EQ(Find(supervised, "train_unet_supervised").round, 0);
  for (const std::string& dep : DepsOf(supervised, "train_unet_supervised")) {
    EXPECT_EQ(dep.rfind("prep/", 0), 0u) << dep;
  }
  EXPECT_TRUE(Has(supervised, "predict_supervised/c08"));
  EXPECT_TRUE(DepsOf(supervised, "evaluation_summary").contains("evaluate_supervised"));

  // Reference mode validates every round on the valid split's GT.
  const std::vector<TaskSpec> reference = Plan(MakeConfig("reference"), MakeInputs());
  EXPECT_EQ(ParamsOf(reference, "train_unet_r1").at("valid_cases"), json::array({"c06", "c07"}));
  EXPECT_TRUE(DepsOf(reference, "train_unet_r2").contains("prep/c07"));
  EXPECT_FALSE(Has(reference, "evaluate_sam_only"));  // its CAM would read the test GT

  // The GT baseline needs the GT of every train case.
  MethodPlanInputs no_seg = MakeInputs();
  no_seg.cases[2].has_seg = false;  // c02, a train case
  StatusOr<std::vector<TaskSpec>> refused =
      PlanMethodStages(MakeConfig("unsupervised", {"baselines.supervised=true"}), no_seg);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("c02"), std::string::npos);
  EXPECT_TRUE(PlanMethodStages(MakeConfig("unsupervised"), no_seg).ok());
}

}  // namespace
}  // namespace clisc
