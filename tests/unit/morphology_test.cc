#include "common/morphology.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

namespace clisc {
namespace {

Volume<uint8_t> RandomMask(Dims size, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  Volume<uint8_t> mask(size);
  for (auto& v : mask.voxels()) v = (rng() % 1000) < density * 1000;
  return mask;
}

bool Inside(const Dims& s, int64_t x, int64_t y, int64_t z) {
  return x >= 0 && y >= 0 && z >= 0 && x < s.x && y < s.y && z < s.z;
}

// Opening written straight from its definition: a voxel survives erosion when the whole
// (2r+1)^3 cube around it lies in the array and in the mask; dilation sets every voxel whose cube
// holds a surviving voxel.
Volume<uint8_t> BruteOpen(const Volume<uint8_t>& m, int r) {
  const Dims& s = m.size();
  Volume<uint8_t> eroded(s), out(s);
  for (int64_t z = 0; z < s.z; ++z)
    for (int64_t y = 0; y < s.y; ++y)
      for (int64_t x = 0; x < s.x; ++x) {
        bool all = true;
        for (int dz = -r; dz <= r; ++dz)
          for (int dy = -r; dy <= r; ++dy)
            for (int dx = -r; dx <= r; ++dx)
              all = all && Inside(s, x + dx, y + dy, z + dz) && m.at(x + dx, y + dy, z + dz);
        eroded.at(x, y, z) = all;
      }
  for (int64_t z = 0; z < s.z; ++z)
    for (int64_t y = 0; y < s.y; ++y)
      for (int64_t x = 0; x < s.x; ++x) {
        bool any = false;
        for (int dz = -r; dz <= r; ++dz)
          for (int dy = -r; dy <= r; ++dy)
            for (int dx = -r; dx <= r; ++dx)
              any = any || (Inside(s, x + dx, y + dy, z + dz) && eroded.at(x + dx, y + dy, z + dz));
        out.at(x, y, z) = any;
      }
  return out;
}

// Components by flood fill from each unlabelled voxel in raster order: the definition, slowly.
Volume<int32_t> BruteLabels(const Volume<uint8_t>& m, int reach) {
  const Dims& s = m.size();
  Volume<int32_t> labels(s, 0);
  int32_t next = 0;
  for (int64_t z0 = 0; z0 < s.z; ++z0)
    for (int64_t y0 = 0; y0 < s.y; ++y0)
      for (int64_t x0 = 0; x0 < s.x; ++x0) {
        if (!m.at(x0, y0, z0) || labels.at(x0, y0, z0)) continue;
        ++next;
        std::vector<std::array<int64_t, 3>> todo = {{x0, y0, z0}};
        labels.at(x0, y0, z0) = next;
        while (!todo.empty()) {
          auto [x, y, z] = todo.back();
          todo.pop_back();
          for (int dz = -1; dz <= 1; ++dz)
            for (int dy = -1; dy <= 1; ++dy)
              for (int dx = -1; dx <= 1; ++dx) {
                const int moved = std::abs(dx) + std::abs(dy) + std::abs(dz);
                if (moved == 0 || moved > reach || !Inside(s, x + dx, y + dy, z + dz)) continue;
                if (!m.at(x + dx, y + dy, z + dz) || labels.at(x + dx, y + dy, z + dz)) continue;
                labels.at(x + dx, y + dy, z + dz) = next;
                todo.push_back({x + dx, y + dy, z + dz});
              }
        }
      }
  return labels;
}

TEST(MorphologyTest, BorderOfAFullArrayIsItsOuterShell) {
  // Outside the array is background, so every voxel on the array edge is border.
  Volume<uint8_t> full(Dims{4, 5, 3}, 1);
  Volume<uint8_t> border = ExtractBorder(full);
  for (int64_t z = 0; z < 3; ++z)
    for (int64_t y = 0; y < 5; ++y)
      for (int64_t x = 0; x < 4; ++x) {
        const bool interior = x > 0 && x < 3 && y > 0 && y < 4 && z == 1;
        EXPECT_EQ(border.at(x, y, z), interior ? 0 : 1) << x << "," << y << "," << z;
      }
}

TEST(MorphologyTest, BorderUsesTheCrossNotTheCube) {
  // A 3x3x3 cube: only the centre has all six face neighbours set.
  Volume<uint8_t> m(Dims{5, 5, 5});
  for (int z = 1; z <= 3; ++z)
    for (int y = 1; y <= 3; ++y)
      for (int x = 1; x <= 3; ++x) m.at(x, y, z) = 1;
  EXPECT_EQ(CountForeground(ExtractBorder(m)), 26);
  EXPECT_EQ(ErodeCross(m).at(2, 2, 2), 1);
  EXPECT_EQ(CountForeground(ErodeCross(m)), 1);
  // Removing a corner, which is no face neighbour of the centre, leaves the centre interior.
  m.at(1, 1, 1) = 0;
  EXPECT_EQ(ErodeCross(m).at(2, 2, 2), 1);
}

TEST(MorphologyTest, NonBinaryInputCountsAsForeground) {
  Volume<uint8_t> m(Dims{3, 3, 3}, 0);
  m.at(1, 1, 1) = 4;
  Volume<uint8_t> border = ExtractBorder(m);
  EXPECT_EQ(border.at(1, 1, 1), 1);
  EXPECT_EQ(CountForeground(border), 1);
}

TEST(MorphologyTest, ConnectivityDecidesWhatTouches) {
  Volume<uint8_t> corner(Dims{4, 4, 4});
  corner.at(1, 1, 1) = 1;
  corner.at(2, 2, 2) = 1;  // shares only a corner
  EXPECT_EQ(LabelComponents(corner, Connectivity::k6).count(), 2);
  EXPECT_EQ(LabelComponents(corner, Connectivity::k18).count(), 2);
  EXPECT_EQ(LabelComponents(corner, Connectivity::k26).count(), 1);

  Volume<uint8_t> edge(Dims{4, 4, 4});
  edge.at(1, 1, 1) = 1;
  edge.at(2, 2, 1) = 1;  // shares an edge
  EXPECT_EQ(LabelComponents(edge, Connectivity::k6).count(), 2);
  EXPECT_EQ(LabelComponents(edge, Connectivity::k18).count(), 1);
  EXPECT_EQ(LabelComponents(edge, Connectivity::k26).count(), 1);
}

TEST(MorphologyTest, LabelsFollowRasterOrderAndCountVoxels) {
  Volume<uint8_t> m(Dims{6, 3, 3});
  m.at(4, 0, 0) = 1;  // met first
  m.at(0, 2, 2) = 1;  // met last
  m.at(0, 1, 0) = 1;
  m.at(0, 1, 1) = 1;  // joins (0,1,0) through a face
  Components c = LabelComponents(m, Connectivity::k6);
  ASSERT_EQ(c.count(), 3);
  EXPECT_EQ(c.labels.at(4, 0, 0), 1);
  EXPECT_EQ(c.labels.at(0, 1, 0), 2);
  EXPECT_EQ(c.labels.at(0, 1, 1), 2);
  EXPECT_EQ(c.labels.at(0, 2, 2), 3);
  EXPECT_EQ(c.sizes, (std::vector<int64_t>{1, 2, 1}));
  EXPECT_EQ(c.labels.at(1, 1, 1), 0);
}

TEST(MorphologyTest, ComponentsWrapNeitherAroundRowsNorPlanes) {
  // (5,0,0) and (0,1,0) are neighbours in memory, not in space.
  Volume<uint8_t> m(Dims{6, 2, 2});
  m.at(5, 0, 0) = 1;
  m.at(0, 1, 0) = 1;
  EXPECT_EQ(LabelComponents(m, Connectivity::k26).count(), 2);
}

TEST(MorphologyTest, ComponentsMatchFloodFillOnRandomMasks) {
  const std::pair<Connectivity, int> kinds[] = {
      {Connectivity::k6, 1}, {Connectivity::k18, 2}, {Connectivity::k26, 3}};
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    // Near the percolation threshold, so components merge through long chains.
    Volume<uint8_t> m = RandomMask(Dims{13, 11, 9}, 0.3, seed);
    for (const auto& [connectivity, reach] : kinds) {
      Components c = LabelComponents(m, connectivity);
      Volume<int32_t> expected = BruteLabels(m, reach);
      EXPECT_EQ(c.labels.voxels(), expected.voxels()) << "seed " << seed << " reach " << reach;
      std::vector<int64_t> sizes(c.sizes.size(), 0);
      for (int32_t l : expected.voxels())
        if (l > 0 && static_cast<size_t>(l) <= sizes.size()) ++sizes[l - 1];
      EXPECT_EQ(c.sizes, sizes);
    }
  }
}

TEST(MorphologyTest, LargestComponentKeepsTies) {
  Volume<uint8_t> m(Dims{9, 3, 3});
  m.at(0, 0, 0) = m.at(1, 0, 0) = 1;  // size 2
  m.at(4, 0, 0) = m.at(5, 0, 0) = 1;  // size 2
  m.at(8, 2, 2) = 1;                  // size 1
  Volume<uint8_t> kept = KeepLargestComponent(m);
  EXPECT_EQ(CountForeground(kept), 4);
  EXPECT_EQ(kept.at(8, 2, 2), 0);
  EXPECT_EQ(CountForeground(KeepLargestComponent(Volume<uint8_t>(Dims{2, 2, 2}))), 0);
}

TEST(MorphologyTest, RemoveSmallComponentsUsesAStrictFraction) {
  Volume<uint8_t> m(Dims{20, 3, 3});
  for (int x = 0; x < 9; ++x) m.at(x, 0, 0) = 1;    // 9
  for (int x = 11; x < 14; ++x) m.at(x, 0, 0) = 1;  // 3 = 9/3: kept
  m.at(16, 0, 0) = m.at(17, 0, 0) = 1;              // 2 < 3: dropped
  Volume<uint8_t> out = RemoveSmallComponents(m, 1.0 / 3.0);
  EXPECT_EQ(CountForeground(out), 12);
  EXPECT_EQ(out.at(12, 0, 0), 1);
  EXPECT_EQ(out.at(16, 0, 0), 0);
}

TEST(MorphologyTest, OpeningRemovesSpursAndThinParts) {
  Volume<uint8_t> m(Dims{10, 10, 10});
  for (int z = 0; z < 3; ++z)  // a 3x3x3 cube in the corner of the array
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) m.at(x, y, z) = 1;
  m.at(3, 1, 1) = 1;           // a spur
  for (int z = 6; z < 8; ++z)  // a 2x2x2 cube: no 3x3x3 cube fits
    for (int y = 6; y < 8; ++y)
      for (int x = 6; x < 8; ++x) m.at(x, y, z) = 1;
  Volume<uint8_t> opened = OpenCube(m);
  EXPECT_EQ(CountForeground(opened), 27);
  EXPECT_EQ(opened.at(0, 0, 0), 1);
  EXPECT_EQ(opened.at(3, 1, 1), 0);
  EXPECT_EQ(opened.at(6, 6, 6), 0);
}

