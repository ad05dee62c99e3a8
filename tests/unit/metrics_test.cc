#include "common/metrics.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "common/distance_transform.h"
#include "common/morphology.h"
#include "common/volume_io.h"
#include "tests/unit/test_volumes.h"

namespace clisc {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Volume<uint8_t> RandomMask(Dims size, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  Volume<uint8_t> mask(size);
  for (auto& v : mask.voxels()) v = (rng() % 10000) < density * 10000;
  return mask;
}

Volume<uint8_t> Box(Dims size, Dims lo, Dims extent, Geometry g = {}) {
  Volume<uint8_t> m(size, 0, g);
  for (int64_t z = lo.z; z < lo.z + extent.z; ++z)
    for (int64_t y = lo.y; y < lo.y + extent.y; ++y)
      for (int64_t x = lo.x; x < lo.x + extent.x; ++x) m.at(x, y, z) = 1;
  return m;
}

Geometry WithSpacing(double x, double y, double z) {
  Geometry g;
  g.spacing = {x, y, z};
  return g;
}

// Brute-force squared EDT: the minimum over all features of sum_i (spacing_i * offset_i)^2.
std::vector<double> BruteSquaredEdt(const Volume<uint8_t>& f, const Spacing3& sp) {
  const Dims& s = f.size();
  std::vector<double> out(static_cast<size_t>(s.count()), kInf);
  for (int64_t z = 0; z < s.z; ++z)
    for (int64_t y = 0; y < s.y; ++y)
      for (int64_t x = 0; x < s.x; ++x)
        for (int64_t fz = 0; fz < s.z; ++fz)
          for (int64_t fy = 0; fy < s.y; ++fy)
            for (int64_t fx = 0; fx < s.x; ++fx) {
              if (!f.at(fx, fy, fz)) continue;
              const double dx = sp[0] * (x - fx), dy = sp[1] * (y - fy), dz = sp[2] * (z - fz);
              double& o = out[f.index(x, y, z)];
              o = std::min(o, dx * dx + dy * dy + dz * dz);
            }
  return out;
}

// Brute-force directed surface distances over the whole array, no cropping.
std::vector<double> BruteDirected(const Volume<uint8_t>& from, const Volume<uint8_t>& to,
                                  const Spacing3& sp) {
  const Volume<uint8_t> a = ExtractBorder(from), b = ExtractBorder(to);
  const std::vector<double> d2 = BruteSquaredEdt(b, sp);
  std::vector<double> out;
  for (int64_t i = 0; i < a.count(); ++i)
    if (a[i]) out.push_back(std::sqrt(d2[i]));
  return out;
}

void ExpectClose(const std::vector<double>& a, const std::vector<double>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(b[i])) {
      EXPECT_EQ(a[i], b[i]) << i;
    } else {
      EXPECT_NEAR(a[i], b[i], 1e-12 * std::max(1.0, b[i])) << i;
    }
  }
}

TEST(DistanceTransformTest, MatchesBruteForceWithAnisotropicSpacing) {
  const Spacing3 spacings[] = {{1, 1, 1}, {0.9375, 0.9375, 1.5}, {1.5, 0.7, 2.3}, {3.1, 1, 0.4}};
  uint32_t seed = 7;
  for (const Spacing3& sp : spacings) {
    for (double density : {0.002, 0.03, 0.3}) {
      Volume<uint8_t> f = RandomMask(Dims{9, 7, 6}, density, seed++);
      ExpectClose(SquaredDistanceTransform(f.data(), f.size(), sp), BruteSquaredEdt(f, sp));
    }
  }
}

