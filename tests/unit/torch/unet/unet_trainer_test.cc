// TrainUNet on tiny synthetic cases: bit-identical resume after cancellation, learning an easy
// task, data parallelism on two CPU replicas, the three losses against hand-computed values,
// checkpoints from another setup, validation-mode selection, and the written model's format.
#include "workers/models/unet/unet_trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/volume_io.h"
#include "tests/unit/test_volumes.h"
#include "workers/models/checkpoint_reader.h"
#include "workers/models/checkpoint_writer.h"
#include "workers/models/unet/torch_unet_engine.h"
#include "workers/models/unet/unet3d.h"

namespace clisc::models {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::TempDir;

// A case with a bright cube (the tumor) in noise; the label marks the cube.
roles::UNetCaseFiles WriteCubeCase(const fs::path& dir, const std::string& id, uint32_t seed) {
  const Dims size{22, 18, 20};
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  std::uniform_int_distribution<int> corner(2, 9);
  const int cx = corner(rng), cy = corner(rng) - 1, cz = corner(rng);
  FloatVolume image(size);
  LabelVolume label(size);
  for (int64_t z = 0; z < size.z; ++z) {
    for (int64_t y = 0; y < size.y; ++y) {
      for (int64_t x = 0; x < size.x; ++x) {
        const bool inside = x >= cx && x < cx + 8 && y >= cy && y < cy + 8 && z >= cz && z < cz + 8;
        image.at(x, y, z) = noise(rng) + (inside ? 2.0f : 0.0f);
        label.at(x, y, z) = inside ? 1 : 0;
      }
    }
  }
  roles::UNetCaseFiles files;
  files.id = id;
  files.channels = {dir / (id + "_flair.nii")};
  files.label = dir / (id + "_label.nii");
  EXPECT_TRUE(WriteVolume(image, files.channels[0]).ok());
  EXPECT_TRUE(WriteVolume(label, files.label).ok());
  return files;
}

class UNetTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    for (int i = 0; i < 4; ++i) {
      cases_.push_back(WriteCubeCase(dir_.path(), "case" + std::to_string(i), 100 + i));
    }
  }

  roles::UNetTrainingOptions TinyOptions(int64_t iterations) const {
    roles::UNetTrainingOptions o;
    o.architecture.feature_channels = {2, 4};
    o.architecture.dropout = 0.3;
    o.patch_size = {16, 16, 16};
    o.batch_size = 2;
    o.max_iterations = iterations;
    o.loader_threads = 1;
    o.checkpoint_every = 2;
    o.seed = 7;
    return o;
  }

  fs::path Path(const std::string& name) const { return dir_.path() / name; }

  TempDir dir_{"unet_trainer"};
  std::vector<roles::UNetCaseFiles> cases_;
};

StateDict ReadModel(const fs::path& path) {
  StatusOr<StateDict> dict = ReadCheckpoint(path);
  EXPECT_TRUE(dict.ok()) << dict.status().ToString();
  return dict.ok() ? *dict : StateDict{};
}

double MaxDifference(const StateDict& a, const StateDict& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    worst = std::max(worst, (a[i].second - b[i].second).abs().max().item<double>());
  }
  return worst;
}

bool Identical(const StateDict& a, const StateDict& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || !torch::equal(a[i].second, b[i].second)) return false;
  }
  return true;
}

