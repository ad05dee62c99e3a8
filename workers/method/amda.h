// AMDA, Adaptive Masking-based Data Augmentation (METHOD.md "AMDA"; REFERENCE.md section 5): the
// masked copies of the classifier's 224x224 training images that the aug classifier is trained
// on. Images are row-major 8-bit grey, size x size, as ClassifierTrainingImage writes them.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "common/status.h"
#include "workers/method/axial_slices.h"

namespace clisc::method {

// Scales a box on the native slice grid (width x height, inclusive pixel bounds) to the
// size x size training image, which Pillow resized non-uniformly (REFERENCE.md 5.2, "scale the box
// to 224 coordinates"; the reference's branch never runs, so the rounding is ours). Native column
// c covers [c, c + 1) in pixel-edge coordinates, output column j covers
// [j * width / size, (j + 1) * width / size); the result is every output pixel that overlaps the
// box: x0' = floor(x0 * size / width), x1' = ceil((x1 + 1) * size / width) - 1 (rows alike), in
// exact integer arithmetic. The input is clipped to the slice first; INVALID_ARGUMENT for
// non-positive sizes or a box that misses the slice or has x0 > x1 or y0 > y1.
StatusOr<PixelBox> BoxToImage(const PixelBox& box, int width, int height, int size);

// The paper's adaptive masking of a positive image (step1-3_AMDA.py L74-85 as intended): inside
// `box` (inclusive, image coordinates, clipped to the image), thr = min + (k / 10) * (max - min)
// over the CAM values inside the box (double), and every image pixel inside the box whose CAM
// value is > thr becomes 0. Outside the box nothing changes. `cam` is the CAM on the image's
// size x size grid. k = 8 in the reference. INVALID_ARGUMENT when the image or the CAM is not
// size * size, k is outside 0..10, or the box misses the image.
StatusOr<std::vector<uint8_t>> MaskPositiveSlice(const std::vector<uint8_t>& image, int size,
                                                 const std::vector<float>& cam, const PixelBox& box,
                                                 int k = 8);

// The figure's random masking of a negative image: exactly llround(ratio * N) distinct pixels
// (half away from zero; ratio clamped to [0, 1], N = image.size()) become 0, chosen uniformly.
// The draw, fixed so a seed gives the same pixels everywhere: a partial Fisher-Yates shuffle of
// the indices 0..N-1, where step i swaps index i with index i + r, r uniform in [0, N - i) taken
// from rng() by rejection (reject draws below 2^64 mod (N - i), then r = draw mod (N - i)); the
// first llround(ratio * N) shuffled indices are masked. Pixels already 0 count as masked.
std::vector<uint8_t> MaskNegativeSlice(const std::vector<uint8_t>& image, double ratio,
                                       std::mt19937_64& rng);

// What the reference actually runs on every image, positive or negative (REFERENCE.md 5.3,
// `amda.variant: reference_fallback`): pixels > min + 0.8 * (max - min) of the image become 0
// (threshold in double, as numpy computes it from the uint8 extremes).
std::vector<uint8_t> ReferenceFallbackMask(const std::vector<uint8_t>& image);

}  // namespace clisc::method
