// Device and precision parsing, and the inference autocast scope.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "workers/models/compute_device.h"

namespace clisc::models {
namespace {

TEST(ComputeDeviceTest, ParsesCpuAndRejectsMalformedNames) {
  auto cpu = ParseDevice("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_TRUE(cpu->is_cpu());
  for (const char* bad : {"", "gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda0", "cuda:1:2"}) {
    auto parsed = ParseDevice(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ComputeDeviceTest, CudaIsUnavailableWithoutAGpuAndIndexedWithOne) {
  const auto count = torch::cuda::device_count();
  auto first = ParseDevice("cuda");
  auto past_last = ParseDevice("cuda:" + std::to_string(count));
  ASSERT_FALSE(past_last.ok());
  EXPECT_EQ(past_last.status().code(), StatusCode::kUnavailable);
  if (count == 0) {
    ASSERT_FALSE(first.ok());
    EXPECT_EQ(first.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(first.status().message().find("no CUDA GPU"), std::string::npos);
  } else {
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE(first->is_cuda());
    EXPECT_EQ(first->index(), 0);
  }
}

TEST(ComputeDeviceTest, PrecisionNamesRoundTripAndFp16NeedsCuda) {
  for (const char* name : {"fp32", "bf16", "fp16"}) {
    auto p = ParsePrecision(name);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ(PrecisionName(*p), name);
  }
  EXPECT_FALSE(ParsePrecision("float16").ok());
  auto fp16_cpu = ParseComputeDevice("cpu", "fp16");
  ASSERT_FALSE(fp16_cpu.ok());
  EXPECT_EQ(fp16_cpu.status().code(), StatusCode::kInvalidArgument);
  auto bf16_cpu = ParseComputeDevice("cpu", "bf16");
  ASSERT_TRUE(bf16_cpu.ok());
  EXPECT_EQ(bf16_cpu->ToString(), "cpu/bf16");
}

TEST(ComputeDeviceTest, AutocastRunsMatmulInBf16AndRestoresOnExit) {
  const torch::Tensor a = torch::randn({8, 8});
  EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat);
  {
    InferenceAutocast outer(ComputeDevice{torch::kCPU, Precision::kBFloat16});
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
    {
      InferenceAutocast fp32(ComputeDevice{torch::kCPU, Precision::kFloat32});
      EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);  // fp32 scope changes nothing
    }
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat);
}

}  // namespace
}  // namespace clisc::models