TEST_F(UNetTrainerTest, ResumeAfterCancellationReproducesTheUninterruptedRun) {
  roles::UNetTrainingOptions options = TinyOptions(6);
  options.checkpoint_path = Path("straight.ckpt");
  std::vector<std::string> messages;
  const StatusOr<roles::UNetTrainingReport> straight =
      TrainUNet(cases_, options, Path("straight.pth"), [&](double, const std::string& m) {
        messages.push_back(m);
        return true;
      });
  ASSERT_TRUE(straight.ok()) << straight.status().ToString();
  EXPECT_EQ(straight->iterations, 6);
  EXPECT_EQ(straight->resumed_after_iteration, 0);
  EXPECT_EQ(straight->selected_iteration, 6);
  ASSERT_EQ(messages.size(), 6u);
  EXPECT_EQ(messages[2].rfind("iteration 3/6 loss ", 0), 0u) << messages[2];
  EXPECT_NE(messages[2].find(" it/s ETA "), std::string::npos) << messages[2];

  options.checkpoint_path = Path("interrupted.ckpt");
  int calls = 0;
  const StatusOr<roles::UNetTrainingReport> cancelled =
      TrainUNet(cases_, options, Path("resumed.pth"),
                [&](double, const std::string&) { return ++calls < 3; });
  ASSERT_EQ(cancelled.status().code(), StatusCode::kCancelled) << cancelled.status().ToString();
  EXPECT_NE(cancelled.status().message().find("iteration 2 remains"), std::string::npos)
      << cancelled.status().message();
  EXPECT_FALSE(fs::exists(Path("resumed.pth")));
  const StatusOr<roles::UNetTrainingReport> resumed =
      TrainUNet(cases_, options, Path("resumed.pth"), nullptr);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->resumed_after_iteration, 2);
  EXPECT_EQ(resumed->iterations, 6);
  ASSERT_EQ(resumed->losses.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(resumed->losses[i].loss, straight->losses[i].loss) << "step " << i + 1;
    EXPECT_EQ(resumed->losses[i].lr, straight->losses[i].lr) << "step " << i + 1;
  }
  EXPECT_TRUE(Identical(ReadModel(Path("straight.pth")), ReadModel(Path("resumed.pth"))))
      << "max difference "
      << MaxDifference(ReadModel(Path("straight.pth")), ReadModel(Path("resumed.pth")));
  // The schedule: step k runs at lr0 (1 - (k - 1) / max)^0.9.
  EXPECT_DOUBLE_EQ(straight->losses[0].lr, 0.01);
  EXPECT_DOUBLE_EQ(straight->losses[3].lr, 0.01 * std::pow(0.5, 0.9));
}

TEST_F(UNetTrainerTest, LossGoesDownOnAnEasyTask) {
  roles::UNetTrainingOptions options = TinyOptions(30);
  options.architecture.feature_channels = {4, 8};
  options.architecture.dropout = 0;
  options.lr = 0.05;
  const StatusOr<roles::UNetTrainingReport> report =
      TrainUNet(cases_, options, Path("easy.pth"), nullptr);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->losses.size(), 30u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += report->losses[i].loss / 5;
    last += report->losses[25 + i].loss / 5;
  }
  EXPECT_LT(last, 0.6 * first) << "first " << first << " last " << last;
  EXPECT_EQ(report->cache_misses, 4);  // each case read once
  EXPECT_GT(report->cache_hits, 0);
  EXPECT_GT(report->mean_step_seconds, 0);
  EXPECT_GE(report->mean_loader_wait_seconds, 0);
  std::printf(
      "tiny {4,8} net, 16^3 patch, batch 2: %.4f s/step, loader wait %.4f s; loss %.3f -> "
      "%.3f\n",
      report->mean_step_seconds, report->mean_loader_wait_seconds, first, last);
}

TEST_F(UNetTrainerTest, TwoCpuReplicasMatchOneReplica) {
  roles::UNetTrainingOptions options = TinyOptions(3);
  options.architecture.dropout = 0;
  options.batch_size = 3;  // uneven shares: 2 + 1
  options.weight_decay = 1e-2;
  for (const std::string loss : {"ce", "gce"}) {
    options.loss = loss;
    options.devices = {"cpu"};
    const auto one = TrainUNet(cases_, options, Path("one.pth"), nullptr);
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    options.devices = {"cpu", "cpu"};
    const auto two = TrainUNet(cases_, options, Path("two.pth"), nullptr);
    ASSERT_TRUE(two.ok()) << two.status().ToString();
    const double difference = MaxDifference(ReadModel(Path("one.pth")), ReadModel(Path("two.pth")));
    EXPECT_LT(difference, 1e-5) << loss;
    torch::manual_seed(options.seed);  // the seeded init both runs started from
    const UNet3d initial = MakeUNet3d(UNet3dOptions{1, 2, {2, 4}, 0}).value();
    EXPECT_GT(MaxDifference(ReadModel(Path("one.pth")), StateDictOf(*initial)), 1e-4);
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(one->losses[i].loss, two->losses[i].loss, 1e-5);
    std::printf("%s: one vs two replicas, max weight difference %.3g\n", loss.c_str(), difference);
  }
}

