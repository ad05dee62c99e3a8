#include "common/pil_resample.h"

#include <algorithm>
#include <cmath>

namespace clisc {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Filter {
  double support;
  double (*weight)(double);
};

double BilinearWeight(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Keys' cubic with a = -0.5, as Pillow's bicubic_filter.
double BicubicWeight(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

Filter FilterFor(PilFilter filter) {
  if (filter == PilFilter::kBicubic) return {2.0, BicubicWeight};
  return {1.0, BilinearWeight};
}

// Per output sample: the first input index, the number of taps, and normalized weights (ksize
// per output, zero beyond the taps), as Pillow's precompute_coeffs.
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<double> weights;
};

Coefficients Precompute(int in_size, int out_size, const Filter& filter) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = filter.support * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0.0);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Pillow truncates with (int), which rounds toward zero; center - support + 0.5 can be
    // negative, where truncation and floor differ, and the clamp to 0 makes them agree.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &c.weights[static_cast<size_t>(xx) * c.ksize];
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = filter.weight((x + xmin - center + 0.5) * ss);
      k[x] = w;
      total += w;
    }
    if (total != 0.0) {
      for (int x = 0; x < xmax; ++x) k[x] /= total;
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

std::vector<int32_t> FixedPoint(const std::vector<double>& weights) {
  std::vector<int32_t> out(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const double scaled = weights[i] * (1 << kPrecisionBits);
    out[i] = static_cast<int32_t>(weights[i] < 0 ? scaled - 0.5 : scaled + 0.5);
  }
  return out;
}

uint8_t Clip8(int64_t accumulator) {
  const int64_t v = accumulator >> kPrecisionBits;
  return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
}

// One 8-bit pass along x (horizontal) or y (vertical).
std::vector<uint8_t> Pass8(const std::vector<uint8_t>& in, int width, int height, int channels,
                           int out_size, bool horizontal, const Filter& filter) {
  const int in_size = horizontal ? width : height;
  const Coefficients c = Precompute(in_size, out_size, filter);
  const std::vector<int32_t> k = FixedPoint(c.weights);
  const int out_w = horizontal ? out_size : width;
  const int out_h = horizontal ? height : out_size;
  std::vector<uint8_t> out(static_cast<size_t>(out_w) * out_h * channels);
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      const int o = horizontal ? x : y;
      const int32_t* kk = &k[static_cast<size_t>(o) * c.ksize];
      for (int ch = 0; ch < channels; ++ch) {
        int64_t ss = int64_t{1} << (kPrecisionBits - 1);
        for (int t = 0; t < c.count[o]; ++t) {
          const int src = c.first[o] + t;
          const size_t idx = horizontal ? (static_cast<size_t>(y) * width + src)
                                        : (static_cast<size_t>(src) * width + x);
          ss += static_cast<int64_t>(in[idx * channels + ch]) * kk[t];
        }
        out[(static_cast<size_t>(y) * out_w + x) * channels + ch] = Clip8(ss);
      }
    }
  }
  return out;
}

std::vector<float> PassFloat(const std::vector<float>& in, int width, int height, int out_size,
                             bool horizontal, const Filter& filter) {
  const int in_size = horizontal ? width : height;
  const Coefficients c = Precompute(in_size, out_size, filter);
  const int out_w = horizontal ? out_size : width;
  const int out_h = horizontal ? height : out_size;
  std::vector<float> out(static_cast<size_t>(out_w) * out_h);
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      const int o = horizontal ? x : y;
      const double* kk = &c.weights[static_cast<size_t>(o) * c.ksize];
      double ss = 0.0;
      for (int t = 0; t < c.count[o]; ++t) {
        const int src = c.first[o] + t;
        const size_t idx = horizontal ? (static_cast<size_t>(y) * width + src)
                                      : (static_cast<size_t>(src) * width + x);
        ss += in[idx] * kk[t];
      }
      out[static_cast<size_t>(y) * out_w + x] = static_cast<float>(ss);
    }
  }
  return out;
}

// Pillow's nearest: source index floor((x + 0.5) * scale), per axis, no filtering.
template <typename T>
std::vector<T> Nearest(const T* pixels, int width, int height, int channels, int out_width,
                       int out_height) {
  std::vector<T> out(static_cast<size_t>(out_width) * out_height * channels);
  const double sx = static_cast<double>(width) / out_width;
  const double sy = static_cast<double>(height) / out_height;
  for (int y = 0; y < out_height; ++y) {
    const int src_y = std::min(static_cast<int>((y + 0.5) * sy), height - 1);
    for (int x = 0; x < out_width; ++x) {
      const int src_x = std::min(static_cast<int>((x + 0.5) * sx), width - 1);
      for (int ch = 0; ch < channels; ++ch)
        out[(static_cast<size_t>(y) * out_width + x) * channels + ch] =
            pixels[(static_cast<size_t>(src_y) * width + src_x) * channels + ch];
    }
  }
  return out;
}

}  // namespace

std::vector<uint8_t> PilResize(const uint8_t* pixels, int width, int height, int channels,
                               int out_width, int out_height, PilFilter filter) {
  if (filter == PilFilter::kNearest)
    return Nearest(pixels, width, height, channels, out_width, out_height);
  const Filter f = FilterFor(filter);
  std::vector<uint8_t> image(pixels, pixels + static_cast<size_t>(width) * height * channels);
  // A pass at an unchanged size is the identity (both filters are 1 at 0 and 0 at the other
  // integers), and Pillow skips it too.
  if (out_width != width) {
    image = Pass8(image, width, height, channels, out_width, /*horizontal=*/true, f);
    width = out_width;
  }
  if (out_height != height)
    image = Pass8(image, width, height, channels, out_height, /*horizontal=*/false, f);
  return image;
}

std::vector<float> PilResize(const float* pixels, int width, int height, int out_width,
                             int out_height, PilFilter filter) {
  if (filter == PilFilter::kNearest)
    return Nearest(pixels, width, height, 1, out_width, out_height);
  const Filter f = FilterFor(filter);
  std::vector<float> image(pixels, pixels + static_cast<size_t>(width) * height);
  if (out_width != width) {
    image = PassFloat(image, width, height, out_width, /*horizontal=*/true, f);
    width = out_width;
  }
  if (out_height != height) image = PassFloat(image, width, height, out_height, false, f);
  return image;
}

}  // namespace clisc
