#include "common/resample.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

namespace clisc {
namespace {

Geometry OddGeometry() {
  Geometry g;
  g.spacing = {0.8, 1.2, 2.5};
  g.origin = {10.0, -239.0, 3.5};
  g.direction = {-1, 0, 0, 0, -1, 0, 0, 0, 1};  // RAS-stored NIfTI as ITK sees it
  return g;
}

FloatVolume RandomVolume(Dims dims, Geometry g, uint64_t seed) {
  FloatVolume v(dims, 0.0f, g);
  std::mt19937_64 rng(seed);
  for (float& x : v.voxels()) x = static_cast<float>(rng() % 1000) / 10.0f;
  return v;
}

void ExpectNear3(const Point3& a, const Point3& b, double tol = 1e-9) {
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(a[i], b[i], tol) << "axis " << i;
}

TEST(ResampleTest, IndexPhysicalRoundTrip) {
  const Geometry g = OddGeometry();
  const Point3 idx{3.25, 7.0, 1.5};
  const Point3 p = IndexToPhysical(g, idx);
  ExpectNear3(p, {10.0 - 3.25 * 0.8, -239.0 - 7.0 * 1.2, 3.5 + 1.5 * 2.5});
  ExpectNear3(PhysicalToIndex(g, p), idx);
}

TEST(ResampleTest, AffineInverseAndComposition) {
  const AffineTransform r = AffineTransform::Rotation({0.3, -0.2, 0.7}, {5, 6, 7});
  const AffineTransform s = AffineTransform::Scaling({1.1, 0.9, 1.3}, {1, 2, 3});
  const AffineTransform t = AffineTransform::Translation({4, -5, 6});
  const AffineTransform all = r.Then(s).Then(t);
  const Point3 p{12.5, -3.0, 40.0};
  ExpectNear3(all.Apply(p), t.Apply(s.Apply(r.Apply(p))));
  ExpectNear3(all.Inverse().Apply(all.Apply(p)), p);
  // A rotation keeps its centre and distances.
  ExpectNear3(r.Apply({5, 6, 7}), {5, 6, 7});
  const Point3 q = r.Apply(p);
  const double d0 = std::hypot(p[0] - 5, p[1] - 6, p[2] - 7);
  const double d1 = std::hypot(q[0] - 5, q[1] - 6, q[2] - 7);
  EXPECT_NEAR(d0, d1, 1e-9);
}

TEST(ResampleTest, IdentityResampleReproducesTheVolume) {
  const Dims dims{9, 7, 5};
  const FloatVolume src = RandomVolume(dims, OddGeometry(), 1);
  const FloatVolume out = ResampleToGrid(src, dims, src.geometry());
  ASSERT_EQ(out.size(), dims);
  EXPECT_EQ(out.geometry(), src.geometry());
  for (size_t i = 0; i < src.voxels().size(); ++i) ASSERT_FLOAT_EQ(out[i], src[i]) << i;
}

TEST(ResampleTest, IntegerShiftMovesVoxels) {
  const Dims dims{10, 8, 6};
  const Geometry g = OddGeometry();
  const FloatVolume src = RandomVolume(dims, g, 2);
  // Read from two voxels further along x (physical step is the x axis column times spacing).
  const Point3 step{g.direction[0] * g.spacing[0] * 2, g.direction[3] * g.spacing[0] * 2,
                    g.direction[6] * g.spacing[0] * 2};
  const FloatVolume out = Resample(
      src, dims, g,
      [&](const Point3& p) {
        return Point3{p[0] + step[0], p[1] + step[1], p[2] + step[2]};
      },
      OutsideMode::kConstant, -1.0f);
  for (int64_t z = 0; z < dims.z; ++z)
    for (int64_t y = 0; y < dims.y; ++y)
      for (int64_t x = 0; x < dims.x; ++x) {
        const float expected = x + 2 < dims.x ? src.at(x + 2, y, z) : -1.0f;
        ASSERT_NEAR(out.at(x, y, z), expected, 1e-4) << x << "," << y << "," << z;
      }
}

TEST(ResampleTest, HalfVoxelShiftOfARampIsExact) {
  const Dims dims{8, 3, 3};
  FloatVolume ramp(dims, 0.0f);
  for (int64_t z = 0; z < dims.z; ++z)
    for (int64_t y = 0; y < dims.y; ++y)
      for (int64_t x = 0; x < dims.x; ++x) ramp.at(x, y, z) = 2.0f * x + 10.0f * y + 100.0f * z;
  for (int64_t x = 0; x + 1 < dims.x; ++x) {
    EXPECT_FLOAT_EQ(SampleTrilinear(ramp, {x + 0.5, 1.25, 0.5}), 2.0f * (x + 0.5f) + 12.5f + 50.0f);
  }
}

TEST(ResampleTest, OutsideModes) {
  FloatVolume v({2, 2, 2}, 5.0f);
  EXPECT_FLOAT_EQ(SampleTrilinear(v, {10, 0, 0}, OutsideMode::kConstant, 0.0f), 0.0f);
  EXPECT_FLOAT_EQ(SampleTrilinear(v, {10, 0, 0}, OutsideMode::kClamp), 5.0f);
  // Half a voxel beyond the edge fades halfway to the fill value.
  EXPECT_FLOAT_EQ(SampleTrilinear(v, {1.5, 0, 0}, OutsideMode::kConstant, 1.0f), 3.0f);
  EXPECT_FLOAT_EQ(SampleTrilinear(v, {-0.5, 1, 1}, OutsideMode::kClamp), 5.0f);
}

TEST(ResampleTest, GaussianSmoothingKeepsTheMean) {
  for (double sigma : {0.5, 2.0, 9.0}) {  // 9 mm is wider than the volume on two axes
    FloatVolume v = RandomVolume({17, 11, 6}, OddGeometry(), 3);
    double before = 0, after = 0;
    for (float x : v.voxels()) before += x;
    GaussianSmooth(v, {sigma, sigma * 0.5, sigma});
    for (float x : v.voxels()) after += x;
    EXPECT_NEAR(after / v.count(), before / v.count(), 1e-4) << "sigma " << sigma;
  }
}

TEST(ResampleTest, GaussianSmoothingOfAnImpulseHasTheRightWidth) {
  Geometry g;
  g.spacing = {0.5, 1.0, 1.0};
  FloatVolume v({101, 1, 1}, 0.0f, g);
  v.at(50, 0, 0) = 1.0f;
  GaussianSmooth(v, {3.0, 0.0, 0.0});
  double sum = 0, var = 0;
  for (int64_t x = 0; x < 101; ++x) {
    const double mm = (x - 50) * 0.5;
    sum += v.at(x, 0, 0);
    var += v.at(x, 0, 0) * mm * mm;
  }
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_NEAR(std::sqrt(var), 3.0, 0.05);
  // A constant stays constant.
  FloatVolume c({7, 5, 3}, 4.0f, g);
  GaussianSmooth(c, {2.0, 2.0, 2.0});
  for (float x : c.voxels()) EXPECT_NEAR(x, 4.0f, 1e-5);
}

TEST(ResampleTest, DisplacementFieldInterpolates) {
  Geometry g;
  g.spacing = {10, 10, 10};
  DisplacementField f({3, 3, 3}, g);
  for (int64_t x = 0; x < 3; ++x)
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t z = 0; z < 3; ++z) {
        f.component(0).at(x, y, z) = 1.0f;
        f.component(2).at(x, y, z) = static_cast<float>(x);  // grows 1 per 10 mm along x
      }
  ExpectNear3(f.At({15, 5, 5}), {1.0, 0.0, 1.5}, 1e-6);
  ExpectNear3(f.At({100, 5, 5}), {1.0, 0.0, 2.0}, 1e-6);  // clamped beyond the grid
  EXPECT_TRUE(DisplacementField().empty());
  ExpectNear3(DisplacementField().At({1, 2, 3}), {0, 0, 0});
}

TEST(ResampleTest, CoveringGridKeepsTheFieldOfView) {
  Geometry g;
  g.origin = {0, -239, 0};
  Dims d;
  Geometry h;
  CoveringGrid({240, 240, 155}, g, {2, 2, 2}, &d, &h);
  EXPECT_EQ(d, (Dims{120, 120, 78}));
  ExpectNear3(h.origin, {0.5, -238.5, 0.5});
  ExpectNear3(h.spacing, {2, 2, 2});
  // Downsampling a linear ramp onto it gives the ramp at the new centres.
  FloatVolume ramp({240, 4, 4}, 0.0f, g);
  for (int64_t z = 0; z < 4; ++z)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 240; ++x) ramp.at(x, y, z) = static_cast<float>(x);
  const FloatVolume small = ResampleToGrid(ramp, {120, 2, 2}, h);
  for (int64_t x = 0; x < 119; ++x) EXPECT_NEAR(small.at(x, 0, 0), 2 * x + 0.5, 1e-4);
}

}  // namespace
}  // namespace clisc