TEST(UNetLoss, MatchesHandComputedValuesOn2x2x2) {
  // Voxel v has logits (0, a_v) and label t_v, so p1 = sigmoid(a_v) and CE_v = log(1 + e^{-a})
  // for t = 1, log(1 + e^{a}) for t = 0.
  const std::vector<float> a = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f, 1.5f, -0.5f};
  const std::vector<int64_t> t = {1, 0, 1, 1, 0, 0, 0, 1};
  torch::Tensor logits = torch::zeros({1, 2, 2, 2, 2});
  torch::Tensor labels = torch::zeros({1, 2, 2, 2}, torch::kLong);
  for (int v = 0; v < 8; ++v) {
    logits.view({2, 8})[1][v] = a[v];
    labels.view({8})[v] = t[v];
  }
  double ce = 0, gce = 0, inter0 = 0, inter1 = 0, p0sq = 0, p1sq = 0, t0 = 0, t1 = 0;
  const double q = 0.7;
  for (int v = 0; v < 8; ++v) {
    const double p1 = 1 / (1 + std::exp(-double(a[v]))), p0 = 1 - p1;
    const double py = t[v] == 1 ? p1 : p0;
    ce += -std::log(py) / 8;
    gce += (1 - std::pow(py, q)) / q / 8;
    inter1 += p1 * t[v];
    inter0 += p0 * (1 - t[v]);
    p1sq += p1 * p1;
    p0sq += p0 * p0;
    t1 += t[v];
    t0 += 1 - t[v];
  }
  const double dice = ((1 - (2 * inter0 + 1e-5) / (p0sq + t0 + 1e-5)) +
                       (1 - (2 * inter1 + 1e-5) / (p1sq + t1 + 1e-5))) /
                      2;
  const auto value = [&](const char* name) {
    return ComputeSegmentationLoss(ParseSegmentationLoss(name).value(), logits, labels, q)
        .item<double>();
  };
  EXPECT_NEAR(value("ce"), ce, 1e-6);
  EXPECT_NEAR(value("ce_dice"), 0.5 * (ce + dice), 1e-6);
  EXPECT_NEAR(value("gce"), gce, 1e-6);
  // The same numbers PyTorch gives (F.cross_entropy, SSL4MIS DiceLoss, GCE), computed once.
  EXPECT_NEAR(ce, 0.5573024, 1e-6);
  EXPECT_NEAR(0.5 * (ce + dice), 0.3955529, 1e-6);
  EXPECT_NEAR(gce, 0.4031456, 1e-6);
  EXPECT_FALSE(ParseSegmentationLoss("dice").ok());
  // A confident mistake keeps a finite GCE gradient.
  torch::Tensor extreme = torch::tensor({0.0f, 200.0f}).view({1, 2, 1, 1, 1}).requires_grad_();
  ComputeSegmentationLoss(SegmentationLoss::kGeneralizedCrossEntropy, extreme,
                          torch::zeros({1, 1, 1, 1}, torch::kLong), q)
      .backward();
  EXPECT_TRUE(torch::isfinite(extreme.grad()).all().item<bool>());
}

TEST_F(UNetTrainerTest, CheckpointOfAnotherSetupIsIgnored) {
  roles::UNetTrainingOptions options = TinyOptions(2);
  options.checkpoint_path = Path("shared.ckpt");
  ASSERT_TRUE(TrainUNet(cases_, options, Path("first.pth"), nullptr).ok());
  ASSERT_TRUE(fs::exists(options.checkpoint_path));
  roles::UNetTrainingOptions other = options;
  other.lr = 0.02;
  other.max_iterations = 4;
  const auto report = TrainUNet(cases_, other, Path("other.pth"), nullptr);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->resumed_after_iteration, 0);
  EXPECT_EQ(report->losses.size(), 4u);
  other.checkpoint_path.clear();
  ASSERT_TRUE(TrainUNet(cases_, other, Path("fresh.pth"), nullptr).ok());
  EXPECT_TRUE(Identical(ReadModel(Path("other.pth")), ReadModel(Path("fresh.pth"))));
  // A file that is no checkpoint at all is ignored the same way.
  { std::ofstream(Path("garbage.ckpt")) << "garbage"; }
  other.checkpoint_path = Path("garbage.ckpt");
  const auto after_garbage = TrainUNet(cases_, other, Path("after_garbage.pth"), nullptr);
  ASSERT_TRUE(after_garbage.ok()) << after_garbage.status().ToString();
  EXPECT_TRUE(Identical(ReadModel(Path("after_garbage.pth")), ReadModel(Path("fresh.pth"))));
}

