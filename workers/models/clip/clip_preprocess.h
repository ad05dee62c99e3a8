// CLIP's image preprocessing, exactly as the official clip.clip._transform(n_px) applies it to a
// PIL image (torchvision 0.14, Pillow 9.4): Resize(n_px, BICUBIC) of the shorter side,
// CenterCrop(n_px), convert("RGB"), ToTensor, Normalize(CLIP mean, CLIP std). Both PIL modes the
// CLISC code produces are covered: "L" (8-bit gray) and "F" (float32, which the reference step0
// passes: it is resized in float and only clipped to [0,255] and truncated by convert("RGB")).
//
// And the two ways CLISC turns a z-scored slice into CLIP input (`clip.input`):
// - standard: the slice min-max scaled to uint8 as the reference does everywhere else,
//   (x - min) / (max - min + 1e-6) * 255 in float32, truncated; then the "L" transform.
// - reference_pil: the float slice straight into the "F" transform, as step0 does (ambiguity A1:
//   z-scored values become gray levels 0..6).
#pragma once

#include <torch/types.h>

#include <array>
#include <string_view>

#include "common/status.h"
#include "workers/backends/slice_image.h"

namespace clisc::models {

inline constexpr std::array<float, 3> kClipMean = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr std::array<float, 3> kClipStd = {0.26862954f, 0.26130258f, 0.27577711f};

struct ImageSize {
  int height = 0;
  int width = 0;
  bool operator==(const ImageSize&) const = default;
};

struct CropOffset {
  int top = 0;
  int left = 0;
  bool operator==(const CropOffset&) const = default;
};

// torchvision 0.14 Resize(n_px): the shorter side becomes n_px, the longer one
// int(n_px * long / short), truncated.
ImageSize ClipResizedSize(int height, int width, int n_px);

// torchvision CenterCrop(n_px) of an image at least n_px on each side: offsets
// int(round((side - n_px) / 2.0)) with Python's round half to even (42.5 -> 42, 43.5 -> 44).
CropOffset ClipCropOffset(int height, int width, int n_px);

// The Resize step alone (PIL bicubic, antialiased when shrinking; the image is returned unchanged
// when the size does not change). Sizes must be valid (CheckImage).
backends::GrayImage ClipResize(const backends::GrayImage& image, int n_px);
backends::FloatSlice ClipResize(const backends::FloatSlice& image, int n_px);

// The CenterCrop step alone, for an image at least n_px on each side.
backends::GrayImage ClipCenterCrop(const backends::GrayImage& image, int n_px);
backends::FloatSlice ClipCenterCrop(const backends::FloatSlice& image, int n_px);

// Pillow's mode F -> L conversion: values clipped to [0, 255] and truncated (0.99 -> 0,
// 254.6 -> 254); NaN becomes 0.
backends::GrayImage PilFloatToGray(const backends::FloatSlice& image);

// ToTensor + Normalize of a gray image seen as RGB (three equal channels): [3, H, W] float32,
// (v / 255 - mean[c]) / std[c] in float32 as torchvision computes it.
torch::Tensor ClipNormalize(const backends::GrayImage& image);

// The whole transform: [3, n_px, n_px] float32. INVALID_ARGUMENT for an empty image or a pixel
// count that does not match width * height.
StatusOr<torch::Tensor> ClipPreprocess(const backends::GrayImage& image, int n_px);
StatusOr<torch::Tensor> ClipPreprocess(const backends::FloatSlice& image, int n_px);

enum class ClipInputMode { kStandard, kReferencePil };

// "standard" or "reference_pil"; INVALID_ARGUMENT otherwise.
StatusOr<ClipInputMode> ParseClipInputMode(std::string_view text);
std::string_view ClipInputModeName(ClipInputMode mode);

// The reference's slice-to-uint8 scaling (step0 L96-107, step1-2 L58-68): computed on the
// float32 slice as numpy does, (x - min) / float32(double(max - min) + 1e-6) * 255, truncated.
// A constant slice becomes all 0.
backends::GrayImage MinMaxToGray(const backends::FloatSlice& slice);

// One slice as CLIP input [3, n_px, n_px] under `mode`. INVALID_ARGUMENT for bad sizes or a
// non-finite value.
StatusOr<torch::Tensor> ClipSliceInput(const backends::FloatSlice& slice, ClipInputMode mode,
                                       int n_px);

}  // namespace clisc::models
