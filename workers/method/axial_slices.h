// Axial slices of volumes and the 8-bit images the 2D stages derive from them, each conversion
// the exact rule of the reference (shared/REFERENCE.md sections 1.3, 2, 4 and 6). Every 2D stage
// works on `vol[z, :, :]` of the cropped, normalized volume at its native H x W and does its own
// min-max scaling; the functions here are those scalings.
//
// Arithmetic: the reference's slices are float64 numpy arrays (REFERENCE.md 1.2 step 5), ours are
// float32 voxels, so every scaling promotes the voxels to double and computes in double, which is
// what numpy does on float64 data holding the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/status.h"
#include "common/volume.h"
#include "workers/backends/slice_image.h"

namespace clisc::method {

// ---- Slices of volumes. Pixel (x, y) of slice z is voxel (x, y, z): width = size().x, height =
// size().y, and the pixels are the volume's own memory order, so copying is a single block.

// The float slice z. An out-of-range z gives an empty (0 x 0) slice.
backends::FloatSlice AxialSlice(const FloatVolume& volume, int64_t z);

// The mask slice z as 0/1 (any nonzero voxel is 1). An out-of-range z gives an empty mask.
backends::BinaryMask AxialMask(const LabelVolume& volume, int64_t z);

// Writes `mask` (nonzero -> 1) into slice z. INVALID_ARGUMENT when z is out of range or the mask
// is not size().x by size().y.
Status SetAxialMask(LabelVolume& volume, int64_t z, const backends::BinaryMask& mask);

// An axis-aligned pixel rectangle with inclusive bounds: columns x0..x1, rows y0..y1.
struct PixelBox {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool operator==(const PixelBox&) const = default;
};

// The tight bounding box of the nonzero pixels (the reference's rmin rmax cmin cmax, REFERENCE.md
// 5.2 and 6); nullopt for an empty mask.
std::optional<PixelBox> TightBox(const backends::BinaryMask& mask);

// ---- 8-bit conversions.

// The reference's `((x - min) / (max - min + eps) * 255).astype(np.uint8)`: divide first, then
// multiply, then truncate toward zero. With eps = 0 the maximum maps to exactly 255; a constant
// input (max == min, where numpy would produce NaN) gives all zeros. eps = 1e-6 is the classifier
// input of the CAM stage (REFERENCE.md 4), where the maximum maps to 254.
std::vector<uint8_t> MinMaxToUint8(const float* values, size_t count, double eps = 0.0);

// cv2.equalizeHist, bit for bit (opencv imgproc/src/histogram.cpp): with `first` the lowest
// occupied grey level and `total` the pixel count, lut[first] = 0 and for g > first
// lut[g] = saturate_cast<uchar>(cdf(g) * scale) with cdf(g) the number of pixels in
// (first, g] and scale = 255.f / (total - count(first)). The product is float32 and cv2's
// saturate_cast rounds half to even. A constant image is returned unchanged.
std::vector<uint8_t> EqualizeHist(const std::vector<uint8_t>& pixels);

// The image SAM is prompted on (REFERENCE.md 6, "SAM image"): MinMaxToUint8 with eps 0, then
// EqualizeHist. The SAM backends replicate it to three channels.
backends::GrayImage EqualizedSlice(const backends::FloatSlice& slice);

// The classifier's training image as the CLIP-label stage writes it (REFERENCE.md 2 "Output",
// also the valid split's GT-labelled images): MinMaxToUint8 with eps 0, then Pillow's default
// Image.resize to size x size (bicubic since Pillow 7), ignoring the aspect ratio. Row-major
// size * size bytes; empty for an empty slice or size < 1.
std::vector<uint8_t> ClassifierTrainingImage(const backends::FloatSlice& slice, int size = 224);

// The classifier's input at the CAM stage (REFERENCE.md 4, "Classifier input for each slice"):
// MinMaxToUint8 with eps 1e-6, then torchvision Resize((size, size)) on the PIL image, which is
// Pillow's bilinear resize. Row-major size * size bytes; empty for an empty slice or size < 1.
std::vector<uint8_t> CamInputImage(const backends::FloatSlice& slice, int size = 224);

}  // namespace clisc::method
