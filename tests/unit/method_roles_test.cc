// The method roles (prep, clip, cam, sam, reduce) on the plan of coordinator/method_plan.h, run
// in process on synthetic cases: heuristic CLIP and SAM, and a fake classifier whose CAM is the
// slice intensity (the LibTorch classifier has its own tests, and the integration test runs the
// real one). Pins what each stage writes, that GT only measures in unsupervised mode, the
// reference mode's GT-driven steps, and that an empty CAM gives an empty label, not a crash.
#include "workers/roles/method_roles.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/synth_dataset.h"
#include "common/volume_io.h"
#include "coordinator/method_plan.h"
#include "tests/support/fake_classifier_engine.h"
#include "tests/support/fake_unet_engine.h"
#include "tests/support/plan_executor.h"
#include "tests/unit/test_volumes.h"

namespace clisc {
namespace {

using testing::FakeClassifierEngine;
using testing::FakeUNetEngine;
using testing::PlanExecutor;

constexpr char kBaseConfig[] = R"(
clip: {backend: heuristic, checkpoint: null, vocab: null}
sam: {backend: heuristic, checkpoint: null}
classifier: {arch: small, image_size: 32, epochs: 2}
debug: {overlays: true}
)";

class MethodRolesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new testing::TempDir("clisc-method-data");
    SynthOptions synth;
    synth.out_dir = data_->path();
    synth.cases = 4;
    synth.seed = 3;
    synth.threads = 2;
    ASSERT_TRUE(WriteSynthDataset(synth).ok());
  }
  static void TearDownTestSuite() { delete data_; }

  void SetUp() override {
    roles::MethodBackends backends;
    backends.classifier = [this]() -> StatusOr<std::unique_ptr<roles::ClassifierEngine>> {
      return std::unique_ptr<roles::ClassifierEngine>(
          std::make_unique<FakeClassifierEngine>(&record_));
    };
    backends.unet = [this]() -> StatusOr<std::unique_ptr<roles::UNetEngine>> {
      return std::unique_ptr<roles::UNetEngine>(std::make_unique<FakeUNetEngine>(&unet_record_));
    };
    ASSERT_TRUE(roles::RegisterMethodRoles(registry_, backends).ok());
    auto store = ArtifactStore::Open(work_.path() / "artifacts");
    ASSERT_TRUE(store.ok());
    store_ = std::make_unique<ArtifactStore>(std::move(*store));
  }

  StatusOr<MethodPlan> Plan(const std::string& extra_yaml) {
    ASSIGN_OR_RETURN(Config config,
                     LoadConfigString(std::string(kBaseConfig) + extra_yaml, "test"));
    return PlanFromDataset(config, data_->path());
  }

  nlohmann::json ReadJson(const std::string& relative) {
    std::ifstream in(store_->root() / relative);
    return nlohmann::json::parse(in, nullptr, false);
  }

  static testing::TempDir* data_;
  testing::TempDir work_{"clisc-method-work"};
  FakeClassifierEngine::Record record_;
  FakeUNetEngine::Record unet_record_;
  worker::RoleRegistry registry_;
  std::unique_ptr<ArtifactStore> store_;
};

testing::TempDir* MethodRolesTest::data_ = nullptr;