TEST_F(UNetTrainerTest, WrittenModelLoadsWithTheReferenceNames) {
  roles::UNetTrainingOptions options = TinyOptions(1);
  ASSERT_TRUE(TrainUNet(cases_, options, Path("model.pth"), nullptr).ok());
  const StateDict dict = ReadModel(Path("model.pth"));
  ASSERT_FALSE(dict.empty());
  EXPECT_EQ(dict.front().first, "conv1.conv1.0.weight");
  EXPECT_EQ(dict.back().first, "final.bias");
  StatusOr<UNet3d> loaded = LoadUNet3d(Path("model.pth"), UNet3dOptions{1, 2, {2, 4}, 0.3});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->forward(torch::zeros({1, 1, 16, 16, 16})).sizes(),
            (std::vector<int64_t>{1, 2, 16, 16, 16}));

  // The engine predicts with it (loaded once, kept), on the input grid.
  auto engine = MakeTorchUNetEngine();
  roles::UNetInferenceOptions inference;
  inference.architecture = options.architecture;
  inference.patch_size = {16, 16, 16};
  const FloatVolume image = ReadVolume<float>(cases_[0].channels[0]).value();
  const StatusOr<LabelVolume> predicted = engine->Predict(Path("model.pth"), {image}, inference);
  ASSERT_TRUE(predicted.ok()) << predicted.status().ToString();
  EXPECT_EQ(predicted->size(), image.size());
  EXPECT_EQ(engine->Predict(Path("missing.pth"), {image}, inference).status().code(),
            StatusCode::kNotFound);

  // Bad options are refused before any work.
  options.patch_size = {16, 15, 16};
  EXPECT_EQ(TrainUNet(cases_, options, Path("x.pth"), nullptr).status().code(),
            StatusCode::kInvalidArgument);
  options.patch_size = {16, 16, 16};
  options.loss = "dice";
  EXPECT_EQ(TrainUNet(cases_, options, Path("x.pth"), nullptr).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainUNet({}, TinyOptions(1), Path("x.pth"), nullptr).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(UNetTrainerTest, ValidationKeepsTheFirstBestWeights) {
  roles::UNetTrainingOptions options = TinyOptions(6);
  options.architecture.dropout = 0;
  options.valid = {cases_[2], cases_[3]};
  options.validate_every = 2;
  options.validation_inference.patch_size = {16, 16, 16};
  options.checkpoint_path = Path("valid.ckpt");
  const auto report = TrainUNet(cases_, options, Path("best.pth"), nullptr);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->validations.size(), 3u);
  size_t best = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(report->validations[i].iteration, 2 * static_cast<int64_t>(i + 1));
    EXPECT_GE(report->validations[i].mean_dice, 0.0);
    EXPECT_LE(report->validations[i].mean_dice, 1.0);
    if (report->validations[i].mean_dice > report->validations[best].mean_dice) best = i;
  }
  EXPECT_EQ(report->selected_iteration, report->validations[best].iteration);
  // Resuming a finished run trains nothing and selects the same weights.
  const auto again = TrainUNet(cases_, options, Path("again.pth"), nullptr);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->resumed_after_iteration, 6);
  EXPECT_EQ(again->selected_iteration, report->selected_iteration);
  EXPECT_TRUE(Identical(ReadModel(Path("best.pth")), ReadModel(Path("again.pth"))));
}

// Not a test: step times (run with --gtest_also_run_disabled_tests); noisy on a shared machine.
TEST_F(UNetTrainerTest, DISABLED_MeasureStepTime) {
  torch::set_num_threads(2);
  for (const auto& [features, patch] : std::vector<std::pair<std::vector<int64_t>, int64_t>>{
           {{2, 4}, 16}, {{8, 16, 32, 64, 128}, 64}}) {
    roles::UNetTrainingOptions options = TinyOptions(patch == 16 ? 20 : 3);
    options.architecture.feature_channels = features;
    options.patch_size = {patch, patch, patch};
    // The cases are smaller than 64^3: patches are mostly padding, which costs the step nothing.
    const auto report = TrainUNet(cases_, options, Path("m.pth"), nullptr);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    std::printf("features %zu levels, patch %ld^3, batch 2: %.3f s/step (loader wait %.3f s)\n",
                features.size(), static_cast<long>(patch), report->mean_step_seconds,
                report->mean_loader_wait_seconds);
  }
}

}  // namespace
}  // namespace clisc::models
