#include "common/synth_anatomy.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "common/distance_transform.h"
#include "common/volume_io.h"

namespace clisc {

uint64_t SynthRandom::UniformBelow(uint64_t bound) {
  // Reject the top partial block of 2^64 so that every residue is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t v;
  do {
    v = engine_();
  } while (v >= limit);
  return v % bound;
}

double SynthRandom::Normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = 1.0 - Uniform();  // (0, 1]: log stays finite
  const double u2 = Uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

double SynthRandom::LogUniform(double lo, double hi) {
  return std::exp(Uniform(std::log(lo), std::log(hi)));
}

uint64_t SynthRandom::Derive(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

FloatVolume SmoothRandomField(const Dims& dims, const Geometry& geometry, double sigma_mm,
                              SynthRandom& rng) {
  FloatVolume field(dims, 0.0f, geometry);
  for (float& v : field.voxels()) v = static_cast<float>(rng.Normal());
  GaussianSmooth(field, {sigma_mm, sigma_mm, sigma_mm});
  double sum = 0, sum2 = 0;
  for (float v : field.voxels()) {
    sum += v;
    sum2 += double(v) * v;
  }
  const double n = static_cast<double>(field.count());
  const double mean = sum / n;
  const double sd = std::sqrt(std::max(sum2 / n - mean * mean, 1e-20));
  for (float& v : field.voxels()) v = static_cast<float>((v - mean) / sd);
  return field;
}

Point3 BrainTemplate::center() const {
  return {0.5 * (bbox_min[0] + bbox_max[0]), 0.5 * (bbox_min[1] + bbox_max[1]),
          0.5 * (bbox_min[2] + bbox_max[2])};
}

std::array<double, 3> TissueClassMeans(const FloatVolume& intensity, const FloatVolume& mask) {
  // A histogram makes the iterations cheap and independent of the voxel count.
  constexpr int kBins = 1024;
  float max_value = 0;
  for (size_t i = 0; i < intensity.voxels().size(); ++i) {
    if (mask[i] > 0.5f) max_value = std::max(max_value, intensity[i]);
  }
  if (max_value <= 0) return {1, 2, 3};
  std::vector<double> count(kBins, 0.0);
  const double width = max_value / (kBins - 1);
  for (size_t i = 0; i < intensity.voxels().size(); ++i) {
    if (mask[i] > 0.5f && intensity[i] > 0) {
      count[static_cast<size_t>(std::lround(intensity[i] / width))] += 1;
    }
  }
  auto quantile = [&](double q) {
    double total = 0;
    for (double c : count) total += c;
    double acc = 0;
    for (int b = 0; b < kBins; ++b) {
      acc += count[b];
      if (acc >= q * total) return b * width;
    }
    return max_value * 1.0;
  };
  std::array<double, 3> centre{quantile(0.1), quantile(0.5), quantile(0.9)};
  for (int iter = 0; iter < 100; ++iter) {
    std::array<double, 3> sum{}, n{};
    for (int b = 0; b < kBins; ++b) {
      const double v = b * width;
      int best = 0;
      for (int k = 1; k < 3; ++k) {
        if (std::abs(v - centre[k]) < std::abs(v - centre[best])) best = k;
      }
      sum[best] += count[b] * v;
      n[best] += count[b];
    }
    std::array<double, 3> next = centre;
    for (int k = 0; k < 3; ++k) {
      if (n[k] > 0) next[k] = sum[k] / n[k];
    }
    if (next == centre) break;
    centre = next;
  }
  std::sort(centre.begin(), centre.end());
  return centre;
}

std::array<float, 3> TissueFractions(double t, const std::array<double, 3>& m) {
  if (t <= m[0]) return {1, 0, 0};
  if (t >= m[2]) return {0, 0, 1};
  if (t < m[1]) {
    const float g = static_cast<float>((t - m[0]) / (m[1] - m[0]));
    return {1 - g, g, 0};
  }
  const float w = static_cast<float>((t - m[1]) / (m[2] - m[1]));
  return {0, 1 - w, w};
}

namespace {

StatusOr<BrainTemplate> PrepareTemplate(const std::filesystem::path& path,
                                        double output_spacing_mm) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFoundError("brain template " + path.string() +
                         " not found: install the Debian package mricron-data (it ships "
                         "/usr/share/mricron/templates/ch2bet.nii.gz) or pass --template");
  }
  auto read = ReadVolume<float>(path);
  if (!read.ok()) return read.status().WithContext("reading brain template " + path.string());
  BrainTemplate tpl;
  tpl.intensity = std::move(read).value();
  const Geometry& g = tpl.intensity.geometry();
  tpl.brain = tpl.intensity.LikeThis<float>(0.0f);
  LabelVolume outside = tpl.intensity.LikeThis<uint8_t>(0);
  for (size_t i = 0; i < tpl.intensity.voxels().size(); ++i) {
    const bool in = tpl.intensity[i] > 0;
    tpl.brain[i] = in ? 1.0f : 0.0f;
    outside[i] = in ? 0 : 1;
  }
  tpl.class_means = TissueClassMeans(tpl.intensity, tpl.brain);

  const Volume<double> depth = DistanceTransform(outside, g.spacing);
  tpl.depth_mm = ConvertVolume<float>(depth);

  // Physical bounding box from the corners of the index bounding box.
  const Dims& d = tpl.intensity.size();
  int64_t lo[3] = {d.x, d.y, d.z}, hi[3] = {-1, -1, -1};
  for (int64_t z = 0; z < d.z; ++z)
    for (int64_t y = 0; y < d.y; ++y)
      for (int64_t x = 0; x < d.x; ++x) {
        if (tpl.brain.at(x, y, z) == 0) continue;
        const int64_t c[3] = {x, y, z};
        for (int a = 0; a < 3; ++a) {
          lo[a] = std::min(lo[a], c[a]);
          hi[a] = std::max(hi[a], c[a]);
        }
      }
  if (hi[0] < 0) return InvalidArgumentError("brain template " + path.string() + " is empty");
  tpl.bbox_min = {1e300, 1e300, 1e300};
  tpl.bbox_max = {-1e300, -1e300, -1e300};
  for (int corner = 0; corner < 8; ++corner) {
    const Point3 idx{double((corner & 1) ? hi[0] : lo[0]), double((corner & 2) ? hi[1] : lo[1]),
                     double((corner & 4) ? hi[2] : lo[2])};
    const Point3 p = IndexToPhysical(g, idx);
    for (int a = 0; a < 3; ++a) {
      tpl.bbox_min[a] = std::min(tpl.bbox_min[a], p[a]);
      tpl.bbox_max[a] = std::max(tpl.bbox_max[a], p[a]);
    }
  }

  // Sampling coarser than the template's own voxels would alias the cortex into speckle; a
  // Gaussian matched to the extra voxel size removes what the coarse grid cannot represent
  // (sigma = 0.42 x width gives the full width at half maximum of a box that wide).
  // The mask gets the same blur, and intensities are later divided by it, so the brain edge
  // is not darkened by the zeros outside.
  const double tpl_spacing = std::max({g.spacing[0], g.spacing[1], g.spacing[2]});
  const double extra = output_spacing_mm * output_spacing_mm - tpl_spacing * tpl_spacing;
  if (extra > 0) {
    const double sigma = 0.42 * std::sqrt(extra);
    GaussianSmooth(tpl.intensity, {sigma, sigma, sigma});
    GaussianSmooth(tpl.brain, {sigma, sigma, sigma});
  }
  return tpl;
}

}  // namespace

