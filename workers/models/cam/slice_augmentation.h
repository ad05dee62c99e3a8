// The classifier's training-image augmentation (classifier.augment): flips, zoom and shift with
// bilinear sampling (zero outside the image), then gamma and contrast jitter. Every image's draw
// is a pure function of (seed, epoch, slice index), so the batches do not depend on loader
// threads or batch order and a resumed run sees the images an uninterrupted one saw. Torch-free.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "workers/roles/classifier_engine.h"

namespace clisc::models {

// One image's transform. The output pixel (row, col) samples the input at
//   u = c + (col - c - shift_x) / zoom,  v = c + (row - c - shift_y) / zoom,  c = (size - 1) / 2,
// mirrored (u -> size - 1 - u) when flip_x and (v -> size - 1 - v) when flip_y; i.e. the image is
// flipped, scaled about its centre and then moved by (shift_x, shift_y) pixels. Intensities
// v in [0, 1] become clamp(v^gamma * contrast, 0, 1).
struct SliceAugmentationDraw {
  bool flip_x = false;
  bool flip_y = false;
  double zoom = 1.0;
  double shift_x = 0.0;  // pixels, positive moves the content right
  double shift_y = 0.0;  // pixels, positive moves the content down
  double gamma = 1.0;
  double contrast = 1.0;
};

// INVALID_ARGUMENT unless 0 < zoom_min <= zoom_max, 0 <= shift < 1, gamma >= 0 and
// 0 <= contrast_min <= contrast_max (also when disabled, so a bad config fails early).
Status CheckAugmentation(const roles::ClassifierAugmentation& options);

// The draw of one training image. A disabled augmentation (or a disabled part: flip false, a
// zero range) gives the identity for that part; the random stream is the same either way.
SliceAugmentationDraw DrawSliceAugmentation(const roles::ClassifierAugmentation& options,
                                            int image_size, uint64_t seed, int epoch,
                                            int64_t slice_index);

// Writes the augmented size x size image (row-major, values in [0, 1]) to `out`. The identity
// draw gives pixel / 255 exactly, as the unaugmented batch does.
void ApplySliceAugmentation(const uint8_t* pixels, int size, const SliceAugmentationDraw& draw,
                            float* out);

// A short text of the options for checkpoint fingerprints ("off" when disabled).
std::string DescribeAugmentation(const roles::ClassifierAugmentation& options);

}  // namespace clisc::models
