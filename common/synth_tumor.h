// A synthetic glioma for the semi-synthetic BraTS dataset: random size and shape, placement in
// the cerebral white matter of the warped template, mass effect, and BraTS label regions
// (1 necrotic core, 4 enhancing rim, 2 edema) grown directly on the output grid.
//
// Shape model: a point p belongs to the core when |A (p - c)| / R_core + a * N(p) < 1, where A
// is a random rotation with axis ratios and N a smooth unit-variance noise field, so the surface
// is a lumpy, lobulated ellipsoid. The necrosis is an inner level set of the same function (so a
// rim of enhancing tumor always separates it from the edema) and the edema a wider one that
// also leans into white matter and stays out of CSF, as vasogenic edema does.
#pragma once

#include <array>
#include <cstdint>

#include "common/resample.h"
#include "common/status.h"
#include "common/synth_anatomy.h"
#include "common/volume.h"

namespace clisc {

// BraTS label values.
inline constexpr uint8_t kLabelNecrosis = 1;
inline constexpr uint8_t kLabelEdema = 2;
inline constexpr uint8_t kLabelEnhancing = 4;

// Nominal whole-tumor volumes: spheres of the edema radius. CSF, grey matter and the brain
// outline trim the grown tumor to roughly 0.5-0.9 of that, so these bounds give measured whole
// tumors of about 5-150 cm^3, mostly in the 20-150 cm^3 range of real BraTS cases.
struct TumorSizeOptions {
  double min_whole_tumor_cm3 = 6.0;
  double max_whole_tumor_cm3 = 220.0;
  // Share of small tumors (min .. small_max); the rest is log-uniform in small_max .. max.
  double small_fraction = 0.15;
  double small_max_cm3 = 25.0;
};

struct TumorParams {
  Point3 center{};                 // output physical point (LPS mm)
  AffineTransform shape;           // offset from the centre -> shape frame
  double max_stretch = 1.0;        // longest axis of `shape` relative to the radius
  double edema_radius_mm = 0;      // nominal radius of the whole tumor
  double core_radius_mm = 0;       // nominal radius of the tumor core (1 + 4)
  double necrosis_level = 0.5;     // necrosis: normalized core radius below this
  double core_irregularity = 0.2;  // noise amplitude on the core surface
  double necrosis_irregularity = 0.06;
  double edema_irregularity = 0.25;
  double white_matter_preference = 0.3;  // how much less far edema reaches in grey matter
  double mass_effect_radius_mm = 0;      // radius of the tissue volume pushed aside
  double mass_effect_reach_mm = 0;       // decay length of the push
};

// Draws size and shape (not the centre). `min_rim_mm` keeps the enhancing rim thick enough to
// survive the output voxel size.
TumorParams RandomTumorParams(SynthRandom& rng, double min_rim_mm,
                              const TumorSizeOptions& sizes = {});

// Picks a centre on the output grid: its template point must lie in the cerebrum (not the
// cerebellum or brainstem), deep enough inside the brain for the core, and usually in white
// matter. `output_to_template` is the case's anatomy warp without mass effect.
StatusOr<Point3> ChooseTumorCenter(const BrainTemplate& tpl, const PointMap& output_to_template,
                                   const Dims& dims, const Geometry& geometry,
                                   const TumorParams& params, SynthRandom& rng);

// Mass effect as a backward map in output space: the point whose tissue ends up at p once the
// tumor has pushed its surroundings outward. Radial and volume-preserving near the tumor
// (r^3 = s^3 + a^3: the pushed-out volume is a sphere of radius a), fading with distance so the
// brain outline barely moves.
Point3 MassEffectSource(const TumorParams& params, const Point3& p);

// The grown tumor: labels on the whole grid, and soft weights for the contrasts on a box around
// the tumor (outside the box every weight is 0). Soft weights cross 0.5 exactly where the label
// changes, so image edges and label edges agree.
struct TumorFields {
  LabelVolume labels;
  std::array<int64_t, 3> box_origin{};  // first voxel of the box in the output grid
  FloatVolume edema;                    // 0..1, whole-tumor weight (edema or core)
  FloatVolume core;                     // 0..1, tumor core (enhancing or necrotic)
  FloatVolume necrosis;                 // 0..1
  FloatVolume edema_depth;  // 0 at the edema edge, 1 ~10 mm inside: edema brightens inward
  FloatVolume texture;      // unit-variance smooth noise for intensity heterogeneity
};

TumorFields GrowTumor(const TumorParams& params, const CaseAnatomy& anatomy, SynthRandom& rng);

struct LabelCounts {
  int64_t necrosis = 0, edema = 0, enhancing = 0, other = 0;
  int64_t whole() const { return necrosis + edema + enhancing; }
};
LabelCounts CountLabels(const LabelVolume& labels);

}  // namespace clisc