StatusOr<std::shared_ptr<const BrainTemplate>> LoadBrainTemplate(const std::filesystem::path& path,
                                                                 double output_spacing_mm) {
  static std::mutex mu;
  static auto* cache =
      new std::map<std::pair<std::string, double>, std::shared_ptr<const BrainTemplate>>();
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_pair(path.string(), output_spacing_mm);
  if (auto it = cache->find(key); it != cache->end()) return it->second;
  ASSIGN_OR_RETURN(BrainTemplate tpl, PrepareTemplate(path, output_spacing_mm));
  auto shared = std::make_shared<const BrainTemplate>(std::move(tpl));
  (*cache)[key] = shared;
  return shared;
}

AnatomyWarp RandomAnatomyWarp(const BrainTemplate& tpl, const Dims& dims, const Geometry& geometry,
                              SynthRandom& rng, const AnatomyWarpOptions& o) {
  const Point3 out_center = IndexToPhysical(
      geometry, {0.5 * double(dims.x - 1), 0.5 * double(dims.y - 1), 0.5 * double(dims.z - 1)});
  const double deg = std::numbers::pi / 180.0;
  const Point3 shift{rng.Uniform(-1, 1) * o.max_translation_mm,
                     rng.Uniform(-1, 1) * o.max_translation_mm,
                     rng.Uniform(-1, 1) * 0.5 * o.max_translation_mm};
  const Point3 angles{rng.Uniform(-1, 1) * o.max_rotation_deg * deg,
                      rng.Uniform(-1, 1) * o.max_rotation_deg * deg,
                      rng.Uniform(-1, 1) * o.max_rotation_deg * deg};
  Point3 inverse_scale;
  for (double& s : inverse_scale)
    s = 1.0 / (o.base_scale * (1.0 + rng.Uniform(-1, 1) * o.scale_jitter));

  AnatomyWarp warp;
  warp.affine =
      AffineTransform::Translation(
          {-(out_center[0] + shift[0]), -(out_center[1] + shift[1]), -(out_center[2] + shift[2])})
          .Then(AffineTransform::Rotation(angles, {0, 0, 0}))
          .Then(AffineTransform::Scaling(inverse_scale, {0, 0, 0}))
          .Then(AffineTransform::Translation(tpl.center()));

  // The elastic field varies over centimetres, so an 8 mm grid represents it fully.
  Dims coarse_dims;
  Geometry coarse_geometry;
  CoveringGrid(dims, geometry, {8.0, 8.0, 8.0}, &coarse_dims, &coarse_geometry);
  warp.elastic = DisplacementField(coarse_dims, coarse_geometry);
  for (int a = 0; a < 3; ++a) {
    FloatVolume f = SmoothRandomField(coarse_dims, coarse_geometry, o.elastic_sigma_mm, rng);
    for (float& v : f.voxels()) v = static_cast<float>(v * o.elastic_rms_mm);
    warp.elastic.component(a) = std::move(f);
  }
  return warp;
}

