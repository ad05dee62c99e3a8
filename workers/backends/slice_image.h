// Plain 2D images that cross the boundary between the roles and the foundation-model backends,
// so role code and the heuristic backends need no LibTorch. Pixels are row-major (x fastest):
// pixel (x, y) is at index y * width + x, the layout of one axial slice of a Volume.
#pragma once

#include <cstdint>
#include <vector>

namespace clisc::backends {

// One axial slice of a preprocessed (z-scored) volume.
struct FloatSlice {
  int width = 0;
  int height = 0;
  std::vector<float> values;
};

// An 8-bit grayscale image, e.g. the histogram-equalized slice SAM is prompted on. The SAM
// backends see it as RGB with three equal channels, as the reference feeds it.
struct GrayImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

// A binary mask on an image's grid (0 or 1 per pixel).
struct BinaryMask {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

}  // namespace clisc::backends
