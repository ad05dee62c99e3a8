#include "common/synth_tumor.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

namespace clisc {
namespace {

double SphereRadiusMm(double volume_cm3) {
  return std::cbrt(3.0 * volume_cm3 * 1000.0 / (4.0 * std::numbers::pi));
}

inline float Sigmoid(double x) { return static_cast<float>(1.0 / (1.0 + std::exp(-x))); }

// Where in the template brain a glioma may sit, from the position inside the brain's bounding
// box. Fractions are used instead of atlas coordinates so any roughly aligned brain template
// works: the cerebellum and brainstem fill the low posterior part and the low midline.
bool InCerebrum(const BrainTemplate& tpl, const Point3& q) {
  const double fx = (q[0] - tpl.bbox_min[0]) / (tpl.bbox_max[0] - tpl.bbox_min[0]);
  // LPS: anterior is -y.
  const double anterior = (tpl.bbox_max[1] - q[1]) / (tpl.bbox_max[1] - tpl.bbox_min[1]);
  const double up = (q[2] - tpl.bbox_min[2]) / (tpl.bbox_max[2] - tpl.bbox_min[2]);
  const double lateral = std::abs(fx - 0.5);
  if (up >= 0.44) return lateral >= 0.05;  // above the tentorium: both hemispheres
  return up >= 0.28 && anterior >= 0.40 && lateral >= 0.14;  // temporal lobes
}

}  // namespace

TumorParams RandomTumorParams(SynthRandom& rng, double min_rim_mm, const TumorSizeOptions& s) {
  TumorParams p;
  const double pi = std::numbers::pi;
  const Point3 angles{rng.Uniform(-pi, pi), rng.Uniform(-pi / 2, pi / 2), rng.Uniform(-pi, pi)};
  Point3 stretch{std::exp(rng.Uniform(-0.25, 0.25)), std::exp(rng.Uniform(-0.25, 0.25)),
                 std::exp(rng.Uniform(-0.25, 0.25))};
  const double norm = std::cbrt(stretch[0] * stretch[1] * stretch[2]);
  for (double& e : stretch) e /= norm;  // keeps the volume of the nominal sphere
  p.max_stretch = std::max({stretch[0], stretch[1], stretch[2]});
  const double min_stretch = std::min({stretch[0], stretch[1], stretch[2]});
  p.shape = AffineTransform::Rotation(angles, {0, 0, 0})
                .Then(AffineTransform::Scaling({1 / stretch[0], 1 / stretch[1], 1 / stretch[2]},
                                               {0, 0, 0}));

  const double whole_cm3 = rng.Uniform() < s.small_fraction
                               ? rng.LogUniform(s.min_whole_tumor_cm3, s.small_max_cm3)
                               : rng.LogUniform(s.small_max_cm3, s.max_whole_tumor_cm3);
  const double core_share = rng.Uniform(0.15, 0.4);  // tumor core / whole tumor, by volume
  p.edema_radius_mm = SphereRadiusMm(whole_cm3);
  p.core_radius_mm = p.edema_radius_mm * std::cbrt(core_share);
  p.core_irregularity = rng.Uniform(0.08, 0.22);
  p.edema_irregularity = rng.Uniform(0.12, 0.3);
  p.white_matter_preference = rng.Uniform(0.2, 0.5);
  // Thicknesses below are along the shortest shape axis, where the rim is thinnest. The
  // necrosis and the rim around it must both stay a few voxels wide or one of them disappears
  // on a coarse grid; small tumors therefore get a relatively larger core.
  const double min_rim = min_rim_mm / min_stretch;
  p.core_radius_mm = std::max(p.core_radius_mm, 2.4 * min_rim + 1.0);
  p.edema_radius_mm = std::max(p.edema_radius_mm, 1.25 * p.core_radius_mm + 1.0);
  // The necrosis boundary wobbles by about 1 mm; the enhancing rim is a few mm thick, as in
  // real glioblastoma, so large tumors have large necrotic cores.
  p.necrosis_irregularity = std::min(0.06, 1.0 / p.core_radius_mm);
  const double rim = std::max(rng.Uniform(2.0, 4.5) / min_stretch, min_rim);
  const double min_level = 1.2 * min_rim / p.core_radius_mm;
  p.necrosis_level = std::max(1.0 - rim / p.core_radius_mm - p.necrosis_irregularity, min_level);
  p.mass_effect_radius_mm = p.core_radius_mm * rng.Uniform(0.55, 0.9);
  p.mass_effect_reach_mm = p.edema_radius_mm + 15.0;
  return p;
}

StatusOr<Point3> ChooseTumorCenter(const BrainTemplate& tpl, const PointMap& output_to_template,
                                   const Dims& dims, const Geometry& geometry,
                                   const TumorParams& params, SynthRandom& rng) {
  // Candidates on a 4 mm lattice; the chosen one is jittered within its cell afterwards.
  constexpr double kStepMm = 4.0;
  struct Candidate {
    Point3 point;
    double weight;    // 0 where the core would not fit
    double depth_mm;  // for the fallback when it fits nowhere
  };
  const AffineTransform to_physical = IndexToPhysicalTransform(geometry);
  const Point3 step_vox{kStepMm / geometry.spacing[0], kStepMm / geometry.spacing[1],
                        kStepMm / geometry.spacing[2]};
  // Template mm are larger than output mm by about the inverse of the warp's scale; 0.9 is a
  // safe lower bound for that scale.
  const double needed_depth_mm =
      (params.core_radius_mm * (1.0 + params.core_irregularity) + 3.0) / 0.9;
  std::vector<Candidate> all;
  for (double z = 0; z < dims.z; z += step_vox[2]) {
    for (double y = 0; y < dims.y; y += step_vox[1]) {
      for (double x = 0; x < dims.x; x += step_vox[0]) {
        const Point3 p = to_physical.Apply({x, y, z});
        const Point3 q = output_to_template(p);
        const TemplateSample s = SampleTemplate(tpl, q);
        if (s.brain < 0.5f || !InCerebrum(tpl, q)) continue;
        // Gliomas mostly arise in white matter; grey matter and deep nuclei are rarer.
        const double tissue_weight = s.tissue[kWhiteMatter] >= 0.5f ? 1.0 : 0.1;
        all.push_back({p, s.depth_mm >= needed_depth_mm ? tissue_weight : 0.0, s.depth_mm});
      }
    }
  }
  if (all.empty())
    return FailedPreconditionError("no brain voxel in the cerebrum to place a tumor");
  double total = 0;
  for (const auto& c : all) total += c.weight;
  const Candidate* chosen = nullptr;
  if (total > 0) {
    double u = rng.Uniform() * total;
    for (const auto& c : all) {
      if (c.weight == 0) continue;
      chosen = &c;
      if ((u -= c.weight) < 0) break;
    }
  } else {
    // The tumor is larger than any place allows: take the deepest point; the brain mask will
    // trim what sticks out.
    chosen = &*std::max_element(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.depth_mm < b.depth_mm;
    });
  }
  Point3 c = chosen->point;
  for (double& v : c) v += rng.Uniform(-0.5, 0.5) * kStepMm;
  return c;
}

