// A minimal PNG encoder (8-bit RGB, no interlace) for debug overlays and report images, so they
// need no image library beyond zlib. Pixels are row-major, three bytes per pixel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace clisc {

// The PNG file's bytes; INVALID_ARGUMENT when the size does not match the pixel count.
StatusOr<std::string> EncodePngRgb(int width, int height, const std::vector<uint8_t>& rgb);

}  // namespace clisc
