// Whole-volume U-Net prediction: the sliding window against direct forward passes of the same
// tiny random networks (one window, padding), its coverage and batching, the reference's resize
// path against a zoom -> forward -> zoom built here by hand from scipy's index rule, the
// train/eval mode, and the refusals.
#include "workers/models/unet/unet_inference.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "workers/models/tensor_bridge.h"
#include "workers/segmentation/sliding_window_grid.h"

namespace clisc::models {
namespace {

Geometry TestGeometry() {
  Geometry g;
  g.spacing = {1.0, 1.2, 2.5};
  g.origin = {-90.0, 126.0, -72.0};
  return g;
}

UNet3d TinyNet(int64_t in_channels, std::vector<int64_t> features) {
  UNet3dOptions options;
  options.in_channels = in_channels;
  options.feature_channels = std::move(features);
  StatusOr<UNet3d> net = MakeUNet3d(options);
  EXPECT_TRUE(net.ok()) << net.status().message();
  return *net;
}

// Random channels of (z, y, x) voxels on TestGeometry, offset so they are not centred on 0.
std::vector<FloatVolume> RandomChannels(int64_t count, int64_t z, int64_t y, int64_t x) {
  std::vector<FloatVolume> channels;
  for (int64_t c = 0; c < count; ++c) {
    StatusOr<FloatVolume> v = VolumeFromTensor(torch::randn({z, y, x}) + 0.3 * c, TestGeometry());
    EXPECT_TRUE(v.ok());
    channels.push_back(*v);
  }
  return channels;
}

roles::UNetInferenceOptions Options(int64_t patch, int batch_size = 2) {
  roles::UNetInferenceOptions options;
  options.patch_size = {patch, patch, patch};
  options.batch_size = batch_size;
  return options;
}

torch::Tensor Stack(const std::vector<FloatVolume>& channels) {
  std::vector<torch::Tensor> views;
  for (const FloatVolume& c : channels) views.push_back(AsReadOnlyTensor(c));
  return torch::stack(views);
}

// softmax(model(x)) for one [C, z, y, x] input, in eval mode without gradients.
torch::Tensor DirectSoftmax(UNet3d& model, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  model->eval();
  return torch::softmax(model->forward(input.unsqueeze(0)), 1)[0];
}

class UNetInferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    torch::manual_seed(2023);
  }
};

TEST_F(UNetInferenceTest, OneWindowReproducesTheWholeVolumeForward) {
  UNet3d net = TinyNet(1, {4, 8, 16});
  const std::vector<FloatVolume> channels = RandomChannels(1, 16, 16, 16);
  const torch::Tensor expected = DirectSoftmax(net, Stack(channels));

  StatusOr<FloatVolume> probabilities = PredictUNetProbabilities(net, channels, Options(16));
  ASSERT_TRUE(probabilities.ok()) << probabilities.status().message();
  StatusOr<LabelVolume> labels = PredictUNetLabels(net, channels, Options(16));
  ASSERT_TRUE(labels.ok()) << labels.status().message();

  const double deviation =
      (AsReadOnlyTensor(*probabilities) - expected[1]).abs().max().item<double>();
  EXPECT_LE(deviation, 1e-6);
  std::printf("one window: max |p - p_direct| = %.3g\n", deviation);
  EXPECT_TRUE(torch::equal(AsReadOnlyTensor(*labels), expected.argmax(0).to(torch::kUInt8)));
  EXPECT_EQ(labels->size(), channels[0].size());
  EXPECT_EQ(labels->geometry(), TestGeometry());
  EXPECT_EQ(probabilities->geometry(), TestGeometry());
}

TEST_F(UNetInferenceTest, AxisShorterThanThePatchIsPaddedWithTheChannelMinimum) {
  UNet3d net = TinyNet(2, {4, 8, 16});
  // (z, y, x) = (16, 13, 10): y and x are padded to 16, by 1 + 2 and 3 + 3 voxels.
  const std::vector<FloatVolume> channels = RandomChannels(2, 16, 13, 10);
  const torch::Tensor image = Stack(channels);
  torch::Tensor padded =
      std::get<0>(image.flatten(1).min(1)).view({2, 1, 1, 1}).repeat({1, 16, 16, 16});
  ASSERT_EQ(segmentation::PaddingBefore(13, 16), 1);
  ASSERT_EQ(segmentation::PaddingBefore(10, 16), 3);
  padded.slice(2, 1, 14).slice(3, 3, 13).copy_(image);
  const torch::Tensor expected = DirectSoftmax(net, padded).slice(2, 1, 14).slice(3, 3, 13);

  StatusOr<FloatVolume> probabilities = PredictUNetProbabilities(net, channels, Options(16));
  ASSERT_TRUE(probabilities.ok()) << probabilities.status().message();
  EXPECT_EQ(probabilities->size(), channels[0].size());
  const double deviation =
      (AsReadOnlyTensor(*probabilities) - expected[1]).abs().max().item<double>();
  EXPECT_LE(deviation, 1e-6);
  std::printf("padded window: max |p - p_direct| = %.3g\n", deviation);
}

