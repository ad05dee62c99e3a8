// Aggregating per-case metrics over a set of cases, under three conventions side by side:
// - ours (METHOD.md): Dice over the cases whose GT is non-empty (a missed tumour scores 0), HD95
//   over the cases where both masks are non-empty; the cases left out are counted, never hidden;
// - the CLISC reference: calculate_metric_percase's (Dice, HD95 in voxels) for every case it does
//   not crash on, with an empty prediction scoring (0, 0), which flatters the HD95 mean;
// - MONAI's reduction "mean" (DiceMetric, HausdorffDistanceMetric): the mean of the non-NaN
//   values (an inf would propagate).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "common/metrics.h"

namespace clisc {

// Mean, population standard deviation (numpy's default, ddof = 0), median, min and max of the
// values that are not NaN; all NaN when there is none.
struct ValueSummary {
  int64_t count = 0;
  double mean = kNaN, stddev = kNaN, median = kNaN, min = kNaN, max = kNaN;
};
ValueSummary SummarizeValues(const std::vector<double>& values);

struct MetricsSummary {
  int64_t cases = 0;
  int64_t pred_empty = 0, gt_empty = 0, both_empty = 0;  // by pair status; each case counts once

  // Ours.
  ValueSummary dice;        // medpy dc, cases with a non-empty GT
  ValueSummary hd95;        // medpy HD95 (pooled) in mm, both masks non-empty
  ValueSummary hd95_monai;  // MONAI HD95 (larger directed percentile) in mm, both non-empty
  ValueSummary hd;          // medpy HD in mm, both non-empty

  // The reference convention.
  ValueSummary reference_dice;
  ValueSummary reference_hd95;    // voxel units: the reference passes no spacing
  int64_t reference_crashes = 0;  // non-empty prediction against an empty GT: medpy raises

  // MONAI's own aggregation of its values: the mean of the non-NaN ones.
  ValueSummary monai_dice;
  ValueSummary monai_hd95;
};

MetricsSummary SummarizeMetrics(const std::vector<MaskMetrics>& cases);

// JSON forms for reports and `clisc eval --json`. A NaN or inf value is written as null, next to
// the metric's status, so the document stays strict JSON.
nlohmann::json ToJson(const Metric& metric);
nlohmann::json ToJson(const MaskMetrics& metrics);
nlohmann::json ToJson(const ValueSummary& summary);
nlohmann::json ToJson(const MetricsSummary& summary);

}  // namespace clisc
