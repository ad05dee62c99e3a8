#include "common/synth_contrast.h"

#include <algorithm>
#include <cmath>

#include "common/resample.h"

namespace clisc {

ContrastLevels NominalContrast(Modality modality) {
  ContrastLevels l;
  switch (modality) {
    case Modality::kFlair:
      l = {.csf = 0.18,
           .gray_matter = 1.18,
           .white_matter = 1.0,
           .edema = 1.9,
           .enhancing = 1.7,
           .necrosis = 1.35,
           .scale = 320};
      break;
    case Modality::kT1:
      l = {.csf = 0.30,
           .gray_matter = 0.68,
           .white_matter = 1.0,
           .edema = 0.70,
           .enhancing = 0.72,
           .necrosis = 0.40,
           .scale = 520};
      break;
    case Modality::kT1ce:
      l = {.csf = 0.32,
           .gray_matter = 0.70,
           .white_matter = 1.0,
           .edema = 0.72,
           .enhancing = 1.65,
           .necrosis = 0.42,
           .scale = 560};
      break;
    case Modality::kT2:
      l = {.csf = 2.6,
           .gray_matter = 1.35,
           .white_matter = 1.0,
           .edema = 2.0,
           .enhancing = 1.7,
           .necrosis = 2.3,
           .scale = 260};
      break;
  }
  return l;
}

ContrastLevels RandomContrast(Modality modality, SynthRandom& rng) {
  ContrastLevels l = NominalContrast(modality);
  // Tumor contrast against white matter varies far more between patients than normal tissue
  // does, so deviations from WM are scaled by a wide factor.
  auto tumor = [&](double level, double spread) {
    return 1.0 + (level - 1.0) * rng.Uniform(1.0 - spread, 1.0 + spread);
  };
  l.csf *= rng.Uniform(0.9, 1.1);
  l.gray_matter = 1.0 + (l.gray_matter - 1.0) * rng.Uniform(0.8, 1.2);
  l.edema = tumor(l.edema, 0.3);
  l.enhancing = tumor(l.enhancing, 0.3);
  l.necrosis = tumor(l.necrosis, 0.5);
  l.scale *= rng.Uniform(0.75, 1.3);
  return l;
}

namespace {

// A smooth log-bias field on a coarse grid, scaled so its peak is log(1 + amplitude).
FloatVolume RandomBiasField(const Dims& dims, const Geometry& geometry, double amplitude,
                            SynthRandom& rng) {
  Dims cd;
  Geometry cg;
  CoveringGrid(dims, geometry, {12.0, 12.0, 12.0}, &cd, &cg);
  FloatVolume field = SmoothRandomField(cd, cg, 40.0, rng);
  float peak = 1e-6f;
  for (float v : field.voxels()) peak = std::max(peak, std::abs(v));
  const double k = std::log(1.0 + amplitude) / peak;
  for (float& v : field.voxels()) v = static_cast<float>(v * k);
  return field;
}

}  // namespace

Volume<int16_t> RenderContrast(const ContrastLevels& l, const CaseAnatomy& anatomy,
                               const TumorFields* tumor, SynthRandom& rng,
                               const ImagingOptions& options) {
  const Dims& dims = anatomy.brain.size();
  const Geometry& geometry = anatomy.brain.geometry();
  Volume<int16_t> out(dims, 0, geometry);
  const FloatVolume bias =
      RandomBiasField(dims, geometry, rng.Uniform(options.bias_min, options.bias_max), rng);
  const double sigma = rng.Uniform(options.noise_min, options.noise_max) * l.scale;
  const AffineTransform to_physical = IndexToPhysicalTransform(geometry);
  const AffineTransform to_bias_index = PhysicalToIndexTransform(bias.geometry());

  const Dims box = tumor ? tumor->edema.size() : Dims{};
  const auto& bo = tumor ? tumor->box_origin : std::array<int64_t, 3>{};
  size_t i = 0;
  for (int64_t z = 0; z < dims.z; ++z) {
    for (int64_t y = 0; y < dims.y; ++y) {
      for (int64_t x = 0; x < dims.x; ++x, ++i) {
        if (!anatomy.brain[i]) continue;
        double s = anatomy.tissue[kCsf][i] * l.csf +
                   anatomy.tissue[kGrayMatter][i] * l.gray_matter +
                   anatomy.tissue[kWhiteMatter][i] * l.white_matter;
        const int64_t bx = x - bo[0], by = y - bo[1], bz = z - bo[2];
        if (tumor && bx >= 0 && by >= 0 && bz >= 0 && bx < box.x && by < box.y && bz < box.z) {
          const size_t b = tumor->edema.index(bx, by, bz);
          const double tex = tumor->texture[b];
          // Edema is closest to normal tissue at its edge and strongest near the core.
          const double edema = l.white_matter + (l.edema - l.white_matter) *
                                                    (0.75 + 0.4 * tumor->edema_depth[b]) *
                                                    (1.0 + 0.06 * tex);
          s += tumor->edema[b] * (edema - s);
          s += tumor->core[b] * (l.enhancing * (1.0 + 0.08 * tex) - s);
          s += tumor->necrosis[b] * (l.necrosis * (1.0 + 0.12 * tex) - s);
        }
        const Point3 p = to_physical.Apply({double(x), double(y), double(z)});
        const double gain =
            std::exp(SampleTrilinear(bias, to_bias_index.Apply(p), OutsideMode::kClamp));
        const double signal = s * l.scale * gain;
        // Magnitude images carry Rician noise: Gaussian noise on both quadrature channels.
        const double re = signal + sigma * rng.Normal();
        const double im = sigma * rng.Normal();
        const double v = std::round(std::sqrt(re * re + im * im));
        // Never 0 inside the brain: nonzero is the brain mask downstream.
        out[i] = static_cast<int16_t>(std::clamp(v, 1.0, 32767.0));
      }
    }
  }
  return out;
}

}  // namespace clisc