TEST(DistanceTransformTest, QueriesGetTheSameValues) {
  // Sparse features leave many queries far from any feature (the full column pass), dense ones
  // keep them near (the slice-window search); both must give the transform's values.
  const Spacing3 sp{0.9, 1.2, 0.7};
  uint32_t seed = 40;
  for (double density : {0.001, 0.01, 0.2}) {
    Volume<uint8_t> f = RandomMask(Dims{13, 11, 24}, density, seed++);
    Volume<uint8_t> q = RandomMask(Dims{13, 11, 24}, 0.3, seed++);
    const std::vector<double> all = BruteSquaredEdt(f, sp);
    std::vector<double> expected;
    for (int64_t i = 0; i < q.count(); ++i)
      if (q[i]) expected.push_back(all[i]);
    ExpectClose(SquaredDistancesAt(f.data(), q.data(), f.size(), sp), expected);
  }
}

TEST(DistanceTransformTest, EdgeCases) {
  // No features: +inf everywhere (scipy's EDT has no finite answer either).
  Volume<uint8_t> none(Dims{3, 4, 5});
  const Volume<double> far = SquaredDistanceTransform(none, {1, 1, 1});
  for (double d : far.voxels()) EXPECT_EQ(d, kInf);
  // One feature in a thin volume, and single-voxel axes.
  Volume<uint8_t> one(Dims{1, 1, 7});
  one.at(0, 0, 2) = 1;
  Volume<double> d = DistanceTransform(one, {1, 1, 0.5});
  EXPECT_DOUBLE_EQ(d.at(0, 0, 0), 1.0);
  EXPECT_DOUBLE_EQ(d.at(0, 0, 6), 2.0);
  Volume<uint8_t> row(Dims{8, 1, 1});
  row.at(7, 0, 0) = 1;
  EXPECT_DOUBLE_EQ(DistanceTransform(row, {0.25, 1, 1}).at(0, 0, 0), 1.75);
  Volume<uint8_t> empty_size(Dims{0, 3, 3});
  EXPECT_TRUE(SquaredDistanceTransform(empty_size, {1, 1, 1}).voxels().empty());
}

TEST(PercentileTest, MatchesNumpyLinear) {
  // np.percentile([1,2,3,4], 95) = 3.85; [0.5,7,1.25,3,9,2] at 95 -> 8.5, at 30 -> 1.625.
  EXPECT_NEAR(PercentileLinear({4, 1, 3, 2}, 95), 3.85, 1e-15);
  EXPECT_NEAR(PercentileLinear({0.5, 7, 1.25, 3, 9, 2}, 95), 8.5, 1e-15);
  EXPECT_NEAR(PercentileLinear({0.5, 7, 1.25, 3, 9, 2}, 30), 1.625, 1e-15);
  EXPECT_EQ(PercentileLinear({5}, 95), 5);
  EXPECT_EQ(PercentileLinear({3, 1}, 100), 3);
  EXPECT_EQ(PercentileLinear({3, 1}, 0), 1);
  EXPECT_TRUE(std::isnan(PercentileLinear({}, 95)));
}

TEST(PercentileTest, TorchQuantileInFloat32) {
  EXPECT_FLOAT_EQ(QuantileLinearFloat32({4, 1, 3, 2}, 0.95f), 3.85f);
  EXPECT_EQ(QuantileLinearFloat32({2.5f}, 0.95f), 2.5f);
  // All +inf: torch interpolates inf - inf and returns NaN, which is MONAI's HD95 on an empty mask.
  EXPECT_TRUE(std::isnan(QuantileLinearFloat32({INFINITY, INFINITY, INFINITY}, 0.95f)));
  EXPECT_TRUE(std::isnan(QuantileLinearFloat32({INFINITY}, 0.95f)));
  EXPECT_TRUE(std::isnan(QuantileLinearFloat32({}, 0.95f)));
}

