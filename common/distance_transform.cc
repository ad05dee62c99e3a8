#include "common/distance_transform.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

namespace clisc {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Lines of the y and z passes are gathered this many at a time (adjacent x), so that each read of
// a strided row brings in whole cache lines of useful values instead of one double.
constexpr int64_t kLineBlock = 32;

// Pass along x on the binary input for one line: the squared distance in mm to the nearest
// feature in the line (+inf without one), filled one gap between features at a time.
void FeatureDistanceAlongX(const uint8_t* in, int64_t nx, double spacing, double* d) {
  int64_t prev = -1;  // the last feature before the gap, -1 when none
  int64_t x = 0;
  while (true) {
    int64_t next = x;
    while (next < nx && !in[next]) ++next;  // the feature after the gap, nx when none
    if (prev < 0 && next == nx) {
      std::fill(d + x, d + nx, kInf);
    } else if (prev < 0) {
      for (int64_t i = x; i < next; ++i) {
        const double mm = spacing * static_cast<double>(next - i);
        d[i] = mm * mm;
      }
    } else if (next == nx) {
      for (int64_t i = x; i < next; ++i) {
        const double mm = spacing * static_cast<double>(i - prev);
        d[i] = mm * mm;
      }
    } else {
      for (int64_t i = x; i < next; ++i) {
        const double mm = spacing * static_cast<double>(std::min(i - prev, next - i));
        d[i] = mm * mm;
      }
    }
    if (next == nx) return;
    d[next] = 0.0;
    prev = next;
    x = next + 1;
  }
}

// Lower envelope of the parabolas f[v] + (spacing * (q - v))^2 over lines of one length n,
// written to d. Points with f = +inf carry no parabola; a line of only those stays +inf.
class LowerEnvelope {
 public:
  LowerEnvelope(int64_t n, double spacing)
      : spacing_(spacing),
        vertex_(static_cast<size_t>(n)),
        height_(static_cast<size_t>(n)),
        boundary_(static_cast<size_t>(n) + 1),
        inverse_gap_(static_cast<size_t>(n)) {
    // 1 / (2 s^2 (q - v)) for every gap, so the intersections need no division.
    for (int64_t g = 1; g < n; ++g) inverse_gap_[g] = 1.0 / (2.0 * spacing * spacing * g);
  }

  void Run(const double* f, int64_t n, double* d) {
    int64_t* vertex = vertex_.data();
    double* height = height_.data();
    double* boundary = boundary_.data();
    const double* inverse_gap = inverse_gap_.data();
    int64_t q = 0;
    while (q < n && f[q] == kInf) ++q;
    if (q == n) {
      std::fill(d, d + n, kInf);
      return;
    }
    // The first parabola is lowest from -inf, so the popping below always stops at k = 0.
    int64_t k = 0;  // index of the rightmost parabola of the envelope
    vertex[0] = q;
    height[0] = f[q];
    boundary[0] = -kInf;
    for (++q; q < n; ++q) {
      const double fq = f[q];
      if (fq == kInf) continue;
      double cross;
      while (true) {
        // Where parabola q overtakes parabola vertex[k], written so that no large squares cancel.
        cross = 0.5 * static_cast<double>(q + vertex[k]) +
                (fq - height[k]) * inverse_gap[q - vertex[k]];
        if (cross > boundary[k]) break;
        --k;  // that parabola is nowhere the lowest
      }
      ++k;
      vertex[k] = q;
      height[k] = fq;
      boundary[k] = cross;
    }
    boundary[k + 1] = kInf;
    int64_t j = 0;
    for (q = 0; q < n; ++q) {
      while (boundary[j + 1] < static_cast<double>(q)) ++j;
      const double mm = spacing_ * static_cast<double>(q - vertex[j]);
      d[q] = height[j] + mm * mm;
    }
  }

 private:
  double spacing_;
  std::vector<int64_t> vertex_;
  std::vector<double> height_;  // f at each vertex, kept so the line is not read again
  std::vector<double> boundary_;
  std::vector<double> inverse_gap_;
};

// One envelope pass over the lines that start at base + x (x in [0, nx)) and run n points
// `stride` apart. Blocks of adjacent lines are transposed into a buffer, solved, and written back.
// With `selected`, only the lines x with selected[x] != 0 are solved.
class EnvelopePass {
 public:
  EnvelopePass(int64_t nx, int64_t n, int64_t stride, double spacing)
      : nx_(nx),
        n_(n),
        stride_(stride),
        envelope_(n, spacing),
        in_(static_cast<size_t>(kLineBlock * n)),
        out_(static_cast<size_t>(kLineBlock * n)) {}

  void Run(double* base, const uint8_t* selected = nullptr) {
    if (n_ <= 1) return;  // a single point is its own envelope
    for (int64_t x0 = 0; x0 < nx_; x0 += kLineBlock) {
      const int64_t lines = std::min(kLineBlock, nx_ - x0);
      if (selected &&
          std::all_of(selected + x0, selected + x0 + lines, [](uint8_t s) { return s == 0; })) {
        continue;
      }
      for (int64_t k = 0; k < n_; ++k) {
        const double* row = base + k * stride_ + x0;
        for (int64_t j = 0; j < lines; ++j) in_[j * n_ + k] = row[j];
      }
      for (int64_t j = 0; j < lines; ++j) {
        if (selected && !selected[x0 + j]) continue;
        envelope_.Run(in_.data() + j * n_, n_, out_.data() + j * n_);
      }
      for (int64_t k = 0; k < n_; ++k) {
        double* row = base + k * stride_ + x0;
        for (int64_t j = 0; j < lines; ++j)
          if (!selected || selected[x0 + j]) row[j] = out_[j * n_ + k];
      }
    }
  }