TEST_F(MethodRolesTest, UnsupervisedStagesWriteEveryArtifactAndMeasureAgainstGt) {
  auto plan =
      Plan("data: {splits: {train_fraction: 1.0, valid_fraction: 0.0, test_fraction: 0.0}}\n");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  PlanExecutor executor(&registry_, store_.get());
  executor.RunAll(plan->tasks);
  if (HasFatalFailure()) return;

  // Both trainings saw the labelled slices; the aug one only the AMDA set (train_on: masked).
  EXPECT_EQ(record_.trainings.load(), 2);
  int64_t kept = 0, amda = 0;
  for (const PlannedCase& c : plan->cases) {
    const nlohmann::json slices = ReadJson("cases/" + c.id + "/clip/slices.json");
    ASSERT_TRUE(slices.is_object()) << c.id;
    EXPECT_EQ(slices["mode"], "unsupervised");
    EXPECT_EQ(slices["source"], "clip");
    EXPECT_NE(slices["backend"].get<std::string>().find("heuristic"), std::string::npos);
    kept += slices["counts"]["kept"].get<int64_t>();
    const nlohmann::json index = ReadJson("cases/" + c.id + "/amda/slices.json");
    EXPECT_EQ(index["count"], slices["counts"]["kept"]) << c.id;
    EXPECT_EQ(index["variant"], "paper");
    amda += index["count"].get<int64_t>();
    const nlohmann::json sam = ReadJson("cases/" + c.id + "/sam/info.json");
    EXPECT_EQ(sam["mode"], "unsupervised");
    EXPECT_TRUE(sam["dice"].is_number() || sam["dice"].is_null());

    // The pseudo-label lies on the original grid, and inside the brain.
    auto header = ReadVolumeHeader(data_->path() / c.id / (c.id + "_flair.nii.gz"));
    auto label =
        ReadVolume<uint8_t>(store_->root() / "cases" / c.id / "sam" / "pseudo_label.nii.gz");
    ASSERT_TRUE(header.ok() && label.ok());
    EXPECT_EQ(label->size(), header->size);
    auto cropped = ReadVolume<uint8_t>(store_->root() / "cases" / c.id / "sam" /
                                       "pseudo_label_cropped.nii.gz");
    auto brain =
        ReadVolume<uint8_t>(store_->root() / "cases" / c.id / "prep" / "brain_mask.nii.gz");
    ASSERT_TRUE(cropped.ok() && brain.ok());
    for (size_t i = 0; i < cropped->voxels().size(); ++i) {
      if ((*cropped)[i]) {
        ASSERT_EQ((*brain)[i], 1) << c.id << " voxel " << i;
      }
    }
  }
  EXPECT_EQ(record_.last_train_slices.load(), amda);
  EXPECT_GT(kept, 0);

  const nlohmann::json report = ReadJson("report/data/stages_1_8.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["mode"], "unsupervised");
  EXPECT_EQ(report["backends"]["sam"], "heuristic");
  EXPECT_EQ(report["cases"].size(), plan->cases.size());
  const double accuracy = report["summary"]["slice_label_accuracy"]["mean"].get<double>();
  const double sam_dice = report["summary"]["sam_dice"]["mean"].get<double>();
  std::printf("slice-label accuracy %.3f, CAM Dice raw %.3f enhanced %.3f, SAM Dice %.3f\n",
              accuracy, report["summary"]["cam_dice_raw"]["mean"].get<double>(),
              report["summary"]["cam_dice_enhanced"]["mean"].get<double>(), sam_dice);
  EXPECT_GT(accuracy, 0.8);
}

TEST_F(MethodRolesTest, ReferenceModeSearchesTheThresholdOnValidGt) {
  auto plan = Plan(
      "mode: reference\n"
      "data: {splits: {train_fraction: 0.5, valid_fraction: 0.5, test_fraction: 0.0}}\n");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_FALSE(plan->splits.valid.empty());
  PlanExecutor executor(&registry_, store_.get());
  executor.RunAll(plan->tasks);
  if (HasFatalFailure()) return;
  // The valid split is labelled from GT and feeds model selection.
  const std::string valid_case = plan->splits.valid.front();
  const nlohmann::json slices = ReadJson("cases/" + valid_case + "/clip/slices.json");
  EXPECT_EQ(slices["source"], "gt");
  EXPECT_GT(record_.last_valid_slices.load(), 0);
  for (const char* variant : {"raw", "aug"}) {
    const nlohmann::json threshold = ReadJson(std::string("cam/") + variant + "/threshold.json");
    ASSERT_TRUE(threshold.is_object()) << variant;
    const double best = threshold["threshold"].get<double>();
    double best_dice = -1;
    for (const nlohmann::json& row : threshold["search"]) {
      best_dice = std::max(best_dice, row["mean_dice"].get<double>());
    }
    // The chosen threshold is the first candidate with the best mean Dice.
    for (const nlohmann::json& row : threshold["search"]) {
      if (row["mean_dice"].get<double>() == best_dice) {
        EXPECT_DOUBLE_EQ(row["threshold"].get<double>(), best) << variant;
        break;
      }
    }
    const std::string train_case = plan->splits.train.front();
    const nlohmann::json quality =
        ReadJson("cases/" + train_case + "/cam_" + variant + "/quality.json");
    EXPECT_DOUBLE_EQ(quality["threshold"].get<double>(), best);
    EXPECT_EQ(quality["mode"], "reference");
  }
}

TEST_F(MethodRolesTest, AnEmptyCamGivesAnEmptyPseudoLabelAndARecord) {
  auto plan =
      Plan("data: {splits: {train_fraction: 1.0, valid_fraction: 0.0, test_fraction: 0.0}}\n");
  ASSERT_TRUE(plan.ok());
  PlanExecutor executor(&registry_, store_.get());
  const TaskSpec* sam_task = nullptr;
  for (const TaskSpec& task : plan->tasks) {
    if (task.stage == "sam_label") {
      sam_task = &task;
      break;
    }
    ASSERT_TRUE(executor.Run(task).ok()) << task.task_key;
  }
  ASSERT_NE(sam_task, nullptr);
  const std::string id = *sam_task->case_id;
  // Empty the enhanced CAM of the case before SAM runs.
  const std::filesystem::path mask = store_->root() / "cases" / id / "cam_aug" / "mask.nii.gz";
  auto cam = ReadVolume<uint8_t>(mask);
  ASSERT_TRUE(cam.ok());
  std::fill(cam->voxels().begin(), cam->voxels().end(), 0);
  ASSERT_TRUE(WriteVolume(*cam, mask).ok());
  // The recorded checksum no longer matches, as after a re-run upstream; the role reads the file.
  auto output = executor.Run(*sam_task);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  EXPECT_EQ(output->metrics.at("empty_cam"), 1.0);
  const nlohmann::json info = ReadJson("cases/" + id + "/sam/info.json");
  EXPECT_EQ(info["empty_cam"], true);
  EXPECT_EQ(info["voxels"], 0);
  EXPECT_EQ(info["prompted_slices"], 0);
}

TEST_F(MethodRolesTest, SelfTrainingRoundsFilterWithS3fAndEvaluateTheTestSplit) {
  auto plan = Plan(
      "data: {splits: {train_fraction: 0.5, valid_fraction: 0.0, test_fraction: 0.5}}\n"
      "train: {max_iterations: 5}\n"
      "s3f: {rounds: 2, keep_ratio: 0.5}\n"
      "baselines: {supervised: true, sam_only: true}\n");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->splits.train.size(), 2u);
  ASSERT_EQ(plan->splits.test.size(), 2u);
  PlanExecutor executor(&registry_, store_.get());
  executor.RunAll(plan->tasks);
  if (HasFatalFailure()) return;

  // Three trainings in plan order: round 1 on the SAM labels of both train cases, round 2 on
  // the round-1 prediction of the one case S3F kept, the supervised baseline on the GT.
  ASSERT_EQ(unet_record_.trainings.size(), 3u);
  std::vector<std::string> train = plan->splits.train;
  std::sort(train.begin(), train.end());
  EXPECT_EQ(unet_record_.trainings[0], train);
  for (const std::string& file : unet_record_.label_files[0]) {
    EXPECT_NE(file.find("/sam/pseudo_label_cropped.nii.gz"), std::string::npos) << file;
  }
  const nlohmann::json kept = ReadJson("s3f/r1/kept.json");
  ASSERT_TRUE(kept.is_object());
  EXPECT_EQ(kept["cases"], 2);
  EXPECT_EQ(kept["kept_count"], 1);
  ASSERT_EQ(kept["ranking"].size(), 2u);
  const nlohmann::json& first = kept["ranking"][0];
  const nlohmann::json& second = kept["ranking"][1];
  EXPECT_TRUE(first["score"].get<double>() > second["score"].get<double>() ||
              (first["score"] == second["score"] &&
               first["case"].get<std::string>() < second["case"].get<std::string>()));
  EXPECT_EQ(unet_record_.trainings[1], std::vector<std::string>{first["case"].get<std::string>()});
  EXPECT_NE(unet_record_.label_files[1][0].find("/unet_r1/prediction_cropped.nii.gz"),
            std::string::npos);
  EXPECT_EQ(unet_record_.trainings[2], train);
  EXPECT_NE(unet_record_.label_files[2][0].find("/prep/gt_wt.nii.gz"), std::string::npos);
  EXPECT_EQ(unet_record_.options[0].max_iterations, 5);
  EXPECT_EQ(unet_record_.options[0].devices, std::vector<std::string>{"cpu"});

  // Each S3F score is the Dice of SAM (prompted by the prediction) with the prediction.
  for (const std::string& id : train) {
    const nlohmann::json score = ReadJson("cases/" + id + "/s3f_r1/score.json");
    ASSERT_TRUE(score.is_object()) << id;
    EXPECT_GE(score["score"].get<double>(), 0.0);
    EXPECT_LE(score["score"].get<double>(), 1.0);
    EXPECT_EQ(score["empty_prediction"], score["prediction_voxels"] == 0);
    // Pseudo-label predictions keep only their largest component.
    const nlohmann::json info = ReadJson("cases/" + id + "/unet_r1/prediction.json");
    EXPECT_EQ(info["purpose"], "pseudo_label");
    EXPECT_EQ(info["largest_component"], true);
    EXPECT_LE(info["voxels"].get<int64_t>(),
              info["voxels_before_largest_component"].get<int64_t>());
  }

  // Test predictions lie on the original grid; every round and baseline is evaluated.
  for (const std::string& id : plan->splits.test) {
    auto header = ReadVolumeHeader(data_->path() / id / (id + "_flair.nii.gz"));
    auto prediction =
        ReadVolume<uint8_t>(store_->root() / "cases" / id / "unet_r2" / "prediction.nii.gz");
    ASSERT_TRUE(header.ok() && prediction.ok()) << id;
    EXPECT_EQ(prediction->size(), header->size);
    EXPECT_EQ(ReadJson("cases/" + id + "/unet_r2/prediction.json")["purpose"], "test");
  }
  for (const char* variant : {"r1", "r2", "supervised", "sam_only"}) {
    const nlohmann::json metrics = ReadJson(std::string("eval/") + variant + ".json");
    ASSERT_TRUE(metrics.is_object()) << variant;
    EXPECT_EQ(metrics["cases"].size(), 2u) << variant;
    EXPECT_EQ(metrics["summary"]["cases"], 2) << variant;
    for (const nlohmann::json& row : metrics["cases"]) {
      EXPECT_TRUE(row["medpy"]["dice"]["value"].is_number()) << variant;
      EXPECT_TRUE(row.contains("monai")) << variant;
      EXPECT_TRUE(row["reference"]["dice"]["value"].is_number()) << variant;
    }
  }
  const nlohmann::json summary = ReadJson("report/data/evaluation.json");
  ASSERT_TRUE(summary.is_object());
  EXPECT_EQ(summary["final"], "r2");
  std::vector<std::string> variants;
  for (const nlohmann::json& row : summary["rows"]) variants.push_back(row["variant"]);
  EXPECT_EQ(variants, (std::vector<std::string>{"r1", "r2", "supervised", "sam_only"}));
  // The fake U-Net thresholds the image, so its rounds agree on the test split; the supervised
  // model (a higher threshold) differs: the summary keeps each variant's own numbers.
  EXPECT_EQ(summary["rows"][0]["dice"]["mean"], summary["rows"][1]["dice"]["mean"]);
  EXPECT_NE(summary["rows"][0]["dice"]["mean"], summary["rows"][2]["dice"]["mean"]);
  EXPECT_EQ(executor.metrics("evaluation_summary").count("dice_r2"), 1u);
}

TEST_F(MethodRolesTest, AMalformedCaseFailsItsPrepWithAClearError) {
  testing::TempDir bad("clisc-bad-case");
  const std::string id = "BraTS20_Training_900";
  std::filesystem::create_directories(bad.path() / id);
  for (const char* m : {"flair", "seg"}) {
    std::ofstream(bad.path() / id / (id + "_" + m + ".nii.gz")) << "not a volume";
  }
  auto config = LoadConfigString(std::string(kBaseConfig) +
                                     "data: {splits: {train_fraction: 1.0, valid_fraction: 0.0, "
                                     "test_fraction: 0.0}}\n",
                                 "test");
  ASSERT_TRUE(config.ok());
  auto plan = PlanFromDataset(*config, bad.path());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_FALSE(plan->tasks.empty());
  PlanExecutor executor(&registry_, store_.get());
  auto output = executor.Run(plan->tasks.front());
  ASSERT_FALSE(output.ok());
  EXPECT_FALSE(output.status().IsRetryable());
  EXPECT_NE(output.status().message().find(id), std::string::npos) << output.status().ToString();
}

}  // namespace
}  // namespace clisc