TEST(SurfaceDistanceTest, CroppedTransformMatchesWholeArrayBruteForce) {
  const Spacing3 sp{1.3, 0.8, 2.0};
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    // Sparse masks so that the union box is smaller than the array, sometimes at its edge.
    Volume<uint8_t> pred = RandomMask(Dims{10, 8, 7}, 0.03, seed);
    Volume<uint8_t> gt = RandomMask(Dims{10, 8, 7}, 0.05, seed + 100);
    auto d = ComputeSurfaceDistances(pred, gt, sp);
    ASSERT_TRUE(d.ok());
    ExpectClose(d->pred_to_gt, BruteDirected(pred, gt, sp));
    ExpectClose(d->gt_to_pred, BruteDirected(gt, pred, sp));
  }
}

TEST(MaskMetricsTest, ShiftedBoxes) {
  // 4^3 boxes shifted by 2 voxels along x: overlap 2x4x4 = 32 of 64 each.
  const Geometry g = WithSpacing(1.5, 1.0, 1.0);
  Volume<uint8_t> pred = Box(Dims{16, 12, 12}, Dims{4, 4, 4}, Dims{4, 4, 4}, g);
  Volume<uint8_t> gt = Box(Dims{16, 12, 12}, Dims{6, 4, 4}, Dims{4, 4, 4}, g);
  auto m = ComputeMaskMetrics(pred, gt);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->status, MetricStatus::kOk);
  EXPECT_EQ(m->intersection_voxels, 32);
  EXPECT_DOUBLE_EQ(m->medpy.dice.value, 0.5);
  EXPECT_FLOAT_EQ(m->monai.dice.value, 0.5f);
  // The far face of each box is 2 voxels (3 mm along x) from the other's surface.
  EXPECT_DOUBLE_EQ(m->medpy.hd.value, 3.0);
  EXPECT_DOUBLE_EQ(m->medpy.hd_voxels.value, 2.0);
  EXPECT_FLOAT_EQ(m->monai.hd.value, 3.0f);
  // Pooled HD95 from the brute-force surface distances.
  std::vector<double> pooled = BruteDirected(pred, gt, g.spacing);
  std::vector<double> back = BruteDirected(gt, pred, g.spacing);
  pooled.insert(pooled.end(), back.begin(), back.end());
  std::sort(pooled.begin(), pooled.end());
  const double idx = 0.95 * (pooled.size() - 1);
  const size_t k = static_cast<size_t>(idx);
  const double expected = pooled[k] + (idx - k) * (pooled[k + 1] - pooled[k]);
  EXPECT_NEAR(m->medpy.hd95.value, expected, 1e-12);
  EXPECT_EQ(m->reference.dice.value, m->medpy.dice.value);
  EXPECT_EQ(m->reference.hd95.value, m->medpy.hd95_voxels.value);
}

TEST(MaskMetricsTest, IdenticalMasksAreZeroDistance) {
  Volume<uint8_t> a = RandomMask(Dims{12, 10, 8}, 0.4, 3);
  auto m = ComputeMaskMetrics(a, a);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->medpy.dice.value, 1.0);
  EXPECT_EQ(m->medpy.hd.value, 0.0);
  EXPECT_EQ(m->medpy.hd95.value, 0.0);
  EXPECT_EQ(m->monai.hd95.value, 0.0);
}

TEST(MaskMetricsTest, MonaiTakesTheLargerDirectedPercentile) {
  // A ball-like block plus a far cluster in pred: the cluster is a larger share of pred's surface
  // than of the pooled surfaces, so MONAI's HD95 exceeds medpy's.
  Volume<uint8_t> gt = Box(Dims{30, 14, 14}, Dims{2, 2, 2}, Dims{9, 9, 9});
  Volume<uint8_t> pred = gt;
  for (int z = 5; z < 8; ++z)
    for (int y = 5; y < 8; ++y)
      for (int x = 24; x < 27; ++x) pred.at(x, y, z) = 1;
  auto m = ComputeMaskMetrics(pred, gt);
  ASSERT_TRUE(m.ok());
  EXPECT_GE(m->monai.hd95.value, m->medpy.hd95.value);
  EXPECT_EQ(m->monai.hd95.value, m->monai.hd95_pred_to_gt.value);
  EXPECT_NEAR(m->medpy.hd.value, m->monai.hd.value, 1e-6 * m->medpy.hd.value);
}