TEST(MorphologyTest, OpeningMatchesItsDefinitionOnRandomMasks) {
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    Volume<uint8_t> m = RandomMask(Dims{11, 9, 7}, 0.75, seed);
    EXPECT_EQ(OpenCube(m).voxels(), BruteOpen(m, 1).voxels()) << "seed " << seed;
    // A solid block with holes and noise, so that 5^3 cubes fit in parts of it.
    Volume<uint8_t> blocky = RandomMask(Dims{12, 10, 11}, 0.2, seed);
    Volume<uint8_t> holes = RandomMask(Dims{12, 10, 11}, 0.02, seed + 50);
    for (int64_t z = 1; z < 10; ++z)
      for (int64_t y = 0; y < 8; ++y)
        for (int64_t x = 2; x < 11; ++x) blocky.at(x, y, z) = !holes.at(x, y, z);
    const Volume<uint8_t> expected = BruteOpen(blocky, 2);
    EXPECT_GT(CountForeground(expected), 0);
    EXPECT_EQ(OpenCube(blocky, 2).voxels(), expected.voxels()) << "seed " << seed;
  }
}

TEST(MorphologyTest, CubeFiltersKeepGeometry) {
  Geometry g;
  g.spacing = {0.5, 2.0, 3.0};
  Volume<uint8_t> m(Dims{4, 4, 4}, 1, g);
  EXPECT_EQ(OpenCube(m).geometry(), g);
  EXPECT_EQ(ExtractBorder(m).geometry(), g);
  EXPECT_EQ(CountForeground(DilateCube(Volume<uint8_t>(Dims{4, 4, 4}, 0, g))), 0);
  EXPECT_EQ(CountForeground(ErodeCube(m, 2)), 0);  // a 5^3 cube never fits in 4^3
}

}  // namespace
}  // namespace clisc
