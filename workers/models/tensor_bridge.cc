#include "workers/models/tensor_bridge.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace clisc {
namespace {

std::vector<int64_t> ShapeOf(const Dims& size) { return {size.z, size.y, size.x}; }

template <typename T>
torch::Tensor View(T* data, const Dims& size, torch::ScalarType type) {
  // No deleter: the tensor borrows the volume's buffer.
  return torch::from_blob(data, ShapeOf(size), torch::TensorOptions().dtype(type));
}

std::string ShapeText(const torch::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

// Drops leading size-1 axes; INVALID_ARGUMENT unless three axes remain.
StatusOr<torch::Tensor> AsThreeAxes(const torch::Tensor& tensor) {
  if (!tensor.defined()) return InvalidArgumentError("undefined tensor");
  torch::Tensor t = tensor;
  while (t.dim() > 3 && t.size(0) == 1) t = t.squeeze(0);
  if (t.dim() != 3) {
    return InvalidArgumentError("expected a [nz, ny, nx] tensor, got " + ShapeText(tensor));
  }
  return t;
}

template <typename T>
StatusOr<Volume<T>> CopyInto(const torch::Tensor& t, const Geometry& geometry,
                             torch::ScalarType type) {
  Volume<T> out(Dims{t.size(2), t.size(1), t.size(0)}, T{}, geometry);
  if (out.count() > 0) View(out.data(), out.size(), type).copy_(t);  // device, dtype, strides
  return out;
}

// LibTorch throws c10::Error (a std::exception): this is its adapter, so convert here.
template <typename F>
auto Guarded(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory copying a tensor");
  } catch (const std::exception& e) {
    return InternalError(std::string("tensor copy failed: ") + e.what());
  }
}

}  // namespace

torch::Tensor AsTensor(Volume<float>& volume) {
  return View(volume.data(), volume.size(), torch::kFloat32);
}
torch::Tensor AsTensor(Volume<uint8_t>& volume) {
  return View(volume.data(), volume.size(), torch::kUInt8);
}
torch::Tensor AsReadOnlyTensor(const Volume<float>& volume) {
  return View(const_cast<float*>(volume.data()), volume.size(), torch::kFloat32);
}
torch::Tensor AsReadOnlyTensor(const Volume<uint8_t>& volume) {
  return View(const_cast<uint8_t*>(volume.data()), volume.size(), torch::kUInt8);
}

StatusOr<Volume<float>> VolumeFromTensor(const torch::Tensor& tensor, const Geometry& geometry) {
  return Guarded([&]() -> StatusOr<Volume<float>> {
    ASSIGN_OR_RETURN(const torch::Tensor t, AsThreeAxes(tensor));
    const auto type = t.scalar_type();
    if (type != torch::kFloat32 && type != torch::kFloat16 && type != torch::kBFloat16 &&
        type != torch::kFloat64) {
      return InvalidArgumentError(std::string("expected a floating-point tensor, got ") +
                                  c10::toString(type));
    }
    return CopyInto<float>(t, geometry, torch::kFloat32);
  });
}

StatusOr<Volume<uint8_t>> LabelsFromTensor(const torch::Tensor& tensor, const Geometry& geometry) {
  return Guarded([&]() -> StatusOr<Volume<uint8_t>> {
    ASSIGN_OR_RETURN(const torch::Tensor t, AsThreeAxes(tensor));
    const auto type = t.scalar_type();
    if (type != torch::kBool && !c10::isIntegralType(type, /*includeBool=*/false)) {
      return InvalidArgumentError(std::string("expected a bool or integer label tensor, got ") +
                                  c10::toString(type) + "; round or threshold first");
    }
    if (type != torch::kBool && type != torch::kUInt8 && t.numel() > 0) {
      const int64_t low = t.min().item<int64_t>();
      const int64_t high = t.max().item<int64_t>();
      if (low < 0 || high > 255) {
        return InvalidArgumentError("label values span " + std::to_string(low) + ".." +
                                    std::to_string(high) + ", outside 0..255");
      }
    }
    return CopyInto<uint8_t>(t, geometry, torch::kUInt8);
  });
}

}  // namespace clisc