TEST(MaskMetricsTest, EmptyMasksNeverFail) {
  const Dims size{8, 8, 8};
  Volume<uint8_t> empty(size);
  Volume<uint8_t> box = Box(size, Dims{2, 2, 2}, Dims{3, 3, 3});

  auto pred_empty = ComputeMaskMetrics(empty, box);
  ASSERT_TRUE(pred_empty.ok());
  const MaskMetrics& p = *pred_empty;
  EXPECT_EQ(p.status, MetricStatus::kPredEmpty);
  EXPECT_EQ(p.medpy.dice.value, 0.0);
  EXPECT_TRUE(p.medpy.dice.ok());
  EXPECT_EQ(p.medpy.hd95.status, MetricStatus::kPredEmpty);
  EXPECT_TRUE(std::isnan(p.medpy.hd95.value));
  EXPECT_EQ(p.monai.dice.value, 0.0);
  EXPECT_EQ(p.monai.hd.value, kInf);
  EXPECT_TRUE(std::isnan(p.monai.hd95.value));
  EXPECT_EQ(p.reference.dice.value, 0.0);
  EXPECT_EQ(p.reference.hd95.value, 0.0);  // the reference's flattering convention
  EXPECT_EQ(p.reference.hd95.status, MetricStatus::kPredEmpty);

  auto gt_empty = ComputeMaskMetrics(box, empty);
  ASSERT_TRUE(gt_empty.ok());
  const MaskMetrics& g = *gt_empty;
  EXPECT_EQ(g.status, MetricStatus::kGtEmpty);
  EXPECT_EQ(g.medpy.dice.value, 0.0);
  EXPECT_TRUE(std::isnan(g.monai.dice.value));
  EXPECT_EQ(g.monai.dice.status, MetricStatus::kGtEmpty);
  EXPECT_EQ(g.monai.dice_keep_empty.value, 0.0);
  EXPECT_EQ(g.monai.hd.value, kInf);
  EXPECT_TRUE(std::isnan(g.reference.hd95.value));  // the reference would crash here
  EXPECT_EQ(g.reference.hd95.status, MetricStatus::kGtEmpty);

  auto both = ComputeMaskMetrics(empty, empty);
  ASSERT_TRUE(both.ok());
  const MaskMetrics& b = *both;
  EXPECT_EQ(b.status, MetricStatus::kBothEmpty);
  EXPECT_EQ(b.medpy.dice.value, 1.0);
  EXPECT_EQ(b.medpy.dice.status, MetricStatus::kBothEmpty);
  EXPECT_EQ(b.medpy.dice_legacy.value, 0.0);
  EXPECT_TRUE(std::isnan(b.monai.dice.value));
  EXPECT_EQ(b.monai.dice_keep_empty.value, 1.0);
  EXPECT_TRUE(std::isnan(b.monai.hd.value));
  EXPECT_EQ(b.reference.dice.value, 0.0);
  EXPECT_EQ(b.reference.hd95.value, 0.0);
}

TEST(MaskMetricsTest, DifferentGridsAreAnError) {
  Volume<uint8_t> a(Dims{4, 4, 4}, 1), b(Dims{4, 4, 5}, 1);
  auto sized = ComputeMaskMetrics(a, b);
  ASSERT_FALSE(sized.ok());
  EXPECT_EQ(sized.status().code(), StatusCode::kInvalidArgument);

  Volume<uint8_t> c(Dims{4, 4, 4}, 1, WithSpacing(1, 1, 2));
  auto spaced = ComputeMaskMetrics(a, c);
  ASSERT_FALSE(spaced.ok());
  EXPECT_EQ(spaced.status().code(), StatusCode::kInvalidArgument);
  MetricOptions loose;
  loose.require_same_geometry = false;
  auto allowed = ComputeMaskMetrics(a, c, loose);
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->spacing[2], 2.0);  // the GT's spacing

  Volume<uint8_t> flat(Dims{4, 4, 4}, 1, WithSpacing(1, 0, 1));
  auto zero = ComputeMaskMetrics(flat, flat);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument);
}

