// Image resizing that reproduces Pillow's Image.resize bit for bit. The reference code resizes
// through PIL in three places (torchvision's Resize on the classifier slices, CLIP's bicubic
// preprocessing, SAM's ResizeLongestSide), and the golden fixtures were made that way, so a
// generic bilinear resize would be off by one grey level on many pixels.
//
// Pillow resamples separably with a filter whose support grows with the downscale factor
// (antialiasing), horizontal pass first. For 8-bit images the coefficients are fixed point with
// 22 fraction bits and each pass rounds and clips to uint8; mode "F" images use double
// coefficients and keep float32 between the passes.
#pragma once

#include <cstdint>
#include <vector>

namespace clisc {

enum class PilFilter { kNearest, kBilinear, kBicubic };

// `pixels` is row-major with `channels` interleaved samples per pixel (1 for "L", 3 for "RGB").
// Sizes must be positive; the result has out_width * out_height * channels samples.
std::vector<uint8_t> PilResize(const uint8_t* pixels, int width, int height, int channels,
                               int out_width, int out_height, PilFilter filter);

// Mode "F": one float32 channel.
std::vector<float> PilResize(const float* pixels, int width, int height, int out_width,
                             int out_height, PilFilter filter);

}  // namespace clisc