TEST_F(UNetInferenceTest, LargerVolumeIsCoveredAndBatchingDoesNotChangeTheResult) {
  UNet3d net = TinyNet(2, {4, 8, 16});
  // z needs 3 windows, y 2, and x is shorter than the patch (padded): 6 windows, so batches of
  // 3 run two full forwards while batches of 1 run six.
  const std::vector<FloatVolume> channels = RandomChannels(2, 30, 22, 12);

  StatusOr<FloatVolume> one = PredictUNetProbabilities(net, channels, Options(16, 1));
  StatusOr<FloatVolume> three = PredictUNetProbabilities(net, channels, Options(16, 3));
  ASSERT_TRUE(one.ok()) << one.status().message();
  ASSERT_TRUE(three.ok()) << three.status().message();
  EXPECT_EQ(one->size(), channels[0].size());
  EXPECT_EQ(one->geometry(), TestGeometry());
  // An uncovered voxel would be 0 / 0: every probability is finite and in [0, 1].
  const torch::Tensor p = AsReadOnlyTensor(*one);
  EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  EXPECT_GE(p.min().item<float>(), 0.0f);
  EXPECT_LE(p.max().item<float>(), 1.0f);
  const double batch_deviation = (p - AsReadOnlyTensor(*three)).abs().max().item<double>();
  EXPECT_LE(batch_deviation, 1e-5);
  std::printf("batch 1 vs 3: max |dp| = %.3g\n", batch_deviation);

  StatusOr<LabelVolume> labels_one = PredictUNetLabels(net, channels, Options(16, 1));
  StatusOr<LabelVolume> labels_three = PredictUNetLabels(net, channels, Options(16, 3));
  ASSERT_TRUE(labels_one.ok() && labels_three.ok());
  EXPECT_EQ(labels_one->voxels(), labels_three->voxels());
  EXPECT_EQ(labels_one->geometry(), TestGeometry());
  for (uint8_t v : labels_one->voxels()) ASSERT_LE(v, 1);
}

TEST_F(UNetInferenceTest, ReferenceResizeIsZoomForwardArgmaxZoomBack) {
  UNet3d net = TinyNet(1, {4, 8, 16});
  // 30 slices: zooming 16 back to 30 overshoots the last slice (scipy writes cval 0 there);
  // y = 32 overshoots on the way down to 16 (the input's last row reads 0).
  const int64_t nz = 30, ny = 32, nx = 11, p = 16;
  const std::vector<FloatVolume> channels = RandomChannels(1, nz, ny, nx);
  const FloatVolume& image = channels[0];

  const auto zz = segmentation::NearestZoomIndices(nz, p);
  const auto zy = segmentation::NearestZoomIndices(ny, p);
  const auto zx = segmentation::NearestZoomIndices(nx, p);
  ASSERT_EQ(zy.back(), -1);
  torch::Tensor small = torch::zeros({1, p, p, p});
  auto s = small.accessor<float, 4>();
  for (int64_t k = 0; k < p; ++k) {
    for (int64_t j = 0; j < p; ++j) {
      for (int64_t i = 0; i < p; ++i) {
        const bool inside = zz[k] >= 0 && zy[j] >= 0 && zx[i] >= 0;
        s[0][k][j][i] = inside ? image.at(zx[i], zy[j], zz[k]) : 0.0f;
      }
    }
  }
  const torch::Tensor small_labels = DirectSoftmax(net, small).argmax(0);
  const auto bz = segmentation::NearestZoomIndices(p, nz);
  const auto by = segmentation::NearestZoomIndices(p, ny);
  const auto bx = segmentation::NearestZoomIndices(p, nx);
  ASSERT_EQ(bz.back(), -1);
  LabelVolume expected = image.LikeThis<uint8_t>();
  auto l = small_labels.accessor<int64_t, 3>();
  for (int64_t k = 0; k < nz; ++k) {
    for (int64_t j = 0; j < ny; ++j) {
      for (int64_t i = 0; i < nx; ++i) {
        const bool inside = bz[k] >= 0 && by[j] >= 0 && bx[i] >= 0;
        expected.at(i, j, k) = inside ? static_cast<uint8_t>(l[bz[k]][by[j]][bx[i]]) : 0;
      }
    }
  }

  roles::UNetInferenceOptions options = Options(p);
  options.mode = "reference_resize";
  StatusOr<LabelVolume> labels = PredictUNetLabels(net, channels, options);
  ASSERT_TRUE(labels.ok()) << labels.status().message();
  EXPECT_EQ(labels->voxels(), expected.voxels());
  EXPECT_EQ(labels->geometry(), TestGeometry());
  int64_t foreground = 0;
  for (uint8_t v : expected.voxels()) foreground += v;
  std::printf("reference_resize: %lld of %lld voxels foreground\n",
              static_cast<long long>(foreground), static_cast<long long>(expected.count()));
}