 private:
  int64_t nx_, n_, stride_;
  LowerEnvelope envelope_;
  std::vector<double> in_, out_;  // a block of lines, each contiguous
};

bool ValidSpacing(const Spacing3& spacing) {
  return std::all_of(spacing.begin(), spacing.end(),
                     [](double s) { return s > 0.0 && std::isfinite(s); });
}

// The x and y passes: afterwards d holds, per slice, the squared 2D distance to the features of
// that slice. They run slice by slice, while the slice is still in cache.
void TransformSlices(const uint8_t* features, const Dims& size, const Spacing3& spacing,
                     double* d) {
  const int64_t plane = size.x * size.y;
  EnvelopePass along_y(size.x, size.y, size.x, spacing[1]);
  for (int64_t z = 0; z < size.z; ++z) {
    double* slice = d + z * plane;
    for (int64_t y = 0; y < size.y; ++y) {
      FeatureDistanceAlongX(features + z * plane + y * size.x, size.x, spacing[0],
                            slice + y * size.x);
    }
    along_y.Run(slice);
  }
}

// The z pass of every column whose `selected` entry (one per column, x fastest) is set, or of all.
void TransformColumns(const Dims& size, double spacing_z, const uint8_t* selected, double* d) {
  EnvelopePass along_z(size.x, size.z, size.x * size.y, spacing_z);
  for (int64_t y = 0; y < size.y; ++y) {
    along_z.Run(d + y * size.x, selected ? selected + y * size.x : nullptr);
  }
}

// Beyond this many slices either side, a query's column gets the full envelope pass instead of
// a search of the neighbouring slices.
constexpr int64_t kMaxSliceWindow = 8;

}  // namespace

std::vector<double> SquaredDistanceTransform(const uint8_t* features, const Dims& size,
                                             const Spacing3& spacing) {
  std::vector<double> d(static_cast<size_t>(size.count()));
  if (d.empty()) return d;
  if (!ValidSpacing(spacing)) {  // no distance is defined; NaN says so
    std::fill(d.begin(), d.end(), std::numeric_limits<double>::quiet_NaN());
    return d;
  }
  TransformSlices(features, size, spacing, d.data());
  TransformColumns(size, spacing[2], nullptr, d.data());
  return d;
}

std::vector<double> SquaredDistancesAt(const uint8_t* features, const uint8_t* queries,
                                       const Dims& size, const Spacing3& spacing) {
  const int64_t n = size.count();
  const int64_t plane = size.x * size.y;
  std::vector<double> out;
  if (n == 0) return out;
  if (!ValidSpacing(spacing)) {
    out.assign(
        static_cast<size_t>(std::count_if(queries, queries + n, [](uint8_t q) { return q != 0; })),
        std::numeric_limits<double>::quiet_NaN());
    return out;
  }
  // Every value is written by the x pass before it is read, so the buffer needs no zeroing.
  auto d = std::make_unique_for_overwrite<double[]>(static_cast<size_t>(n));
  TransformSlices(features, size, spacing, d.get());

  // The last pass, at the queries only. A query's own slice gives an upper bound g on its squared
  // distance, so only slices within sqrt(g) can do better: for the thin, nearby surfaces of most
  // mask pairs that is a few slices, far cheaper than an envelope over the whole column. Columns
  // where some query sees no bound close enough get the envelope pass afterwards.
  const double sz = spacing[2];
  std::vector<uint8_t> full_column(static_cast<size_t>(plane), 0);
  bool any_full = false;
  for (int64_t i = 0; i < n; ++i) {
    if (!queries[i]) continue;
    const double g = d[i];
    // +1 so that rounding in sqrt cannot drop a slice at exactly the bound.
    const double reach = std::sqrt(g) / sz + 1.0;
    if (!(reach <= static_cast<double>(kMaxSliceWindow))) {  // also catches g = inf
      full_column[i % plane] = 1;
      any_full = true;
      out.push_back(kInf);  // placeholder, replaced below
      continue;
    }
    const int64_t window = static_cast<int64_t>(reach);
    const int64_t z = i / plane;
    double best = g;
    for (int64_t k = 1; k <= window; ++k) {
      const double mm = sz * static_cast<double>(k);
      if (z - k >= 0) best = std::min(best, d[i - k * plane] + mm * mm);
      if (z + k < size.z) best = std::min(best, d[i + k * plane] + mm * mm);
    }
    out.push_back(best);
  }
  if (any_full) {
    TransformColumns(size, sz, full_column.data(), d.get());
    size_t q = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!queries[i]) continue;
      if (full_column[i % plane]) out[q] = d[i];
      ++q;
    }
  }
  return out;
}

Volume<double> SquaredDistanceTransform(const Volume<uint8_t>& features, const Spacing3& spacing) {
  Volume<double> out(features.size(), 0.0, features.geometry());
  out.voxels() = SquaredDistanceTransform(features.data(), features.size(), spacing);
  return out;
}

Volume<double> DistanceTransform(const Volume<uint8_t>& features, const Spacing3& spacing) {
  Volume<double> out = SquaredDistanceTransform(features, spacing);
  for (double& v : out.voxels()) v = std::sqrt(v);
  return out;
}

}  // namespace clisc
