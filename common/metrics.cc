#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/morphology.h"

namespace clisc {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Inclusive voxel box.
struct Box {
  int64_t lo[3] = {0, 0, 0};
  int64_t hi[3] = {-1, -1, -1};
  bool empty() const { return hi[0] < lo[0]; }
  Dims dims() const { return {hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1}; }
};

Status CheckSameSize(const Volume<uint8_t>& pred, const Volume<uint8_t>& gt) {
  if (pred.size() == gt.size()) return OkStatus();
  auto text = [](const Dims& d) {
    return std::to_string(d.x) + "x" + std::to_string(d.y) + "x" + std::to_string(d.z);
  };
  return InvalidArgumentError("prediction and ground truth differ in size: " + text(pred.size()) +
                              " vs " + text(gt.size()));
}

// One pass over the pair: the overlap counts and the bounding box of pred | gt.
struct PairScan {
  OverlapCounts counts;
  Box box;
};

PairScan ScanPair(const Volume<uint8_t>& pred, const Volume<uint8_t>& gt) {
  const Dims& s = pred.size();
  PairScan scan;
  Box& box = scan.box;
  box.lo[0] = s.x, box.lo[1] = s.y, box.lo[2] = s.z;
  for (int64_t z = 0; z < s.z; ++z) {
    for (int64_t y = 0; y < s.y; ++y) {
      const uint8_t* p = pred.data() + pred.index(0, y, z);
      const uint8_t* g = gt.data() + gt.index(0, y, z);
      int64_t np = 0, ng = 0, both = 0;
      for (int64_t x = 0; x < s.x; ++x) {
        const int64_t a = p[x] != 0, b = g[x] != 0;
        np += a;
        ng += b;
        both += a & b;
      }
      if (np == 0 && ng == 0) continue;
      scan.counts.pred += np;
      scan.counts.gt += ng;
      scan.counts.intersection += both;
      int64_t lo = 0, hi = s.x - 1;
      while (!p[lo] && !g[lo]) ++lo;
      while (!p[hi] && !g[hi]) --hi;
      box.lo[0] = std::min(box.lo[0], lo), box.hi[0] = std::max(box.hi[0], hi);
      box.lo[1] = std::min(box.lo[1], y), box.hi[1] = std::max(box.hi[1], y);
      box.lo[2] = std::min(box.lo[2], z), box.hi[2] = std::max(box.hi[2], z);
    }
  }
  if (box.hi[0] < 0) box = Box{};
  return scan;
}

// The union box grown by one voxel and clipped to the array. Every surface voxel lies in the
// union box, so the nearest-surface search never needs anything outside it. The margin keeps the
// background ring that lets erosion see the box edge; where the box meets the array edge,
// outside-is-background gives the same erosion as the full array.
Box WithMargin(Box box, const Dims& s) {
  if (box.empty()) return box;
  const int64_t n[3] = {s.x, s.y, s.z};
  for (int a = 0; a < 3; ++a) {
    box.lo[a] = std::max<int64_t>(box.lo[a] - 1, 0);
    box.hi[a] = std::min<int64_t>(box.hi[a] + 1, n[a] - 1);
  }
  return box;
}

// The surface of `mask` inside `box`, as a volume of the box's size.
Volume<uint8_t> BorderInBox(const Volume<uint8_t>& mask, const Box& box) {
  const Dims d = box.dims();
  if (d == mask.size()) return ExtractBorder(mask);  // nothing to crop (near-full masks)
  Volume<uint8_t> cropped(d);
  for (int64_t z = 0; z < d.z; ++z) {
    for (int64_t y = 0; y < d.y; ++y) {
      const uint8_t* src = mask.data() + mask.index(box.lo[0], box.lo[1] + y, box.lo[2] + z);
      std::copy(src, src + d.x, cropped.data() + cropped.index(0, y, z));
    }
  }
  return ExtractBorder(cropped);
}

// Distances from every surface voxel of `from` to the surface of `to` (the features of the EDT);
// +inf everywhere when `to` has no surface.
std::vector<double> DirectedDistances(const Volume<uint8_t>& from_border,
                                      const Volume<uint8_t>& to_border, const Spacing3& spacing) {
  std::vector<double> d =
      SquaredDistancesAt(to_border.data(), from_border.data(), to_border.size(), spacing);
  for (double& v : d) v = std::sqrt(v);
  return d;
}

struct Borders {
  Volume<uint8_t> pred, gt;
};

Borders CroppedBorders(const Volume<uint8_t>& pred, const Volume<uint8_t>& gt,
                       const Box& union_box) {
  const Box box = WithMargin(union_box, pred.size());
  if (box.empty()) return {};
  return {BorderInBox(pred, box), BorderInBox(gt, box)};
}

SurfaceDistances DistancesBetween(const Borders& borders, const Spacing3& spacing) {
  if (borders.pred.empty()) return {};
  return {DirectedDistances(borders.pred, borders.gt, spacing),
          DirectedDistances(borders.gt, borders.pred, spacing)};
}

MetricStatus PairStatus(int64_t pred, int64_t gt) {
  if (pred == 0 && gt == 0) return MetricStatus::kBothEmpty;
  if (pred == 0) return MetricStatus::kPredEmpty;
  if (gt == 0) return MetricStatus::kGtEmpty;
  return MetricStatus::kOk;
}

Metric Measured(double value) { return {value, MetricStatus::kOk}; }

double MaxOf(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

std::vector<float> ToFloat32(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

// medpy.hd and hd95 from the two directed distance sets (both masks non-empty).
void MedpyDistances(const SurfaceDistances& d, Metric& hd, Metric& hd95) {
  hd = Measured(std::max(MaxOf(d.pred_to_gt), MaxOf(d.gt_to_pred)));
  std::vector<double> pooled = d.pred_to_gt;
  pooled.insert(pooled.end(), d.gt_to_pred.begin(), d.gt_to_pred.end());
  hd95 = Measured(PercentileLinear(std::move(pooled), 95.0));
}

// MONAI's values: distances cast to float32, HD the larger directed maximum, HD95 the larger
// directed torch.quantile(0.95). Both masks non-empty.
void MonaiDistances(const SurfaceDistances& d, Metric& hd, Metric& hd95, Metric* directed95) {
  const std::vector<float> p2g = ToFloat32(d.pred_to_gt), g2p = ToFloat32(d.gt_to_pred);
  const float max_p2g = *std::max_element(p2g.begin(), p2g.end());
  const float max_g2p = *std::max_element(g2p.begin(), g2p.end());
  hd = Measured(std::max(max_p2g, max_g2p));
  const float q_p2g = QuantileLinearFloat32(p2g, 0.95f);
  const float q_g2p = QuantileLinearFloat32(g2p, 0.95f);
  hd95 = Measured(std::max(q_p2g, q_g2p));
  if (directed95) *directed95 = Measured(q_p2g);
}

// What MONAI returns when a mask is empty: every distance becomes +inf (or there are none), so
// the maximum is inf (NaN with no distances at all) and the quantile interpolates inf - inf.
void MonaiEmpty(MetricStatus pair, Metric& hd, Metric& hd95, Metric* directed95) {
  hd = {pair == MetricStatus::kBothEmpty ? kNaN : kInf, pair};
  hd95 = {kNaN, pair};
  if (directed95) *directed95 = {kNaN, pair};
}

void FillDice(MaskMetrics& m) {
  const OverlapCounts c{m.pred_voxels, m.gt_voxels, m.intersection_voxels};
  const MetricStatus pair = m.status;
  const bool both_empty = pair == MetricStatus::kBothEmpty;
  const bool gt_empty = c.gt == 0;
  m.medpy.dice = {DiceFromCounts(c, 1.0), both_empty ? pair : MetricStatus::kOk};
  m.medpy.dice_legacy = {DiceFromCounts(c, 0.0), both_empty ? pair : MetricStatus::kOk};
  // MONAI sums float32 masks and divides in float32.
  const float monai =
      both_empty ? 1.0f
                 : static_cast<float>(2 * c.intersection) / static_cast<float>(c.pred + c.gt);
  m.monai.dice = gt_empty ? Metric{kNaN, pair} : Measured(monai);
  m.monai.dice_keep_empty = {monai, both_empty ? pair : MetricStatus::kOk};
  // The reference scores an empty prediction 0; with a GT that is the formula's value too.
  if (c.pred == 0) {
    m.reference.dice = {0.0, both_empty ? pair : MetricStatus::kOk};
  } else {
    m.reference.dice = m.medpy.dice;
  }
}

void FillDistances(const Volume<uint8_t>& pred, const Volume<uint8_t>& gt, const Box& union_box,
                   const MetricOptions& options, MaskMetrics& m) {
  const MetricStatus pair = m.status;
  const bool any_empty = pair != MetricStatus::kOk;
  const bool isotropic_unit = m.spacing[0] == 1.0 && m.spacing[1] == 1.0 && m.spacing[2] == 1.0;
  const bool want_voxels = options.voxel_distances;

  if (any_empty) {
    // medpy raises on any empty mask.
    m.medpy.hd = m.medpy.hd95 = {kNaN, pair};
    MonaiEmpty(pair, m.monai.hd, m.monai.hd95, &m.monai.hd95_pred_to_gt);
    if (want_voxels) {
      m.medpy.hd_voxels = m.medpy.hd95_voxels = {kNaN, pair};
      MonaiEmpty(pair, m.monai.hd_voxels, m.monai.hd95_voxels, nullptr);
    }
  } else {
    const Borders borders = CroppedBorders(pred, gt, union_box);
    const SurfaceDistances mm = DistancesBetween(borders, m.spacing);
    MedpyDistances(mm, m.medpy.hd, m.medpy.hd95);
    MonaiDistances(mm, m.monai.hd, m.monai.hd95, &m.monai.hd95_pred_to_gt);
    if (want_voxels) {
      // With unit spacing the voxel-unit distances are the same numbers; skip the second EDT.
      const SurfaceDistances vox =
          isotropic_unit ? mm : DistancesBetween(borders, Spacing3{1.0, 1.0, 1.0});
      MedpyDistances(vox, m.medpy.hd_voxels, m.medpy.hd95_voxels);
      MonaiDistances(vox, m.monai.hd_voxels, m.monai.hd95_voxels, nullptr);
    }
  }

  if (!want_voxels) return;
  // Reference HD95: (0) for an empty prediction, medpy's raise for an empty GT.
  if (m.pred_voxels == 0) {
    m.reference.hd95 = {0.0, pair};
  } else {
    m.reference.hd95 = m.medpy.hd95_voxels;
  }
}

}  // namespace

std::string_view MetricStatusName(MetricStatus status) {
  switch (status) {
    case MetricStatus::kOk:
      return "ok";
    case MetricStatus::kPredEmpty:
      return "pred_empty";
    case MetricStatus::kGtEmpty:
      return "gt_empty";
    case MetricStatus::kBothEmpty:
      return "both_empty";
    case MetricStatus::kNotComputed:
      return "not_computed";
  }
  return "unknown";
}

StatusOr<OverlapCounts> CountOverlap(const Volume<uint8_t>& pred, const Volume<uint8_t>& gt) {
  RETURN_IF_ERROR(CheckSameSize(pred, gt));
  OverlapCounts c;
  const uint8_t* p = pred.data();
  const uint8_t* g = gt.data();
  const int64_t n = pred.count();
  for (int64_t i = 0; i < n; ++i) {
    const bool a = p[i] != 0, b = g[i] != 0;
    c.pred += a;
    c.gt += b;
    c.intersection += a && b;
  }
  return c;
}

double DiceFromCounts(const OverlapCounts& counts, double if_both_empty) {
  const int64_t denominator = counts.pred + counts.gt;
  if (denominator == 0) return if_both_empty;
  return 2.0 * static_cast<double>(counts.intersection) / static_cast<double>(denominator);
}

StatusOr<SurfaceDistances> ComputeSurfaceDistances(const Volume<uint8_t>& pred,
                                                   const Volume<uint8_t>& gt,
                                                   const Spacing3& spacing) {
  RETURN_IF_ERROR(CheckSameSize(pred, gt));
  return DistancesBetween(CroppedBorders(pred, gt, ScanPair(pred, gt).box), spacing);
}

double PercentileLinear(std::vector<double> values, double percent) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (n == 0) return kNaN;
  // numpy: virtual index (n-1)*q, neighbours floor and floor+1, and a lerp whose form switches
  // at weight 0.5 (numpy's _lerp) so that the result is exact at both ends.
  const double index = static_cast<double>(n - 1) * (percent / 100.0);
  if (index >= static_cast<double>(n - 1)) return *std::max_element(values.begin(), values.end());
  if (index <= 0.0) return *std::min_element(values.begin(), values.end());
  const int64_t k = static_cast<int64_t>(std::floor(index));
  const double t = index - static_cast<double>(k);
  std::nth_element(values.begin(), values.begin() + k, values.end());
  const double a = values[k];
  const double b = *std::min_element(values.begin() + k + 1, values.end());
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

float QuantileLinearFloat32(std::vector<float> values, float q) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (n == 0) return std::numeric_limits<float>::quiet_NaN();
  // torch: rank = q * (n-1) as a float32 product, below/above = floor/ceil, weight = rank -
  // below, then at::lerp, whose form also switches at |weight| 0.5.
  const float rank = q * static_cast<float>(n - 1);
  const int64_t below = static_cast<int64_t>(rank);
  const int64_t above = static_cast<int64_t>(std::ceil(rank));
  const float weight = rank - static_cast<float>(below);
  std::nth_element(values.begin(), values.begin() + below, values.end());
  const float a = values[below];
  const float b = above == below ? a : *std::min_element(values.begin() + below + 1, values.end());
  const float diff = b - a;
  return std::abs(weight) < 0.5f ? a + weight * diff : b - diff * (1.0f - weight);
}

StatusOr<MaskMetrics> ComputeMaskMetrics(const Volume<uint8_t>& pred, const Volume<uint8_t>& gt,
                                         const MetricOptions& options) {
  RETURN_IF_ERROR(CheckSameSize(pred, gt));
  if (options.require_same_geometry &&
      !pred.geometry().NearlyEquals(gt.geometry(), options.geometry_tolerance)) {
    auto text = [](const Geometry& g) {
      char buf[160];
      std::snprintf(buf, sizeof(buf), "spacing (%g, %g, %g) origin (%g, %g, %g)", g.spacing[0],
                    g.spacing[1], g.spacing[2], g.origin[0], g.origin[1], g.origin[2]);
      return std::string(buf);
    };
    return InvalidArgumentError("prediction and ground truth lie on different grids: prediction " +
                                text(pred.geometry()) + ", ground truth " + text(gt.geometry()) +
                                " (or a different direction)");
  }
  for (double s : gt.geometry().spacing) {
    if (!(s > 0.0) || !std::isfinite(s)) {
      return InvalidArgumentError("the ground truth's voxel spacing must be positive and finite");
    }
  }
  const PairScan scan = ScanPair(pred, gt);
  const OverlapCounts& counts = scan.counts;
  MaskMetrics m;
  m.pred_voxels = counts.pred;
  m.gt_voxels = counts.gt;
  m.intersection_voxels = counts.intersection;
  m.status = PairStatus(counts.pred, counts.gt);
  m.spacing = gt.geometry().spacing;
  FillDice(m);
  if (options.distances) FillDistances(pred, gt, scan.box, options, m);
  return m;
}

}  // namespace clisc
