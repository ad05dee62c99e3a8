// Segmentation metrics on binary masks (nonzero = foreground): Dice, Hausdorff distance (HD) and
// its 95th percentile (HD95), each under the conventions people compare against:
// - medpy (`medpy.metric.binary.dc/hd/hd95`), what CLISC reports: float64, HD95 = the 95th
//   percentile of the pooled surface distances of both directions; raises on an empty mask.
// - MONAI (`compute_dice`, `compute_hausdorff_distance`): float32, HD95 = the larger of the two
//   directed 95th percentiles; NaN or inf on empty masks.
// - the CLISC reference code (`calculate_metric_percase`): medpy without spacing, and Dice 0 /
//   HD95 0 for an empty prediction.
// The surface of a mask is mask XOR its erosion by the 6-connected cross (outside the array is
// background); a surface distance is the Euclidean distance in mm from a surface voxel of one
// mask to the nearest surface voxel of the other. shared/fixtures/metrics pins every value.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "common/distance_transform.h"
#include "common/status.h"
#include "common/volume.h"

namespace clisc {

// Which masks of a pair are empty, and, per metric, whether its value is a measurement.
enum class MetricStatus {
  kOk,           // the metric's formula evaluated on the two masks
  kPredEmpty,    // the prediction is empty, and the convention substituted a value or raised
  kGtEmpty,      // the ground truth is empty, likewise
  kBothEmpty,    // both are empty, likewise
  kNotComputed,  // switched off in MetricOptions
};
std::string_view MetricStatusName(MetricStatus status);  // "ok", "pred_empty", ...

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One metric value. `value` is what the convention returns: the measurement when status is kOk;
// otherwise the convention's substitute (medpy's Dice 1 for two empty masks, MONAI's NaN or inf,
// the reference's 0), or NaN where the official implementation raises.
struct Metric {
  double value = kNaN;
  MetricStatus status = MetricStatus::kNotComputed;
  bool ok() const { return status == MetricStatus::kOk; }
};

struct MedpyMetrics {
  Metric dice;         // dc: 2|P∩G| / (|P|+|G|); both empty -> 1 (medpy >= 0.5)
  Metric dice_legacy;  // dc of medpy <= 0.4.0: both empty -> 0
  Metric hd, hd95;     // mm, with the volume spacing; an empty mask raises -> NaN
  Metric hd_voxels;    // voxelspacing=None (voxel units)
  Metric hd95_voxels;
};

struct MonaiMetrics {
  Metric dice;             // compute_dice(ignore_empty=True), DiceMetric's default: GT empty -> NaN
  Metric dice_keep_empty;  // ignore_empty=False: both empty -> 1
  Metric hd, hd95;         // mm; one mask empty -> hd inf, hd95 NaN; both empty -> NaN
  Metric hd95_pred_to_gt;  // directed=True: the prediction's 95th percentile only
  Metric hd_voxels;        // spacing=None
  Metric hd95_voxels;
};

// The reference's calculate_metric_percase: (dc, hd95 without spacing) if the prediction is
// non-empty, else (0, 0); a non-empty prediction against an empty GT raises (hd95 NaN).
struct ReferenceMetrics {
  Metric dice;
  Metric hd95;
};

struct MaskMetrics {
  MetricStatus status = MetricStatus::kOk;  // emptiness of the pair (never kNotComputed)
  int64_t pred_voxels = 0, gt_voxels = 0, intersection_voxels = 0;
  Spacing3 spacing{1.0, 1.0, 1.0};  // (x, y, z) mm, from the GT geometry
  MedpyMetrics medpy;
  MonaiMetrics monai;
  ReferenceMetrics reference;
};

struct MetricOptions {
  bool distances = true;        // false: the Dice family only, no distance transform
  bool voxel_distances = true;  // also the spacing-free variants (the reference HD95 needs them)
  // Pred and GT must share size and geometry (Geometry::NearlyEquals at this tolerance); with
  // false, only the sizes must agree and the GT spacing is used.
  bool require_same_geometry = true;
  double geometry_tolerance = 1e-4;
};

// All metrics of one pair. INVALID_ARGUMENT when the two masks are not on the same grid or the
// GT spacing is not positive and finite.
StatusOr<MaskMetrics> ComputeMaskMetrics(const Volume<uint8_t>& pred, const Volume<uint8_t>& gt,
                                         const MetricOptions& options = {});

// ---- Building blocks, exposed for other stages (S3F uses Dice) and for tests. ----

struct OverlapCounts {
  int64_t pred = 0, gt = 0, intersection = 0;
};
// INVALID_ARGUMENT when the sizes differ.
StatusOr<OverlapCounts> CountOverlap(const Volume<uint8_t>& pred, const Volume<uint8_t>& gt);

// 2|P∩G| / (|P|+|G|) in double; `if_both_empty` when both are empty (medpy >= 0.5 uses 1).
double DiceFromCounts(const OverlapCounts& counts, double if_both_empty = 1.0);

// Directed surface distances in mm, one per surface voxel of the source mask in raster order
// (x fastest), each the distance to the nearest surface voxel of the other mask; +inf when the
// other mask is empty. The transform runs only over the union bounding box plus one voxel.
struct SurfaceDistances {
  std::vector<double> pred_to_gt;
  std::vector<double> gt_to_pred;
};
// INVALID_ARGUMENT when the sizes differ.
StatusOr<SurfaceDistances> ComputeSurfaceDistances(const Volume<uint8_t>& pred,
                                                   const Volume<uint8_t>& gt,
                                                   const Spacing3& spacing);

// numpy.percentile(values, percent) with the default linear method, in double. NaN when empty.
double PercentileLinear(std::vector<double> values, double percent);

// torch.quantile(values, q) for a float32 tensor, linear interpolation, computed in float32 as
// torch does (rank q*(n-1) and the interpolation weight in float). NaN when empty.
float QuantileLinearFloat32(std::vector<float> values, float q);

}  // namespace clisc
