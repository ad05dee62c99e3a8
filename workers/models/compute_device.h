// Where and in which precision a network runs: "cpu" or "cuda[:N]", and fp32 (default), bf16 or
// fp16. Reduced precision is autocast for inference: weights stay float32 and LibTorch's autocast
// runs the matmul- and conv-heavy ops in the low precision, keeping reductions and norms in
// float32, so goldens still match within a tolerance we can test.
#pragma once

#include <torch/types.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace clisc::models {

enum class Precision { kFloat32, kBFloat16, kFloat16 };

struct ComputeDevice {
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFloat32;

  bool reduced() const { return precision != Precision::kFloat32; }
  std::string ToString() const;  // "cuda:1/bf16"
};

// "cpu", "cuda" (= cuda:0) or "cuda:N". INVALID_ARGUMENT for anything else; UNAVAILABLE when a
// CUDA device is named and this build or machine has none, or N is past the last GPU.
StatusOr<torch::Device> ParseDevice(std::string_view text);

// "fp32", "bf16" or "fp16". INVALID_ARGUMENT otherwise.
StatusOr<Precision> ParsePrecision(std::string_view text);
std::string_view PrecisionName(Precision precision);

// Both, checked together: fp16 autocast exists only on CUDA in LibTorch 1.13, so fp16 on the CPU
// is INVALID_ARGUMENT rather than a silent float32 run.
StatusOr<ComputeDevice> ParseComputeDevice(std::string_view device, std::string_view precision);

// Inference autocast on the current thread for the scope's lifetime; nothing for fp32. Restores
// the thread's previous autocast state, so scopes nest.
class InferenceAutocast {
 public:
  explicit InferenceAutocast(const ComputeDevice& compute);
  ~InferenceAutocast();
  InferenceAutocast(const InferenceAutocast&) = delete;
  InferenceAutocast& operator=(const InferenceAutocast&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool previous_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat;
};

// Autocast off (CPU and CUDA) for the scope's lifetime, for small parts whose precision matters
// more than their cost (SAM's Fourier position features: a bf16 matmul before sin/cos shifts
// phases by up to ~0.1 rad). Restores the previous state.
class Float32Scope {
 public:
  Float32Scope();
  ~Float32Scope();
  Float32Scope(const Float32Scope&) = delete;
  Float32Scope& operator=(const Float32Scope&) = delete;

 private:
  bool cuda_was_enabled_;
  bool cpu_was_enabled_;
};

}  // namespace clisc::models
