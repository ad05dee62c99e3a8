// Between Volume<T> and torch::Tensor. A volume's voxels are x-fastest, so a [nz, ny, nx] tensor
// views them without copying: voxel (x, y, z) is tensor[z][y][x].
//
// Views (AsTensor, AsReadOnlyTensor) do not own memory. The tensor is valid while the volume
// lives and its voxel vector is not resized or reassigned; a tensor that must outlive the volume
// needs .clone(). Views are float32/uint8 tensors on the CPU; moving one to a GPU (.to(device))
// copies, and so detaches it from the volume.
#pragma once

#include <torch/types.h>

#include <cstdint>

#include "common/status.h"
#include "common/volume.h"

namespace clisc {

// Zero-copy [nz, ny, nx] view; writing through it writes the volume.
torch::Tensor AsTensor(Volume<float>& volume);
torch::Tensor AsTensor(Volume<uint8_t>& volume);

// Zero-copy [nz, ny, nx] view of a volume the caller may not change. LibTorch has no read-only
// tensors, so nothing stops a write: use it only for inputs (forward passes, reductions, copies).
torch::Tensor AsReadOnlyTensor(const Volume<float>& volume);
torch::Tensor AsReadOnlyTensor(const Volume<uint8_t>& volume);

// A view of a temporary would dangle at the end of the statement.
torch::Tensor AsTensor(Volume<float>&& volume) = delete;
torch::Tensor AsTensor(Volume<uint8_t>&& volume) = delete;
torch::Tensor AsReadOnlyTensor(Volume<float>&& volume) = delete;
torch::Tensor AsReadOnlyTensor(Volume<uint8_t>&& volume) = delete;

// Copies a [nz, ny, nx] tensor into a new volume with `geometry`. Leading size-1 axes are
// dropped, so a network's [1, 1, nz, ny, nx] output is accepted as is. Any device, any strides.
// Float32, float16, bfloat16 or float64 -> float32. INVALID_ARGUMENT for other shapes or types.
StatusOr<Volume<float>> VolumeFromTensor(const torch::Tensor& tensor, const Geometry& geometry);

// As VolumeFromTensor, for label maps: bool or integer tensors (e.g. argmax's int64) whose values
// all lie in 0..255. Float tensors are refused; round or threshold them first.
StatusOr<Volume<uint8_t>> LabelsFromTensor(const torch::Tensor& tensor, const Geometry& geometry);

}  // namespace clisc
