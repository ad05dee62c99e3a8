// UNet3d against the reference's unet_3D: parameter names and shapes in state_dict order, forward
// shapes, initialization, checkpoints written exactly as Python's torch.save writes a state_dict
// (pickle opcodes, memo and zip records as PyTorch 1.13 emits them), training, and timings.
#include "workers/models/unet/unet3d.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "workers/models/checkpoint_writer.h"

namespace clisc::models {
namespace {

namespace fs = std::filesystem;

// torch.save(module.state_dict(), path) as PyTorch 1.13 writes it for the reference's model: the
// state dict in named_parameters order and the _metadata of every module's version (2 for the
// norm layers, 1 for the others). `key_prefix` prepends to every key (e.g. "module." as
// DataParallel does); with `wrap_in`, the state dict sits under that key beside {"epoch": 7}.
void WriteTorchSaveStateDict(torch::nn::Module& module, const fs::path& path,
                             const std::string& key_prefix = "", const std::string& wrap_in = "") {
  StateDict entries;
  for (auto& [name, tensor] : StateDictOf(module)) entries.emplace_back(key_prefix + name, tensor);
  CheckpointWriteOptions options;
  options.wrap_in = wrap_in;
  options.epoch = 7;
  for (const auto& m : module.named_modules()) {
    const bool norm = m.value()->as<torch::nn::InstanceNorm3d>() != nullptr;
    options.module_versions.emplace_back(m.key(), norm ? 2 : 1);
  }
  ASSERT_TRUE(WriteCheckpoint(path, entries, options).ok());
}

class UNet3dTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    torch::manual_seed(2023);
    dir_ = fs::temp_directory_path() /
           ("unet3d_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

using Shape = std::vector<int64_t>;

TEST_F(UNet3dTest, ParameterNamesAndShapesMatchTheReferenceInStateDictOrder) {
  UNet3d net;
  // unet_3D(feature_scale=4, n_classes=2, in_channels=1): filters 16, 32, 64, 128, 256.
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"conv1.conv1.0.weight", {16, 1, 3, 3, 3}},
      {"conv1.conv1.0.bias", {16}},
      {"conv1.conv2.0.weight", {16, 16, 3, 3, 3}},
      {"conv1.conv2.0.bias", {16}},
      {"conv2.conv1.0.weight", {32, 16, 3, 3, 3}},
      {"conv2.conv1.0.bias", {32}},
      {"conv2.conv2.0.weight", {32, 32, 3, 3, 3}},
      {"conv2.conv2.0.bias", {32}},
      {"conv3.conv1.0.weight", {64, 32, 3, 3, 3}},
      {"conv3.conv1.0.bias", {64}},
      {"conv3.conv2.0.weight", {64, 64, 3, 3, 3}},
      {"conv3.conv2.0.bias", {64}},
      {"conv4.conv1.0.weight", {128, 64, 3, 3, 3}},
      {"conv4.conv1.0.bias", {128}},
      {"conv4.conv2.0.weight", {128, 128, 3, 3, 3}},
      {"conv4.conv2.0.bias", {128}},
      {"center.conv1.0.weight", {256, 128, 3, 3, 3}},
      {"center.conv1.0.bias", {256}},
      {"center.conv2.0.weight", {256, 256, 3, 3, 3}},
      {"center.conv2.0.bias", {256}},
      {"up_concat4.conv.conv1.0.weight", {128, 384, 3, 3, 3}},
      {"up_concat4.conv.conv1.0.bias", {128}},
      {"up_concat4.conv.conv2.0.weight", {128, 128, 3, 3, 3}},
      {"up_concat4.conv.conv2.0.bias", {128}},
      {"up_concat3.conv.conv1.0.weight", {64, 192, 3, 3, 3}},
      {"up_concat3.conv.conv1.0.bias", {64}},
      {"up_concat3.conv.conv2.0.weight", {64, 64, 3, 3, 3}},
      {"up_concat3.conv.conv2.0.bias", {64}},
      {"up_concat2.conv.conv1.0.weight", {32, 96, 3, 3, 3}},
      {"up_concat2.conv.conv1.0.bias", {32}},
      {"up_concat2.conv.conv2.0.weight", {32, 32, 3, 3, 3}},
      {"up_concat2.conv.conv2.0.bias", {32}},
      {"up_concat1.conv.conv1.0.weight", {16, 48, 3, 3, 3}},
      {"up_concat1.conv.conv1.0.bias", {16}},
      {"up_concat1.conv.conv2.0.weight", {16, 16, 3, 3, 3}},
      {"up_concat1.conv.conv2.0.bias", {16}},
      {"final.weight", {2, 16, 1, 1, 1}},
      {"final.bias", {2}},
  };
  std::vector<std::pair<std::string, Shape>> actual;
  for (const auto& p : net->named_parameters())
    actual.emplace_back(p.key(), p.value().sizes().vec());
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(net->named_buffers().size(), 0u);  // InstanceNorm3d(affine=False) keeps no stats
  int64_t count = 0;
  for (const auto& p : net->parameters()) count += p.numel();
  EXPECT_EQ(count, 5'884'050);  // sum of the shapes above
}

TEST_F(UNet3dTest, ForwardKeepsTheSpatialSize) {
  UNet3d net;
  net->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(net->size_multiple(), 16);
  // Not powers of two, but multiples of 16, and anisotropic (64^3: in the timing test).
  EXPECT_EQ(net->forward(torch::randn({1, 1, 48, 80, 32})).sizes().vec(),
            (Shape{1, 2, 48, 80, 32}));

  UNet3dOptions options;
  options.in_channels = 4;
  options.num_classes = 3;
  options.feature_channels = {4, 8, 16};
  UNet3d small(options);
  small->eval();
  EXPECT_EQ(small->size_multiple(), 4);
  EXPECT_EQ(small->forward(torch::randn({2, 4, 12, 20, 8})).sizes().vec(),
            (Shape{2, 3, 12, 20, 8}));
}

TEST_F(UNet3dTest, RejectsInputsItCannotTake) {
  UNet3d net(UNet3dOptions{.feature_channels = {4, 8, 16}});
  EXPECT_THROW(net->forward(torch::randn({1, 1, 10, 12, 12})), c10::Error);  // 10 % 4 != 0
  EXPECT_THROW(net->forward(torch::randn({1, 2, 12, 12, 12})), c10::Error);  // channels
  EXPECT_THROW(net->forward(torch::randn({1, 12, 12, 12})), c10::Error);     // rank
  EXPECT_EQ(MakeUNet3d(UNet3dOptions{.feature_channels = {16}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeUNet3d(UNet3dOptions{.dropout = 1.0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeUNet3d(UNet3dOptions{.in_channels = 0}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(UNet3dTest, ConvWeightsAreKaimingNormalAndBiasesPyTorchDefault) {
  UNet3d net;
  for (const auto& p : net->named_parameters()) {
    const torch::Tensor& t = p.value();
    const int64_t fan_in = t.numel() / t.size(0);
    if (p.key().ends_with(".weight")) {
      if (t.numel() < 10000) continue;  // too few samples for a tight check
      const double expected_std = std::sqrt(2.0 / static_cast<double>(fan_in));
      EXPECT_NEAR(t.std().item<double>(), expected_std, 0.03 * expected_std) << p.key();
      EXPECT_NEAR(t.mean().item<double>(), 0.0, 0.05 * expected_std) << p.key();
    }
  }
  // Biases: uniform(+-1/sqrt(fan_in)) with the fan_in of their conv's weight.
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : net->named_parameters()) params[p.key()] = p.value();
  for (const auto& [name, t] : params) {
    if (!name.ends_with(".bias")) continue;
    const torch::Tensor& w = params[name.substr(0, name.size() - 4) + "weight"];
    const double bound = 1.0 / std::sqrt(static_cast<double>(w.numel() / w.size(0)));
    EXPECT_LE(t.abs().max().item<double>(), bound) << name;
  }
}

TEST_F(UNet3dTest, DropoutActsOnlyInTraining) {
  UNet3d net(UNet3dOptions{.feature_channels = {4, 8, 16}});
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({1, 1, 16, 16, 16});
  net->eval();
  EXPECT_TRUE(torch::equal(net->forward(x), net->forward(x)));
  net->train();
  EXPECT_FALSE(torch::equal(net->forward(x), net->forward(x)));
}

// Every tensor and the output of `loaded` equal those of `original`.
void ExpectSameNetwork(UNet3d& original, UNet3d& loaded) {
  const auto a = original->named_parameters();
  const auto b = loaded->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].key(), b[i].key());
    EXPECT_TRUE(torch::equal(a[i].value(), b[i].value())) << a[i].key();
  }
  original->eval();
  EXPECT_FALSE(loaded->is_training());
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({1, 1, 32, 32, 32});
  EXPECT_TRUE(torch::equal(original->forward(x), loaded->forward(x)));
}

TEST_F(UNet3dTest, LoadsAStateDictSavedAsPythonDoes) {
  UNet3d original;
  const fs::path path = dir_ / "unet_3D_best_model.pth";
  WriteTorchSaveStateDict(*original, path);
  auto loaded = LoadUNet3d(path, UNet3dOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ExpectSameNetwork(original, *loaded);
}

TEST_F(UNet3dTest, LoadsDataParallelAndTrainingCheckpoints) {
  const UNet3dOptions options{.feature_channels = {4, 8, 16, 32}};
  UNet3d original(options);
  const std::vector<std::pair<std::string, std::string>> layouts = {
      {"module.", ""}, {"", "state_dict"}, {"", "model"}, {"module.", "state_dict"}};
  for (const auto& [prefix, wrap] : layouts) {
    SCOPED_TRACE("prefix '" + prefix + "', wrapped in '" + wrap + "'");
    const fs::path path = dir_ / "checkpoint.pth";
    WriteTorchSaveStateDict(*original, path, prefix, wrap);
    auto loaded = LoadUNet3d(path, options);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    ExpectSameNetwork(original, *loaded);
  }
}

TEST_F(UNet3dTest, LoadingAMismatchedCheckpointFailsClearly) {
  UNet3d original(UNet3dOptions{.feature_channels = {4, 8, 16}});
  const fs::path path = dir_ / "small.pth";
  WriteTorchSaveStateDict(*original, path);

  auto wider = LoadUNet3d(path, UNet3dOptions{.feature_channels = {8, 16, 32}});
  ASSERT_FALSE(wider.ok());
  EXPECT_EQ(wider.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wider.status().message().find("conv1.conv1.0.weight"), std::string::npos)
      << wider.status().message();

  // A deeper network misses parameters of the checkpoint's layout: strict loading refuses.
  auto deeper = LoadUNet3d(path, UNet3dOptions{.feature_channels = {4, 8, 16, 32}});
  ASSERT_FALSE(deeper.ok());
  EXPECT_NE(deeper.status().message().find(path.string()), std::string::npos);

  EXPECT_EQ(LoadUNet3d(dir_ / "absent.pth", {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(LoadUNet3d(path, UNet3dOptions{.num_classes = 0}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(UNet3dTest, OneSgdStepLowersTheLossOnAToyTarget) {
  UNet3d net(UNet3dOptions{.dropout = 0.0});  // deterministic loss before and after
  net->train();
  const torch::Tensor x = torch::randn({1, 1, 32, 32, 32});
  const torch::Tensor target = (x > 0.5).to(torch::kLong).squeeze(1);  // bright voxels = class 1
  torch::optim::SGD sgd(net->parameters(),
                        torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), target);
  sgd.zero_grad();
  loss.backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
  sgd.step();
  const torch::Tensor after = torch::nn::functional::cross_entropy(net->forward(x), target);
  std::printf("toy cross-entropy %.5f -> %.5f after one SGD step\n", loss.item<double>(),
              after.item<double>());
  EXPECT_LT(after.item<double>(), loss.item<double>());
}

TEST_F(UNet3dTest, TimesForwardAndBackwardOnA64CubedPatch) {
  UNet3d net;
  net->train();
  const torch::Tensor x = torch::randn({1, 1, 64, 64, 64});
  const torch::Tensor target = torch::randint(0, 2, {1, 64, 64, 64}, torch::kLong);
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
  };
  {
    torch::NoGradGuard no_grad;
    net->forward(torch::randn({1, 1, 32, 32, 32}));  // warm-up: allocator and thread pool
  }
  const auto t0 = Clock::now();
  const torch::Tensor logits = net->forward(x);
  const double forward_s = seconds(t0);
  EXPECT_EQ(logits.sizes().vec(), (Shape{1, 2, 64, 64, 64}));
  const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, target);
  const auto t1 = Clock::now();
  loss.backward();
  const double backward_s = seconds(t1);
  std::printf("unet3d 64^3, batch 1, %d threads: forward %.2f s, backward %.2f s\n",
              torch::get_num_threads(), forward_s, backward_s);
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
}

}  // namespace
}  // namespace clisc::models