TEST_F(UNetInferenceTest, RunsInEvalModeAndRestoresTheCallersMode) {
  UNet3d net = TinyNet(1, {2, 4});
  const std::vector<FloatVolume> channels = RandomChannels(1, 8, 10, 6);
  net->train();
  StatusOr<FloatVolume> first = PredictUNetProbabilities(net, channels, Options(8));
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_TRUE(net->is_training());
  // Dropout would make two train-mode passes differ; eval inside makes them equal.
  StatusOr<FloatVolume> second = PredictUNetProbabilities(net, channels, Options(8));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->voxels(), second->voxels());
  net->eval();
  ASSERT_TRUE(PredictUNetLabels(net, channels, Options(8)).ok());
  EXPECT_FALSE(net->is_training());
}

TEST_F(UNetInferenceTest, Bfloat16AutocastAgreesWithFloat32) {
  UNet3d net = TinyNet(1, {4, 8, 16});
  const std::vector<FloatVolume> channels = RandomChannels(1, 20, 16, 16);
  roles::UNetInferenceOptions options = Options(16);
  StatusOr<FloatVolume> fp32 = PredictUNetProbabilities(net, channels, options);
  options.precision = "bf16";
  StatusOr<FloatVolume> bf16 = PredictUNetProbabilities(net, channels, options);
  ASSERT_TRUE(fp32.ok() && bf16.ok()) << bf16.status().message();
  const double deviation =
      (AsReadOnlyTensor(*fp32) - AsReadOnlyTensor(*bf16)).abs().max().item<double>();
  EXPECT_LE(deviation, 0.1);
  std::printf("bf16 vs fp32: max |dp| = %.3g\n", deviation);
}

TEST_F(UNetInferenceTest, RefusesBadRequestsClearly) {
  UNet3d net = TinyNet(2, {4, 8, 16});
  const std::vector<FloatVolume> channels = RandomChannels(2, 16, 16, 16);
  auto expect_error = [&](const std::vector<FloatVolume>& input,
                          const roles::UNetInferenceOptions& options, StatusCode code,
                          const std::string& words) {
    StatusOr<LabelVolume> labels = PredictUNetLabels(net, input, options);
    ASSERT_FALSE(labels.ok()) << words;
    EXPECT_EQ(labels.status().code(), code) << labels.status().message();
    EXPECT_NE(labels.status().message().find(words), std::string::npos)
        << labels.status().message();
  };
  roles::UNetInferenceOptions options = Options(16);
  options.patch_size = {16, 18, 16};
  expect_error(channels, options, StatusCode::kInvalidArgument, "multiples of 4");
  options.patch_size = {16, 0, 16};
  expect_error(channels, options, StatusCode::kInvalidArgument, "multiples of 4");

  expect_error({channels[0]}, Options(16), StatusCode::kInvalidArgument, "the model takes 2");
  expect_error({}, Options(16), StatusCode::kInvalidArgument, "no input channels");

  std::vector<FloatVolume> mismatched = channels;
  mismatched[1] = RandomChannels(1, 16, 16, 12)[0];
  expect_error(mismatched, Options(16), StatusCode::kInvalidArgument, "channel 1 is 12x16x16");

  std::vector<FloatVolume> moved = channels;
  moved[1].mutable_geometry().origin[0] += 5.0;
  expect_error(moved, Options(16), StatusCode::kDataLoss, "different geometry");

  options = Options(16);
  options.mode = "tta";
  expect_error(channels, options, StatusCode::kInvalidArgument, "unknown mode 'tta'");
  options = Options(16);
  options.overlap = 1.0;
  expect_error(channels, options, StatusCode::kInvalidArgument, "overlap");
  options = Options(16, 0);
  expect_error(channels, options, StatusCode::kInvalidArgument, "batch_size");
  options = Options(16);
  options.precision = "fp16";  // autocast fp16 exists only on CUDA in LibTorch 1.13
  expect_error(channels, options, StatusCode::kInvalidArgument, "");
}

}  // namespace
}  // namespace clisc::models