TEST(MaskMetricsTest, OptionsSkipDistances) {
  Volume<uint8_t> a = Box(Dims{8, 8, 8}, Dims{1, 1, 1}, Dims{3, 3, 3});
  MetricOptions dice_only;
  dice_only.distances = false;
  auto m = ComputeMaskMetrics(a, a, dice_only);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->medpy.dice.value, 1.0);
  EXPECT_EQ(m->medpy.hd95.status, MetricStatus::kNotComputed);
  EXPECT_EQ(m->reference.hd95.status, MetricStatus::kNotComputed);
  EXPECT_EQ(MetricStatusName(MetricStatus::kGtEmpty), "gt_empty");
}

TEST(MaskMetricsTest, BorderAtTheArrayEdgeCounts) {
  // GT fills the array: its whole outer shell is surface, so a prediction one voxel smaller on
  // every side is one voxel from it everywhere.
  Volume<uint8_t> gt(Dims{8, 7, 6}, 1);
  Volume<uint8_t> pred = Box(Dims{8, 7, 6}, Dims{1, 1, 1}, Dims{6, 5, 4});
  auto m = ComputeMaskMetrics(pred, gt);
  ASSERT_TRUE(m.ok());
  auto d = ComputeSurfaceDistances(pred, gt, {1, 1, 1});
  ASSERT_TRUE(d.ok());
  for (double v : d->pred_to_gt) EXPECT_EQ(v, 1.0);
  EXPECT_EQ(m->medpy.hd.value, std::sqrt(3.0));  // GT's corners reach pred's corners diagonally
}

// ---- `clisc eval`, end to end through the binary. ----

struct CliResult {
  int exit_code = -1;
  std::string out;
};

CliResult RunEval(const std::string& args) {
  const std::string command =
      std::string(CLISC_BINARY) + " --log-level error eval " + args + " 2>/dev/null";
  CliResult r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class EvalCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(CLISC_BINARY)) GTEST_SKIP() << "clisc not built: " << CLISC_BINARY;
  }
  // A label volume written as int16 like BraTS seg files, with the labels 1, 2 and 4 mixed
  // inside a box: all of them are whole tumour.
  static void Write(const std::filesystem::path& path, Dims lo, Dims extent,
                    Dims size = {20, 18, 16}) {
    std::filesystem::create_directories(path.parent_path());
    Volume<int16_t> v(size, 0, WithSpacing(1.0, 1.0, 2.0));
    const Volume<uint8_t> box = Box(size, lo, extent);
    const int16_t labels[] = {1, 2, 4};
    for (size_t i = 0; i < box.voxels().size(); ++i) v[i] = box[i] ? labels[i % 3] : 0;
    ASSERT_TRUE(WriteVolume(v, path).ok()) << path;
  }
  clisc::testing::TempDir dir_{"clisc-eval"};
};

