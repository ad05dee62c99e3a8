#include "workers/models/compute_device.h"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <charconv>

namespace clisc::models {

std::string ComputeDevice::ToString() const {
  return device.str() + "/" + std::string(PrecisionName(precision));
}

StatusOr<torch::Device> ParseDevice(std::string_view text) {
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text.rfind("cuda", 0) != 0)
    return InvalidArgumentError("device '" + std::string(text) + "': expected cpu, cuda or cuda:N");
  int index = 0;
  if (text.size() > 4) {
    const std::string_view digits = text.substr(4);
    if (digits.size() < 2 || digits[0] != ':')
      return InvalidArgumentError("device '" + std::string(text) + "': expected cuda:N");
    const auto [end, error] =
        std::from_chars(digits.data() + 1, digits.data() + digits.size(), index);
    if (error != std::errc() || end != digits.data() + digits.size() || index < 0 || index > 255)
      return InvalidArgumentError("device '" + std::string(text) + "': bad GPU index");
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (count == 0)
    return UnavailableError("device '" + std::string(text) +
                            "': no CUDA GPU is visible to this process (or LibTorch lacks CUDA)");
  if (index >= count)
    return UnavailableError("device '" + std::string(text) + "': only " + std::to_string(count) +
                            " CUDA GPU(s) visible");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

StatusOr<Precision> ParsePrecision(std::string_view text) {
  if (text == "fp32") return Precision::kFloat32;
  if (text == "bf16") return Precision::kBFloat16;
  if (text == "fp16") return Precision::kFloat16;
  return InvalidArgumentError("precision '" + std::string(text) + "': expected fp32, bf16 or fp16");
}

std::string_view PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFloat32:
      return "fp32";
    case Precision::kBFloat16:
      return "bf16";
    case Precision::kFloat16:
      return "fp16";
  }
  return "fp32";
}

StatusOr<ComputeDevice> ParseComputeDevice(std::string_view device, std::string_view precision) {
  auto parsed_device = ParseDevice(device);
  if (!parsed_device.ok()) return parsed_device.status();
  auto parsed_precision = ParsePrecision(precision);
  if (!parsed_precision.ok()) return parsed_precision.status();
  if (*parsed_precision == Precision::kFloat16 && parsed_device->is_cpu())
    return InvalidArgumentError("precision fp16 needs a CUDA device; on the CPU use bf16 or fp32");
  return ComputeDevice{*parsed_device, *parsed_precision};
}

namespace {

torch::ScalarType LowDtype(Precision p) {
  return p == Precision::kFloat16 ? torch::kHalf : torch::kBFloat16;
}

// LibTorch 2.4 replaced the per-device autocast switches with device-generic ones; GPU workers
// run a newer LibTorch than Debian's CPU-only 1.13, so both spellings are kept here, once.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
at::DeviceType AutocastDevice(bool cuda) { return cuda ? at::kCUDA : at::kCPU; }
bool AutocastEnabled(bool cuda) { return at::autocast::is_autocast_enabled(AutocastDevice(cuda)); }
void SetAutocastEnabled(bool cuda, bool enabled) {
  at::autocast::set_autocast_enabled(AutocastDevice(cuda), enabled);
}
torch::ScalarType AutocastDtype(bool cuda) {
  return at::autocast::get_autocast_dtype(AutocastDevice(cuda));
}
void SetAutocastDtype(bool cuda, torch::ScalarType dtype) {
  at::autocast::set_autocast_dtype(AutocastDevice(cuda), dtype);
}
#else
bool AutocastEnabled(bool cuda) {
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void SetAutocastEnabled(bool cuda, bool enabled) {
  if (cuda) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
}
torch::ScalarType AutocastDtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void SetAutocastDtype(bool cuda, torch::ScalarType dtype) {
  if (cuda) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
}
#endif

}  // namespace

InferenceAutocast::InferenceAutocast(const ComputeDevice& compute) {
  if (!compute.reduced()) return;
  active_ = true;
  cuda_ = compute.device.is_cuda();
  previous_enabled_ = AutocastEnabled(cuda_);
  previous_dtype_ = AutocastDtype(cuda_);
  SetAutocastDtype(cuda_, LowDtype(compute.precision));
  SetAutocastEnabled(cuda_, true);
  at::autocast::increment_nesting();
}

InferenceAutocast::~InferenceAutocast() {
  if (!active_) return;
  // The cast cache holds low-precision copies of the weights; drop it when the outermost scope
  // ends, as torch.autocast's __exit__ does.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocastEnabled(cuda_, previous_enabled_);
  SetAutocastDtype(cuda_, previous_dtype_);
}

Float32Scope::Float32Scope()
    : cuda_was_enabled_(AutocastEnabled(true)), cpu_was_enabled_(AutocastEnabled(false)) {
  if (cuda_was_enabled_) SetAutocastEnabled(true, false);
  if (cpu_was_enabled_) SetAutocastEnabled(false, false);
}

Float32Scope::~Float32Scope() {
  if (cuda_was_enabled_) SetAutocastEnabled(true, true);
  if (cpu_was_enabled_) SetAutocastEnabled(false, true);
}

}  // namespace clisc::models