CaseAnatomy WarpAnatomy(const BrainTemplate& tpl, const Dims& dims, const Geometry& geometry,
                        const PointMap& output_to_template) {
  CaseAnatomy a;
  a.brain = LabelVolume(dims, 0, geometry);
  for (auto& t : a.tissue) t = FloatVolume(dims, 0.0f, geometry);
  const AffineTransform to_physical = IndexToPhysicalTransform(geometry);
  const AffineTransform to_template_index = PhysicalToIndexTransform(tpl.intensity.geometry());
  const Dims& tpl_dims = tpl.intensity.size();
  size_t i = 0;
  for (int64_t z = 0; z < dims.z; ++z) {
    for (int64_t y = 0; y < dims.y; ++y) {
      for (int64_t x = 0; x < dims.x; ++x, ++i) {
        const Point3 p = to_physical.Apply({double(x), double(y), double(z)});
        const TrilinearStencil s =
            MakeTrilinearStencil(tpl_dims, to_template_index.Apply(output_to_template(p)));
        const float m = s.Apply(tpl.brain);
        if (m < 0.5f) continue;
        const float t = s.Apply(tpl.intensity) / m;
        const std::array<float, 3> f = TissueFractions(t, tpl.class_means);
        a.brain[i] = 1;
        for (int c = 0; c < 3; ++c) a.tissue[c][i] = f[c];
      }
    }
  }
  return a;
}

TemplateSample SampleTemplate(const BrainTemplate& tpl, const Point3& template_point) {
  TemplateSample s;
  const TrilinearStencil st = MakeTrilinearStencil(
      tpl.intensity.size(), PhysicalToIndex(tpl.intensity.geometry(), template_point));
  s.brain = st.Apply(tpl.brain);
  if (s.brain < 0.5f) return s;
  s.depth_mm = st.Apply(tpl.depth_mm);
  s.tissue = TissueFractions(st.Apply(tpl.intensity) / s.brain, tpl.class_means);
  return s;
}

}  // namespace clisc
