#include "common/metrics_summary.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace clisc {

ValueSummary SummarizeValues(const std::vector<double>& values) {
  std::vector<double> v;
  v.reserve(values.size());
  for (double x : values)
    if (!std::isnan(x)) v.push_back(x);
  ValueSummary s;
  s.count = static_cast<int64_t>(v.size());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0.0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  double squares = 0.0;
  for (double x : v) squares += (x - s.mean) * (x - s.mean);
  s.stddev = std::sqrt(squares / static_cast<double>(v.size()));
  const size_t half = v.size() / 2;
  s.median = v.size() % 2 == 1 ? v[half] : 0.5 * (v[half - 1] + v[half]);
  s.min = v.front();
  s.max = v.back();
  return s;
}

MetricsSummary SummarizeMetrics(const std::vector<MaskMetrics>& cases) {
  MetricsSummary s;
  s.cases = static_cast<int64_t>(cases.size());
  std::vector<double> dice, hd95, hd95_monai, hd, ref_dice, ref_hd95, monai_dice, monai_hd95;
  for (const MaskMetrics& m : cases) {
    switch (m.status) {
      case MetricStatus::kPredEmpty:
        ++s.pred_empty;
        break;
      case MetricStatus::kGtEmpty:
        ++s.gt_empty;
        break;
      case MetricStatus::kBothEmpty:
        ++s.both_empty;
        break;
      default:
        break;
    }
    const bool gt_present = m.gt_voxels > 0;
    const bool both_present = m.status == MetricStatus::kOk;
    if (gt_present) dice.push_back(m.medpy.dice.value);
    if (both_present) {
      hd95.push_back(m.medpy.hd95.value);
      hd95_monai.push_back(m.monai.hd95.value);
      hd.push_back(m.medpy.hd.value);
    }
    // The reference returns both numbers or crashes (medpy's hd95 raises on the empty GT).
    if (m.pred_voxels > 0 && m.gt_voxels == 0) {
      ++s.reference_crashes;
    } else {
      ref_dice.push_back(m.reference.dice.value);
      ref_hd95.push_back(m.reference.hd95.value);
    }
    monai_dice.push_back(m.monai.dice.value);
    monai_hd95.push_back(m.monai.hd95.value);
  }
  s.dice = SummarizeValues(dice);
  s.hd95 = SummarizeValues(hd95);
  s.hd95_monai = SummarizeValues(hd95_monai);
  s.hd = SummarizeValues(hd);
  s.reference_dice = SummarizeValues(ref_dice);
  s.reference_hd95 = SummarizeValues(ref_hd95);
  s.monai_dice = SummarizeValues(monai_dice);
  s.monai_hd95 = SummarizeValues(monai_hd95);
  return s;
}

namespace {

nlohmann::json Number(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

}  // namespace

nlohmann::json ToJson(const Metric& metric) {
  return {{"value", Number(metric.value)},
          {"status", std::string(MetricStatusName(metric.status))}};
}

nlohmann::json ToJson(const MaskMetrics& m) {
  return {
      {"status", std::string(MetricStatusName(m.status))},
      {"pred_voxels", m.pred_voxels},
      {"gt_voxels", m.gt_voxels},
      {"intersection_voxels", m.intersection_voxels},
      {"spacing_xyz_mm", m.spacing},
      {"medpy",
       {{"dice", ToJson(m.medpy.dice)},
        {"dice_legacy", ToJson(m.medpy.dice_legacy)},
        {"hd_mm", ToJson(m.medpy.hd)},
        {"hd95_mm", ToJson(m.medpy.hd95)},
        {"hd_voxels", ToJson(m.medpy.hd_voxels)},
        {"hd95_voxels", ToJson(m.medpy.hd95_voxels)}}},
      {"monai",
       {{"dice", ToJson(m.monai.dice)},
        {"dice_keep_empty", ToJson(m.monai.dice_keep_empty)},
        {"hd_mm", ToJson(m.monai.hd)},
        {"hd95_mm", ToJson(m.monai.hd95)},
        {"hd95_pred_to_gt_mm", ToJson(m.monai.hd95_pred_to_gt)},
        {"hd_voxels", ToJson(m.monai.hd_voxels)},
        {"hd95_voxels", ToJson(m.monai.hd95_voxels)}}},
      {"reference",
       {{"dice", ToJson(m.reference.dice)}, {"hd95_voxels", ToJson(m.reference.hd95)}}},
  };
}

nlohmann::json ToJson(const ValueSummary& s) {
  return {{"count", s.count},           {"mean", Number(s.mean)}, {"std", Number(s.stddev)},
          {"median", Number(s.median)}, {"min", Number(s.min)},   {"max", Number(s.max)}};
}

nlohmann::json ToJson(const MetricsSummary& s) {
  return {
      {"cases", s.cases},
      {"empty", {{"pred", s.pred_empty}, {"gt", s.gt_empty}, {"both", s.both_empty}}},
      {"ours",
       {{"dice", ToJson(s.dice)},
        {"hd95_mm", ToJson(s.hd95)},
        {"hd95_monai_mm", ToJson(s.hd95_monai)},
        {"hd_mm", ToJson(s.hd)},
        {"note",
         "Dice over cases with a non-empty GT (an empty prediction scores 0); distances over "
         "cases where both masks are non-empty"}}},
      {"reference",
       {{"dice", ToJson(s.reference_dice)},
        {"hd95_voxels", ToJson(s.reference_hd95)},
        {"crashes", s.reference_crashes},
        {"note",
         "calculate_metric_percase: empty prediction -> Dice 0, HD95 0; HD95 without spacing; "
         "a non-empty prediction with an empty GT crashes and is left out"}}},
      {"monai",
       {{"dice", ToJson(s.monai_dice)},
        {"hd95_mm", ToJson(s.monai_hd95)},
        {"note", "reduction 'mean' over the non-NaN values"}}},
  };
}

}  // namespace clisc