Point3 MassEffectSource(const TumorParams& params, const Point3& p) {
  const Point3 d{p[0] - params.center[0], p[1] - params.center[1], p[2] - params.center[2]};
  const double r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
  if (r < 1e-9 || params.mass_effect_radius_mm <= 0) return p;
  const double a = params.mass_effect_radius_mm;
  const double falloff =
      std::exp(-(r * r) / (params.mass_effect_reach_mm * params.mass_effect_reach_mm));
  // d/dr (r^3 - a^3 falloff) > 0, so the map is monotonic in r: no folding.
  const double s = std::cbrt(std::max(r * r * r - a * a * a * falloff, 0.0));
  const double k = s / r;
  return {params.center[0] + d[0] * k, params.center[1] + d[1] * k, params.center[2] + d[2] * k};
}

TumorFields GrowTumor(const TumorParams& params, const CaseAnatomy& anatomy, SynthRandom& rng) {
  const Dims& dims = anatomy.brain.size();
  const Geometry& geometry = anatomy.brain.geometry();
  TumorFields t;
  t.labels = LabelVolume(dims, 0, geometry);

  // The box holds every point whose edema level can drop below 1 unless the noise goes beyond
  // 3 standard deviations.
  const double reach =
      params.edema_radius_mm * params.max_stretch * (1.0 + 3.0 * params.edema_irregularity) + 2.0;
  const Point3 ci = PhysicalToIndex(geometry, params.center);
  std::array<int64_t, 3> lo{}, hi{};
  const int64_t n[3] = {dims.x, dims.y, dims.z};
  for (int a = 0; a < 3; ++a) {
    const double r_vox = reach / geometry.spacing[a];
    lo[a] = std::clamp<int64_t>(static_cast<int64_t>(std::floor(ci[a] - r_vox)), 0, n[a] - 1);
    hi[a] = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(ci[a] + r_vox)), 0, n[a] - 1);
  }
  t.box_origin = lo;
  const Dims box{hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1};
  Geometry box_geometry = geometry;
  box_geometry.origin = IndexToPhysical(geometry, {double(lo[0]), double(lo[1]), double(lo[2])});
  t.edema = FloatVolume(box, 0.0f, box_geometry);
  t.core = t.edema;
  t.necrosis = t.edema;
  t.edema_depth = t.edema;
  t.texture = t.edema;

  // Noise on a coarse grid over the box (the fields are smooth), read back trilinearly.
  Dims nd;
  Geometry ng;
  const double noise_spacing = std::max(2.0, geometry.spacing[0]);
  CoveringGrid(box, box_geometry, {noise_spacing, noise_spacing, noise_spacing}, &nd, &ng);
  const FloatVolume core_noise =
      SmoothRandomField(nd, ng, std::max(3.0, 0.35 * params.core_radius_mm), rng);
  const FloatVolume necrosis_noise =
      SmoothRandomField(nd, ng, std::max(2.5, 0.3 * params.core_radius_mm), rng);
  const FloatVolume edema_noise =
      SmoothRandomField(nd, ng, std::max(4.0, 0.35 * params.edema_radius_mm), rng);
  const FloatVolume texture_noise = SmoothRandomField(nd, ng, 2.5, rng);
  const AffineTransform to_noise_index = PhysicalToIndexTransform(ng);
  const AffineTransform to_physical = IndexToPhysicalTransform(geometry);

  // Edge widths (mm) of the soft weights: enhancement borders are sharp, edema fades out.
  constexpr double kCoreEdgeMm = 0.7, kEdemaEdgeMm = 1.5, kDepthScaleMm = 10.0;
  const double rc = params.core_radius_mm, re = params.edema_radius_mm;
  // Beyond this shape-frame radius even 3-sigma noise leaves the edema level four edge widths
  // above 1 (weight < 2 %), and the core lies well inside the edema.
  const double skip_radius = re * (1.0 + 3.0 * params.edema_irregularity) + 4.0 * kEdemaEdgeMm;
  size_t bi = 0;
  for (int64_t z = lo[2]; z <= hi[2]; ++z) {
    for (int64_t y = lo[1]; y <= hi[1]; ++y) {
      for (int64_t x = lo[0]; x <= hi[0]; ++x, ++bi) {
        const size_t i = anatomy.brain.index(x, y, z);
        if (!anatomy.brain[i]) continue;
        const Point3 p = to_physical.Apply({double(x), double(y), double(z)});
        const Point3 u = params.shape.ApplyLinear(
            {p[0] - params.center[0], p[1] - params.center[1], p[2] - params.center[2]});
        const double r = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
        if (r > skip_radius) continue;  // every weight is negligible out here
        const TrilinearStencil ns =
            MakeTrilinearStencil(nd, to_noise_index.Apply(p), OutsideMode::kClamp);
        const double nc = ns.Apply(core_noise);
        const double nn = ns.Apply(necrosis_noise);
        const double ne = ns.Apply(edema_noise);
        const double csf = anatomy.tissue[kCsf][i];
        const double wm = anatomy.tissue[kWhiteMatter][i];

        const double f_core = r / rc + params.core_irregularity * nc;
        const double f_necrosis = f_core + params.necrosis_irregularity * nn;
        // The nominal radius holds in white matter; edema reaches less far into grey matter.
        const double f_edema =
            r / re + params.edema_irregularity * ne + params.white_matter_preference * (1.0 - wm);
        // Vasogenic edema does not fill the ventricles or sulci: the CSF share fades it out,
        // crossing 0.5 at the same CSF fraction (0.5) where the label stops.
        const double csf_gate = std::clamp(1.5 - 2.0 * csf, 0.0, 1.0);

        const bool in_core = f_core < 1.0;
        const bool in_edema = f_edema < 1.0 && csf < 0.5;
        if (in_core) {
          t.labels[i] = f_necrosis < params.necrosis_level ? kLabelNecrosis : kLabelEnhancing;
        } else if (in_edema) {
          t.labels[i] = kLabelEdema;
        }
        const float w_core = Sigmoid((1.0 - f_core) * rc / kCoreEdgeMm);
        const float w_edema =
            static_cast<float>(Sigmoid((1.0 - f_edema) * re / kEdemaEdgeMm) * csf_gate);
        t.core[bi] = w_core;
        t.edema[bi] = std::max(w_edema, w_core);
        t.necrosis[bi] = Sigmoid((params.necrosis_level - f_necrosis) * rc / kCoreEdgeMm);
        t.edema_depth[bi] =
            static_cast<float>(std::clamp((1.0 - f_edema) * re / kDepthScaleMm, 0.0, 1.0));
        t.texture[bi] = ns.Apply(texture_noise);
      }
    }
  }
  return t;
}

LabelCounts CountLabels(const LabelVolume& labels) {
  LabelCounts c;
  for (uint8_t v : labels.voxels()) {
    switch (v) {
      case 0:
        break;
      case kLabelNecrosis:
        ++c.necrosis;
        break;
      case kLabelEdema:
        ++c.edema;
        break;
      case kLabelEnhancing:
        ++c.enhancing;
        break;
      default:
        ++c.other;
    }
  }
  return c;
}

}  // namespace clisc