TEST_F(EvalCommandTest, PairsFoldersByCaseIdAndReportsMissingPartners) {
  const auto pred = dir_.path() / "pred", gt = dir_.path() / "gt";
  Write(pred / "case_a_pred.nii.gz", {4, 4, 4}, {6, 6, 6});
  Write(gt / "case_a" / "case_a_seg.nii.gz", {5, 4, 4}, {6, 6, 6});    // BraTS case folder
  Write(gt / "case_a" / "case_a_flair.nii.gz", {0, 0, 0}, {1, 1, 1});  // not a label file
  Write(pred / "case_b.nii", {2, 2, 2}, {4, 4, 4});
  Write(gt / "case_b_seg.nii.gz", {2, 2, 2}, {4, 4, 4});
  Write(gt / "case_c_seg.nii.gz", {2, 2, 2}, {4, 4, 4});  // no prediction
  const CliResult r = RunEval("--pred " + pred.string() + " --gt " + gt.string() + " --json");
  EXPECT_EQ(r.exit_code, 1);  // case_c failed
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  ASSERT_EQ(j["cases"].size(), 2u);
  EXPECT_EQ(j["cases"][0]["id"], "case_a");
  // Shift by one voxel along x: overlap 5/6.
  EXPECT_NEAR(j["cases"][0]["metrics"]["medpy"]["dice"]["value"].get<double>(), 5.0 / 6.0, 1e-12);
  EXPECT_EQ(j["cases"][1]["metrics"]["medpy"]["hd95_mm"]["value"].get<double>(), 0.0);
  ASSERT_EQ(j["errors"].size(), 1u);
  EXPECT_EQ(j["errors"][0]["id"], "case_c");
  EXPECT_NE(j["errors"][0]["error"].get<std::string>().find("no prediction"), std::string::npos);
  EXPECT_EQ(j["summary"]["ours"]["dice"]["count"], 2);
}

TEST_F(EvalCommandTest, DifferentGridsFailOnlyThatCase) {
  const auto pred = dir_.path() / "pred", gt = dir_.path() / "gt";
  Write(pred / "a.nii.gz", {4, 4, 4}, {6, 6, 6});
  Write(gt / "a_seg.nii.gz", {4, 4, 4}, {6, 6, 6});
  Write(pred / "b.nii.gz", {4, 4, 4}, {6, 6, 6}, {21, 18, 16});
  Write(gt / "b_seg.nii.gz", {4, 4, 4}, {6, 6, 6});
  const CliResult r = RunEval("--pred " + pred.string() + " --gt " + gt.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("error: b:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 cases evaluated, 1 failed"), std::string::npos) << r.out;
}

TEST_F(EvalCommandTest, SingleFilesAndEmptyPrediction) {
  Write(dir_.path() / "p.nii.gz", {4, 4, 4}, {0, 0, 0});  // empty prediction
  Write(dir_.path() / "g.nii.gz", {4, 4, 4}, {6, 6, 6});
  const CliResult r = RunEval("--pred " + (dir_.path() / "p.nii.gz").string() + " --gt " +
                              (dir_.path() / "g.nii.gz").string() + " --json --hd95 medpy");
  EXPECT_EQ(r.exit_code, 0);  // an empty prediction is a result, not an error
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  const auto& m = j["cases"][0]["metrics"];
  EXPECT_EQ(m["status"], "pred_empty");
  EXPECT_EQ(m["medpy"]["dice"]["value"].get<double>(), 0.0);
  EXPECT_TRUE(m["medpy"]["hd95_mm"]["value"].is_null());
  EXPECT_EQ(m["reference"]["hd95_voxels"]["value"].get<double>(), 0.0);
  EXPECT_EQ(j["summary"]["empty"]["pred"], 1);
  EXPECT_EQ(j["summary"]["ours"]["hd95_mm"]["count"], 0);
}

TEST_F(EvalCommandTest, UsageErrors) {
  EXPECT_EQ(RunEval("--pred /nonexistent --gt /nonexistent").exit_code, 2);
  Write(dir_.path() / "p.nii.gz", {4, 4, 4}, {2, 2, 2});
  const std::string p = (dir_.path() / "p.nii.gz").string();
  EXPECT_EQ(RunEval("--pred " + p + " --gt " + p + " --hd95 max").exit_code, 2);
  EXPECT_EQ(RunEval("--pred " + p + " --gt " + p + " --labels tc").exit_code, 2);
  EXPECT_EQ(RunEval("--pred " + p + " --gt " + p).exit_code, 0);
}

}  // namespace
}  // namespace clisc
