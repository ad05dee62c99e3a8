// The LibTorch classifier engine's training: its result does not depend on loader threads or on
// a cancel + resume, validation picks the first best epoch, and bad inputs are refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/unit/torch/cam/classifier_engine_test_data.h"

namespace clisc::models::engine_test {
namespace {

TEST_F(ClassifierEngineTest, LoaderThreadsDoNotChangeTheResult) {
  const fs::path dir = ScratchDir();
  const auto train = MakeSquares(72, 32, 2);  // 5 batches, the last one partial
  ClassifierTrainingOptions options = SmallOptions(dir);
  options.epochs = 2;
  options.checkpoint_path = dir / "inline.ckpt";
  const TrainingReport inline_report = TrainOrDie(train, {}, options, dir / "inline.pth");
  options.loader_threads = 2;
  options.checkpoint_path = dir / "threads.ckpt";
  std::vector<std::string> messages;
  const TrainingReport threaded_report =
      TrainOrDie(train, {}, options, dir / "threads.pth", [&](double, const std::string& m) {
        messages.push_back(m);
        return true;
      });
  EXPECT_TRUE(SameWeights(dir / "inline.pth", dir / "threads.pth"));
  ASSERT_EQ(inline_report.epochs.size(), 2u);
  ASSERT_EQ(threaded_report.epochs.size(), 2u);
  EXPECT_EQ(inline_report.epochs[1].loss, threaded_report.epochs[1].loss);
  // 5 steps and one summary per epoch; the summary states the loader's wait.
  ASSERT_EQ(messages.size(), 12u);
  EXPECT_EQ(messages[4].rfind("epoch 1/2 step 5/5 loss ", 0), 0u) << messages[4];
  EXPECT_NE(messages[5].find("loader wait"), std::string::npos) << messages[5];
}

TEST_F(ClassifierEngineTest, CancelledRunResumesToBitIdenticalWeights) {
  const fs::path dir = ScratchDir();
  const auto train = MakeSquares(64, 32, 3);
  ClassifierTrainingOptions options = SmallOptions(dir);
  options.head_dropout = 0.5;  // the resumed run must continue the dropout generator exactly
  options.checkpoint_path = dir / "straight.ckpt";
  const TrainingReport straight = TrainOrDie(train, {}, options, dir / "straight.pth");

  options.checkpoint_path = dir / "resumed.ckpt";
  options.loader_threads = 1;
  auto engine = MakeTorchClassifierEngine();
  double last_fraction = 0;
  auto cancelled = engine->Train(train, {}, options, dir / "resumed.pth",
                                 [&](double fraction, const std::string& message) {
                                   last_fraction = fraction;
                                   return message.rfind("epoch 2/3 step 2/", 0) != 0;
                                 });
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.status().code(), StatusCode::kCancelled) << cancelled.status().ToString();
  EXPECT_NEAR(last_fraction, 6.0 / 12.0, 1e-12);  // 4 steps per epoch, step 2 of epoch 2
  EXPECT_TRUE(fs::exists(options.checkpoint_path));
  EXPECT_FALSE(fs::exists(dir / "resumed.pth"));

  const TrainingReport resumed = TrainOrDie(train, {}, options, dir / "resumed.pth");
  EXPECT_EQ(resumed.resumed_after_epoch, 1);
  ASSERT_EQ(resumed.epochs.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_EQ(resumed.epochs[e].epoch, static_cast<int>(e) + 1);
    EXPECT_EQ(resumed.epochs[e].loss, straight.epochs[e].loss) << "epoch " << e + 1;
  }
  EXPECT_TRUE(SameWeights(dir / "straight.pth", dir / "resumed.pth"));

  // A finished checkpoint only rewrites the selected model; another setup is refused.
  fs::remove(dir / "resumed.pth");
  const TrainingReport again = TrainOrDie(train, {}, options, dir / "resumed.pth");
  EXPECT_EQ(again.resumed_after_epoch, 3);
  EXPECT_TRUE(SameWeights(dir / "straight.pth", dir / "resumed.pth"));
  options.lr = 5e-4;
  auto other = engine->Train(train, {}, options, dir / "other.pth", {});
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition) << other.status().ToString();
}

TEST_F(ClassifierEngineTest, ValidationKeepsTheFirstBestEpoch) {
  const fs::path dir = ScratchDir();
  const auto train = MakeSquares(96, 32, 4);
  // Inverted labels: the better the model learns, the worse it scores here.
  const auto valid = MakeSquares(40, 32, 6, /*invert=*/true);
  ClassifierTrainingOptions options = SmallOptions(dir);
  options.batch_size = 8;
  const TrainingReport report = TrainOrDie(train, valid, options, dir / "selected.pth");
  ASSERT_EQ(report.epochs.size(), 3u);
  EXPECT_EQ(report.valid_slices, 40);
  int first_best = 0;
  double best = -1;
  for (const auto& epoch : report.epochs) {
    ASSERT_TRUE(epoch.valid_accuracy.has_value());
    if (*epoch.valid_accuracy > best) best = *epoch.valid_accuracy, first_best = epoch.epoch;
  }
  EXPECT_EQ(report.selected_epoch, first_best);
  // The inverted set gets worse as training goes on (or ties, where the first epoch must win).
  EXPECT_LT(report.selected_epoch, 3);

  // The written weights are those of the selected epoch: a run that stops there, without a
  // validation set (which draws no random numbers and changes no statistics), ends on them.
  options.epochs = report.selected_epoch;
  options.checkpoint_path = dir / "short.ckpt";
  const TrainingReport short_run = TrainOrDie(train, {}, options, dir / "short.pth");
  EXPECT_EQ(short_run.selected_epoch, report.selected_epoch);
  EXPECT_TRUE(SameWeights(dir / "selected.pth", dir / "short.pth"));
}

TEST_F(ClassifierEngineTest, RejectsBadInputs) {
  const fs::path dir = ScratchDir();
  auto engine = MakeTorchClassifierEngine();
  const ClassifierTrainingOptions options = SmallOptions(dir);
  auto empty = engine->Train({}, {}, options, dir / "m.pth", {});
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  auto wrong_size = engine->Train(MakeSquares(4, 16, 1), {}, options, dir / "m.pth", {});
  EXPECT_EQ(wrong_size.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_size.status().message().find("training slice 0"), std::string::npos);
  if (!torch::cuda::is_available()) {
    ClassifierTrainingOptions gpu = options;
    gpu.device = "cuda:0";
    auto unavailable = engine->Train(MakeSquares(4, 32, 1), {}, gpu, dir / "m.pth", {});
    EXPECT_EQ(unavailable.status().code(), StatusCode::kUnavailable);
  }
  std::vector<Square> squares;
  auto missing =
      engine->ComputeCams(dir / "missing.pth", MakeFloatSlices(2, squares), CamOptionsFor());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
}

}  // namespace
}  // namespace clisc::models::engine_test
