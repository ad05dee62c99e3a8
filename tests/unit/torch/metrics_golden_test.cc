// The metric core against the values medpy and MONAI produced on shared/fixtures/metrics (see its
// README): 29 mask pairs, 15 values each, plus medpy's raw surface distances and MONAI's
// aggregates. LibTorch is only the reader of the fixture file.
#include <gtest/gtest.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/metrics_summary.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;

fs::path FixtureFile() {
  const char* env = std::getenv("CLISC_FIXTURES");
  const fs::path root = env && *env ? fs::path(env) : fs::path(CLISC_FIXTURES_DEFAULT);
  return root / "metrics" / "metrics_cases.pth";
}

bool FixturesRequired() {
  const char* env = std::getenv("CLISC_REQUIRE_FIXTURES");
  return env && std::string(env) == "1";
}

// A case: the masks on our grid and what the official code returned.
struct GoldenCase {
  std::string id;
  Volume<uint8_t> pred, gt;
  std::vector<double> values;  // value_order of the README
  std::vector<uint8_t> errors;
  std::vector<double> sd_pred_to_gt, sd_gt_to_pred;  // medpy's sorted distances, if present
};

std::vector<double> ToDoubles(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// The fixture's [20, 24, 28] arrays are (z, y, x) C-order, which is our x-fastest layout, and
// spacing[i] belongs to array axis i, so our (x, y, z) spacing is the reverse.
Volume<uint8_t> ToVolume(const at::Tensor& t, const std::vector<double>& spacing) {
  const at::Tensor c = t.to(at::kByte).contiguous();
  Geometry g;
  g.spacing = {spacing[2], spacing[1], spacing[0]};
  Volume<uint8_t> v(Dims{c.size(2), c.size(1), c.size(0)}, 0, g);
  std::copy(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel(), v.data());
  return v;
}

std::vector<GoldenCase> LoadCases(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const c10::IValue root = torch::pickle_load(bytes);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& entry : root.toGenericDict()) {
    tensors[entry.key().toStringRef()] = entry.value().toTensor();
  }
  std::vector<GoldenCase> cases;
  for (const auto& [key, tensor] : tensors) {
    const std::string suffix = "/values";
    if (key.size() <= suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    GoldenCase c;
    c.id = key.substr(0, key.size() - suffix.size());
    const std::vector<double> spacing = ToDoubles(tensors.at(c.id + "/spacing"));
    c.pred = ToVolume(tensors.at(c.id + "/pred"), spacing);
    c.gt = ToVolume(tensors.at(c.id + "/gt"), spacing);
    c.values = ToDoubles(tensor);
    const at::Tensor errors = tensors.at(c.id + "/errors").to(at::kByte).contiguous();
    c.errors.assign(errors.data_ptr<uint8_t>(), errors.data_ptr<uint8_t>() + errors.numel());
    if (tensors.count(c.id + "/medpy_sd_pred_to_gt")) {
      c.sd_pred_to_gt = ToDoubles(tensors.at(c.id + "/medpy_sd_pred_to_gt"));
      c.sd_gt_to_pred = ToDoubles(tensors.at(c.id + "/medpy_sd_gt_to_pred"));
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

// Our value for each entry of the README's value_order, with its family's tolerance.
enum class Family { kDice, kMedpyDistance, kMonai };
struct Entry {
  const char* name;
  Family family;
  const Metric& (*get)(const MaskMetrics&);
};
const Entry kEntries[15] = {
    {"medpy:dc", Family::kDice, [](const MaskMetrics& m) -> const Metric& { return m.medpy.dice; }},
    {"medpy:dc_medpy_0.4.0", Family::kDice,
     [](const MaskMetrics& m) -> const Metric& { return m.medpy.dice_legacy; }},
    {"medpy:hd95_spacing", Family::kMedpyDistance,
     [](const MaskMetrics& m) -> const Metric& { return m.medpy.hd95; }},
    {"medpy:hd_spacing", Family::kMedpyDistance,
     [](const MaskMetrics& m) -> const Metric& { return m.medpy.hd; }},
    {"medpy:hd95_nospacing", Family::kMedpyDistance,
     [](const MaskMetrics& m) -> const Metric& { return m.medpy.hd95_voxels; }},
    {"medpy:hd_nospacing", Family::kMedpyDistance,
     [](const MaskMetrics& m) -> const Metric& { return m.medpy.hd_voxels; }},
    {"medpy:clisc_dice", Family::kDice,
     [](const MaskMetrics& m) -> const Metric& { return m.reference.dice; }},
    {"medpy:clisc_hd95", Family::kMedpyDistance,
     [](const MaskMetrics& m) -> const Metric& { return m.reference.hd95; }},
    {"monai:compute_dice", Family::kMonai,
     [](const MaskMetrics& m) -> const Metric& { return m.monai.dice; }},
    {"monai:compute_dice_ignore_empty_false", Family::kMonai,
     [](const MaskMetrics& m) -> const Metric& { return m.monai.dice_keep_empty; }},
    {"monai:hd95_spacing", Family::kMonai,
     [](const MaskMetrics& m) -> const Metric& { return m.monai.hd95; }},
    {"monai:hd_spacing", Family::kMonai,
     [](const MaskMetrics& m) -> const Metric& { return m.monai.hd; }},
    {"monai:hd95_nospacing", Family::kMonai,
     [](const MaskMetrics& m) -> const Metric& { return m.monai.hd95_voxels; }},
    {"monai:hd_nospacing", Family::kMonai,
     [](const MaskMetrics& m) -> const Metric& { return m.monai.hd_voxels; }},
    {"monai:hd95_spacing_directed_pred_to_gt", Family::kMonai,
     [](const MaskMetrics& m) -> const Metric& { return m.monai.hd95_pred_to_gt; }},
};

bool Close(Family family, double ours, double expected) {
  const double diff = std::abs(ours - expected);
  switch (family) {
    case Family::kDice:
      return diff <= 1e-6;
    case Family::kMedpyDistance:
      return diff <= 1e-9 * std::max(1.0, std::abs(expected));
    case Family::kMonai:
      return diff <= 1e-5 + 1e-6 * std::abs(expected);
  }
  return false;
}

class MetricsGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path file = FixtureFile();
    if (!fs::exists(file)) {
      if (FixturesRequired()) FAIL() << "metric fixtures required but missing: " << file;
      GTEST_SKIP() << "metric fixtures not found at " << file
                   << " (set CLISC_FIXTURES; CLISC_REQUIRE_FIXTURES=1 turns this into a failure)";
    }
    cases_ = LoadCases(file);
    ASSERT_EQ(cases_.size(), 29u) << "fixture holds an unexpected number of cases";
  }
  std::vector<GoldenCase> cases_;
};

TEST_F(MetricsGoldenTest, AllFifteenValuesOfEveryCase) {
  double max_dev[3] = {0, 0, 0};
  double max_rel_medpy = 0;
  int compared = 0, errors = 0;
  for (const GoldenCase& c : cases_) {
    SCOPED_TRACE(c.id);
    auto result = ComputeMaskMetrics(c.pred, c.gt);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    for (int k = 0; k < 15; ++k) {
      const Entry& e = kEntries[k];
      const Metric& ours = e.get(*result);
      const double expected = c.values[k];
      EXPECT_NE(ours.status, MetricStatus::kNotComputed) << e.name;
      if (c.errors[k]) {
        // The official call raised: we must flag the empty mask and give no number.
        ++errors;
        EXPECT_NE(ours.status, MetricStatus::kOk) << e.name;
        EXPECT_TRUE(std::isnan(ours.value)) << e.name << " = " << ours.value;
        continue;
      }
      ++compared;
      if (!std::isfinite(expected)) {
        // MONAI's NaN and inf come only from empty masks, and the status must say which.
        EXPECT_NE(ours.status, MetricStatus::kOk) << e.name;
        if (std::isnan(expected)) {
          EXPECT_TRUE(std::isnan(ours.value)) << e.name << " = " << ours.value;
        } else {
          EXPECT_EQ(ours.value, expected) << e.name;
        }
      } else {
        EXPECT_TRUE(Close(e.family, ours.value, expected))
            << e.name << ": ours " << std::setprecision(17) << ours.value << " expected "
            << expected;
        double& dev = max_dev[static_cast<int>(e.family)];
        dev = std::max(dev, std::abs(ours.value - expected));
        if (e.family == Family::kMedpyDistance && expected != 0) {
          max_rel_medpy = std::max(max_rel_medpy, std::abs(ours.value - expected) / expected);
        }
      }
    }
  }
  EXPECT_EQ(compared + errors, 29 * 15);
  std::cout << "golden metrics: " << compared << " values compared, " << errors
            << " official errors matched\n"
            << std::setprecision(3) << "  max |dev| dice " << max_dev[0] << ", medpy distances "
            << max_dev[1] << " mm (max rel " << max_rel_medpy << "), monai " << max_dev[2] << "\n";
  RecordProperty("max_dev_dice", std::to_string(max_dev[0]));
  RecordProperty("max_dev_medpy_mm", std::to_string(max_dev[1]));
  RecordProperty("max_dev_monai", std::to_string(max_dev[2]));
}

TEST_F(MetricsGoldenTest, SurfaceDistancesMatchMedpy) {
  int checked = 0;
  for (const GoldenCase& c : cases_) {
    if (c.sd_pred_to_gt.empty()) continue;
    SCOPED_TRACE(c.id);
    auto d = ComputeSurfaceDistances(c.pred, c.gt, c.gt.geometry().spacing);
    ASSERT_TRUE(d.ok());
    std::vector<double> p2g = d->pred_to_gt, g2p = d->gt_to_pred;
    std::sort(p2g.begin(), p2g.end());
    std::sort(g2p.begin(), g2p.end());
    ASSERT_EQ(p2g.size(), c.sd_pred_to_gt.size());
    ASSERT_EQ(g2p.size(), c.sd_gt_to_pred.size());
    for (size_t i = 0; i < p2g.size(); ++i)
      EXPECT_NEAR(p2g[i], c.sd_pred_to_gt[i], 1e-12 * std::max(1.0, p2g[i]));
    for (size_t i = 0; i < g2p.size(); ++i)
      EXPECT_NEAR(g2p[i], c.sd_gt_to_pred[i], 1e-12 * std::max(1.0, g2p[i]));
    ++checked;
  }
  EXPECT_EQ(checked, 25);  // every case where both masks are non-empty
}

TEST_F(MetricsGoldenTest, MonaiAggregates) {
  std::vector<MaskMetrics> all;
  for (const GoldenCase& c : cases_) {
    auto m = ComputeMaskMetrics(c.pred, c.gt);
    ASSERT_TRUE(m.ok());
    all.push_back(*m);
  }
  const MetricsSummary s = SummarizeMetrics(all);
  // cases.json "aggregates": DiceMetric and HausdorffDistanceMetric(percentile=95), spacing.
  EXPECT_EQ(s.monai_dice.count, 26);
  EXPECT_NEAR(s.monai_dice.mean, 0.5199448466300964, 1e-6 * 0.52);
  EXPECT_EQ(s.monai_hd95.count, 25);
  EXPECT_NEAR(s.monai_hd95.mean, 4.935835361480713, 1e-6 * 4.94);
  // The pair statuses of the set: one pred-empty, one GT-empty, two both-empty cases.
  EXPECT_EQ(s.pred_empty, 1);
  EXPECT_EQ(s.gt_empty, 1);
  EXPECT_EQ(s.both_empty, 2);
  EXPECT_EQ(s.reference_crashes, 1);
  EXPECT_EQ(s.hd95.count, 25);
  EXPECT_EQ(s.dice.count, 26);
  EXPECT_EQ(s.reference_dice.count, 28);
}

}  // namespace
}  // namespace clisc
