#include "workers/models/tensor_bridge.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace clisc {
namespace {

Geometry SomeGeometry() {
  Geometry g;
  g.spacing = {0.5, 1.0, 2.0};
  g.origin = {1, 2, 3};
  return g;
}

// Voxel (x, y, z) holds x + 10 y + 100 z, so any axis mix-up shows.
Volume<float> Numbered(Dims size) {
  Volume<float> v(size, 0.0f, SomeGeometry());
  for (int64_t z = 0; z < size.z; ++z) {
    for (int64_t y = 0; y < size.y; ++y) {
      for (int64_t x = 0; x < size.x; ++x) v.at(x, y, z) = static_cast<float>(x + 10 * y + 100 * z);
    }
  }
  return v;
}

TEST(TensorBridgeTest, ViewIsZeroCopyAndWritesThrough) {
  Volume<float> volume = Numbered(Dims{4, 3, 2});
  torch::Tensor t = AsTensor(volume);
  EXPECT_EQ(t.data_ptr<float>(), volume.data());
  EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(t.is_contiguous());
  t[1][2][3] = -7.0f;
  EXPECT_EQ(volume.at(3, 2, 1), -7.0f);
  t.mul_(2);
  EXPECT_EQ(volume.at(1, 0, 0), 2.0f);
  volume.at(0, 1, 1) = 42.0f;
  EXPECT_EQ(t[1][1][0].item<float>(), 42.0f);
}

TEST(TensorBridgeTest, ShapeAndAxisOrder) {
  const Volume<float> volume = Numbered(Dims{5, 4, 3});
  torch::Tensor t = AsReadOnlyTensor(volume);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(t.data_ptr<float>(), volume.data());
  for (int64_t z = 0; z < 3; ++z) {
    for (int64_t y = 0; y < 4; ++y) {
      for (int64_t x = 0; x < 5; ++x) {
        ASSERT_EQ(t[z][y][x].item<float>(), volume.at(x, y, z)) << x << "," << y << "," << z;
      }
    }
  }
}

TEST(TensorBridgeTest, LabelViews) {
  Volume<uint8_t> labels(Dims{3, 2, 2}, 0);
  torch::Tensor t = AsTensor(labels);
  EXPECT_EQ(t.scalar_type(), torch::kUInt8);
  EXPECT_EQ(t.data_ptr<uint8_t>(), labels.data());
  t[1][0][2] = 4;
  EXPECT_EQ(labels.at(2, 0, 1), 4);
  const Volume<uint8_t>& read_only = labels;
  EXPECT_EQ(AsReadOnlyTensor(read_only).data_ptr<uint8_t>(), labels.data());
}

TEST(TensorBridgeTest, VolumeFromTensorCopiesWithGeometry) {
  const Volume<float> original = Numbered(Dims{4, 3, 2});
  torch::Tensor source = AsReadOnlyTensor(original).clone();
  auto copy = VolumeFromTensor(source, SomeGeometry());
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->size(), original.size());
  EXPECT_EQ(copy->geometry(), SomeGeometry());
  EXPECT_EQ(copy->voxels(), original.voxels());
  EXPECT_NE(copy->data(), source.data_ptr<float>());
  source.fill_(0);
  EXPECT_EQ(copy->at(3, 2, 1), original.at(3, 2, 1));  // a copy, not a view
}

TEST(TensorBridgeTest, VolumeFromTensorConvertsTypesStridesAndBatchAxes) {
  const Volume<float> original = Numbered(Dims{4, 3, 2});
  const torch::Tensor base = AsReadOnlyTensor(original);
  for (auto type : {torch::kFloat64, torch::kFloat16, torch::kBFloat16}) {
    auto copy = VolumeFromTensor(base.to(type), {});
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    EXPECT_EQ(copy->voxels(), original.voxels()) << c10::toString(type);  // all exact here
  }
  // A non-contiguous tensor: the [x, y, z] transpose, transposed back.
  torch::Tensor transposed = base.permute({2, 1, 0}).contiguous().permute({2, 1, 0});
  ASSERT_FALSE(transposed.is_contiguous());
  auto strided = VolumeFromTensor(transposed, {});
  ASSERT_TRUE(strided.ok());
  EXPECT_EQ(strided->voxels(), original.voxels());
  auto batched = VolumeFromTensor(base.unsqueeze(0).unsqueeze(0), {});
  ASSERT_TRUE(batched.ok());
  EXPECT_EQ(batched->size(), original.size());
  if (torch::cuda::is_available()) {
    auto from_gpu = VolumeFromTensor(base.to(torch::kCUDA), {});
    ASSERT_TRUE(from_gpu.ok()) << from_gpu.status().ToString();
    EXPECT_EQ(from_gpu->voxels(), original.voxels());
  } else {
    GTEST_LOG_(INFO) << "no CUDA device: the GPU-to-volume copy is not exercised";
  }
}

TEST(TensorBridgeTest, VolumeFromTensorRejectsBadInput) {
  EXPECT_EQ(VolumeFromTensor(torch::zeros({4, 4}), {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(VolumeFromTensor(torch::zeros({2, 2, 2, 2}), {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(VolumeFromTensor(torch::zeros({2, 2, 2}, torch::kInt32), {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(VolumeFromTensor(torch::Tensor(), {}).status().code(), StatusCode::kInvalidArgument);
  auto empty = VolumeFromTensor(torch::zeros({0, 3, 3}), {});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->count(), 0);
}

TEST(TensorBridgeTest, LabelsFromTensor) {
  torch::Tensor argmax =
      torch::tensor({0, 1, 2, 4, 3, 0, 255, 1}, torch::kInt64).reshape({2, 2, 2});
  auto labels = LabelsFromTensor(argmax.unsqueeze(0), SomeGeometry());
  ASSERT_TRUE(labels.ok()) << labels.status().ToString();
  EXPECT_EQ(labels->voxels(), (std::vector<uint8_t>{0, 1, 2, 4, 3, 0, 255, 1}));
  EXPECT_EQ(labels->at(1, 1, 0), 4);
  EXPECT_EQ(labels->geometry(), SomeGeometry());
  auto mask = LabelsFromTensor(torch::ones({2, 2, 2}, torch::kBool), {});
  ASSERT_TRUE(mask.ok());
  EXPECT_EQ(mask->voxels(), std::vector<uint8_t>(8, 1));
  auto too_big = LabelsFromTensor(torch::full({2, 2, 2}, 300, torch::kInt32), {});
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.status().message().find("0..255"), std::string::npos);
  EXPECT_EQ(LabelsFromTensor(torch::full({2, 2, 2}, -1, torch::kInt64), {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(LabelsFromTensor(torch::zeros({2, 2, 2}), {}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clisc
