#include "common/preprocess.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "common/bounding_box.h"
#include "common/volume_io.h"
#include "tests/unit/test_volumes.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::TempDir;

// A 30x24x20 grid with a tilted direction, anisotropic spacing and an offset origin, so that a
// wrong origin shift or a swapped axis shows.
Geometry OddGeometry() {
  Geometry g;
  g.spacing = {0.9, 1.2, 2.5};
  g.origin = {-12.5, 40.0, 7.25};
  const double c = std::cos(0.3), s = std::sin(0.3);
  g.direction = {c, -s, 0, s, c, 0, 0, 0, 1};
  return g;
}

// Brain = voxels in x 5..21, y 3..17, z 2..15 (inclusive), values 1..N; a negative voxel at the
// far corner of the brain region to check that "nonzero" includes negatives.
FloatVolume BrainVolume() {
  FloatVolume v(Dims{30, 24, 20}, 0.0f, OddGeometry());
  float next = 1;
  for (int64_t z = 2; z <= 15; ++z) {
    for (int64_t y = 3; y <= 17; ++y) {
      for (int64_t x = 5; x <= 21; ++x) {
        if ((x + y + z) % 4 == 0) continue;  // background zeros inside the box
        v.at(x, y, z) = next;
        next += 1;
      }
    }
  }
  v.at(21, 17, 15) = -3.0f;
  return v;
}

std::array<double, 3> Physical(const Geometry& g, int64_t x, int64_t y, int64_t z) {
  return IndexToPhysical(g, static_cast<double>(x), static_cast<double>(y), static_cast<double>(z));
}

TEST(BoundingBoxTest, InclusiveBoundsEndOnTheLastBrainPlane) {
  FloatVolume v = BrainVolume();
  auto box = NonzeroBoundingBox(v);
  ASSERT_TRUE(box.has_value());
  EXPECT_EQ(*box, (BoundingBox{5, 3, 2, 21, 17, 15}));
  EXPECT_EQ(box->size(), (Dims{17, 15, 14}));
  // A single voxel gives a 1x1x1 box, not an empty one.
  FloatVolume one(Dims{4, 4, 4});
  one.at(3, 0, 2) = 1;
  EXPECT_EQ(*NonzeroBoundingBox(one), (BoundingBox{3, 0, 2, 3, 0, 2}));
  EXPECT_FALSE(NonzeroBoundingBox(FloatVolume(Dims{4, 4, 4})).has_value());
}

TEST(BoundingBoxTest, CropKeepsVoxelsAndPhysicalPositions) {
  FloatVolume v = BrainVolume();
  BoundingBox box{5, 3, 2, 21, 17, 15};
  auto crop = CropToBox(v, box);
  ASSERT_TRUE(crop.ok());
  for (int64_t z = 0; z < crop->size().z; ++z) {
    for (int64_t y = 0; y < crop->size().y; ++y) {
      for (int64_t x = 0; x < crop->size().x; ++x) {
        ASSERT_EQ(crop->at(x, y, z), v.at(x + 5, y + 3, z + 2));
        auto a = Physical(crop->geometry(), x, y, z);
        auto b = Physical(v.geometry(), x + 5, y + 3, z + 2);
        for (int i = 0; i < 3; ++i) ASSERT_NEAR(a[i], b[i], 1e-9);
      }
    }
  }
  EXPECT_FALSE(CropToBox(v, BoundingBox{5, 3, 2, 30, 17, 15}).ok());
  EXPECT_FALSE(CropToBox(v, BoundingBox{}).ok());
}

TEST(PreprocessTest, PercentileIsTheSmallestValueWithCdfAtLeastQ) {
  std::vector<float> values(1000);
  std::iota(values.begin(), values.end(), 1.0f);  // 1..1000
  // #{v <= 999} = 999 = 0.999 * 1000 exactly: 999, not 1000.
  EXPECT_EQ(PercentileValue(values, 99.9), 999.0f);
  EXPECT_EQ(PercentileValue(values, 50), 500.0f);
  EXPECT_EQ(PercentileValue(values, 100), 1000.0f);
  EXPECT_EQ(PercentileValue(values, 0.01), 1.0f);
  // With 10 values, 0.999 * 10 = 9.99 -> rank 10 -> the maximum.
  std::vector<float> ten = {5, 1, 9, 3, 7, 2, 8, 4, 6, 10};
  EXPECT_EQ(PercentileValue(ten, 99.9), 10.0f);
  EXPECT_EQ(PercentileValue(ten, 90), 9.0f);
  // Many background zeros: the percentile may be 0 itself.
  std::vector<float> mostly_zero(2000, 0.0f);
  mostly_zero[0] = 50;
  mostly_zero[1] = 60;
  EXPECT_EQ(PercentileValue(mostly_zero, 99.9), 0.0f);    // rank 1998 of 2000: still a zero
  EXPECT_EQ(PercentileValue(mostly_zero, 99.95), 50.0f);  // rank 1999
}

TEST(PreprocessTest, ClipAndZScoreOverTheBox) {
  FloatVolume v = BrainVolume();
  auto box = *NonzeroBoundingBox(v);
  FloatVolume crop = *CropToBox(v, box);
  std::vector<float> before = crop.voxels();
  const float high = PercentileValue(before, 99.9);
  IntensityStats stats = ClipAndStandardize(crop, 99.9);
  EXPECT_EQ(stats.clip_high, high);
  EXPECT_EQ(stats.clip_low, -3.0);
  EXPECT_FALSE(stats.constant);
  double sum = 0, squares = 0;
  for (float x : crop.voxels()) sum += x;
  const double n = static_cast<double>(crop.count());
  for (float x : crop.voxels()) squares += (x - sum / n) * (x - sum / n);
  EXPECT_NEAR(sum / n, 0.0, 1e-5);
  EXPECT_NEAR(std::sqrt(squares / n), 1.0, 1e-5);
  // Values above the percentile all land on the same normalized value.
  float top = static_cast<float>((high - stats.mean) / stats.std);
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] >= high) {
      EXPECT_NEAR(crop[i], top, 1e-5);
    }
  }
  // A constant box is centred, not divided by a zero std.
  FloatVolume flat(Dims{4, 4, 4}, 7.0f);
  IntensityStats flat_stats = ClipAndStandardize(flat, 99.9);
  EXPECT_TRUE(flat_stats.constant);
  for (float x : flat.voxels()) EXPECT_EQ(x, 0.0f);
}

TEST(PreprocessTest, CaseGivesMaskLabelsAndPerModalityNormalization) {
  FloatVolume flair = BrainVolume();
  FloatVolume t1 = flair;
  for (float& x : t1.voxels()) x = x * 3 + 10;  // nonzero everywhere: box still from flair
  LabelVolume seg = flair.LikeThis<uint8_t>();
  seg.at(10, 10, 10) = 1;
  seg.at(11, 10, 10) = 2;
  seg.at(12, 10, 10) = 4;
  auto result = PreprocessVolumes("case", {Modality::kFlair, Modality::kT1}, {flair, t1}, seg, {});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const BoundingBox box{5, 3, 2, 21, 17, 15};
  EXPECT_EQ(result->crop.box, box);
  EXPECT_EQ(result->crop.original_size, flair.size());
  EXPECT_EQ(result->crop.original_geometry, flair.geometry());
  ASSERT_EQ(result->images.size(), 2u);
  for (const FloatVolume& image : result->images) {
    EXPECT_EQ(image.size(), box.size());
    EXPECT_TRUE(image.geometry().NearlyEquals(CroppedGeometry(flair.geometry(), box), 1e-9));
  }
  EXPECT_NE(result->stats[0].mean, result->stats[1].mean);
  // Mask = nonzero of the raw flair in the box, taken before normalization.
  for (int64_t z = 0; z < box.size().z; ++z) {
    for (int64_t y = 0; y < box.size().y; ++y) {
      for (int64_t x = 0; x < box.size().x; ++x) {
        ASSERT_EQ(result->brain_mask.at(x, y, z),
                  flair.at(x + box.x0, y + box.y0, z + box.z0) != 0 ? 1 : 0);
      }
    }
  }
  ASSERT_TRUE(result->labels && result->whole_tumor);
  EXPECT_EQ(result->labels->at(12 - 5, 10 - 3, 10 - 2), 4);
  EXPECT_EQ(result->whole_tumor->at(12 - 5, 10 - 3, 10 - 2), 1);
  EXPECT_EQ(result->whole_tumor->at(11 - 5, 10 - 3, 10 - 2), 1);
  EXPECT_EQ(std::accumulate(result->whole_tumor->voxels().begin(),
                            result->whole_tumor->voxels().end(), 0),
            3);
}

TEST(PreprocessTest, RefusesEmptyNonFiniteAndMismatchedInput) {
  FloatVolume empty(Dims{20, 20, 16});
  auto r = PreprocessVolumes("c", {Modality::kFlair}, {empty}, std::nullopt, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);

  FloatVolume nan = BrainVolume();
  nan.at(8, 8, 8) = std::nanf("");
  EXPECT_EQ(PreprocessVolumes("c", {Modality::kFlair}, {nan}, std::nullopt, {}).status().code(),
            StatusCode::kInvalidArgument);

  FloatVolume other(Dims{30, 24, 19}, 1.0f, OddGeometry());
  EXPECT_FALSE(PreprocessVolumes("c", {Modality::kFlair, Modality::kT2}, {BrainVolume(), other},
                                 std::nullopt, {})
                   .ok());
}

TEST(PreprocessTest, UncropRestoresTheOriginalGridExactly) {
  FloatVolume v = BrainVolume();
  auto result = PreprocessVolumes("c", {Modality::kFlair}, {v}, std::nullopt, {});
  ASSERT_TRUE(result.ok());
  const CropRecord& record = result->crop;
  // Any output on the cropped grid: here the cropped raw volume itself.
  FloatVolume cropped = *CropToBox(v, record.box);
  auto back = UncropToOriginal(cropped, record, -1.0f);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->size(), v.size());
  EXPECT_EQ(back->geometry(), v.geometry());
  for (int64_t z = 0; z < v.size().z; ++z) {
    for (int64_t y = 0; y < v.size().y; ++y) {
      for (int64_t x = 0; x < v.size().x; ++x) {
        ASSERT_EQ(back->at(x, y, z), record.box.Contains(x, y, z) ? v.at(x, y, z) : -1.0f);
      }
    }
  }
  // A label output (the brain mask) maps back too, and a voxel keeps its physical position.
  auto mask_back = UncropToOriginal(result->brain_mask, record, uint8_t{0});
  ASSERT_TRUE(mask_back.ok());
  const int64_t cx = 4, cy = 6, cz = 9;  // a voxel of the cropped grid
  auto p_crop = Physical(result->brain_mask.geometry(), cx, cy, cz);
  auto p_orig =
      Physical(mask_back->geometry(), cx + record.box.x0, cy + record.box.y0, cz + record.box.z0);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p_crop[i], p_orig[i], 1e-9);
  EXPECT_EQ(mask_back->at(cx + record.box.x0, cy + record.box.y0, cz + record.box.z0),
            result->brain_mask.at(cx, cy, cz));
  // A volume of the wrong size is refused.
  EXPECT_FALSE(UncropToOriginal(FloatVolume(Dims{3, 3, 3}), record, 0.0f).ok());
}

TEST(PreprocessTest, CropRecordJsonRoundTrip) {
  CropRecord record{{5, 3, 2, 21, 17, 15}, {30, 24, 20}, OddGeometry()};
  auto back = CropRecordFromJson(nlohmann::json::parse(CropRecordToJson(record).dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, record);
  nlohmann::json broken = CropRecordToJson(record);
  broken["box"].erase("x1");
  EXPECT_FALSE(CropRecordFromJson(broken).ok());
  broken = CropRecordToJson(record);
  broken["box"]["x1"] = "wide";
  EXPECT_FALSE(CropRecordFromJson(broken).ok());
  broken = CropRecordToJson(record);
  broken["box"]["x1"] = 30;  // outside a 30-voxel axis
  EXPECT_FALSE(CropRecordFromJson(broken).ok());
  EXPECT_FALSE(CropRecordFromJson(nlohmann::json::array()).ok());
}

TEST(PreprocessTest, WritesOutputsThatReadBackOnTheRightGrid) {
  TempDir dir("preprocess");
  FloatVolume flair = BrainVolume();
  LabelVolume seg = flair.LikeThis<uint8_t>();
  seg.at(10, 10, 10) = 2;
  auto result = PreprocessVolumes("BraTS20_Training_001", {Modality::kFlair}, {flair}, seg, {});
  ASSERT_TRUE(result.ok());
  Status written = WritePreprocessed(*result, dir.path());
  ASSERT_TRUE(written.ok()) << written.ToString();
  PreprocessedPaths paths = PreprocessedLayout(dir.path(), "BraTS20_Training_001");
  auto image = ReadVolume<float>(paths.image("BraTS20_Training_001", Modality::kFlair));
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->size(), result->images[0].size());
  EXPECT_TRUE(image->geometry().NearlyEquals(result->images[0].geometry(), 1e-4));
  EXPECT_EQ(image->voxels(), result->images[0].voxels());
  auto wt = ReadVolume<uint8_t>(paths.whole_tumor);
  ASSERT_TRUE(wt.ok()) << wt.status().ToString();
  EXPECT_EQ(wt->voxels(), result->whole_tumor->voxels());
  auto labels = ReadVolume<uint8_t>(paths.labels);
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels->at(10 - 5, 10 - 3, 10 - 2), 2);
  auto record = ReadCropRecord(paths.record);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(record->box, result->crop.box);
  EXPECT_EQ(record->original_size, flair.size());
  // No .nii shares a folder with a .nii.gz.
  EXPECT_NE(paths.images_dir, paths.labels_dir);
}

TEST(PreprocessTest, CaseFromFilesMatchesTheInMemoryPath) {
  TempDir dir("preprocess_case");
  const std::string id = "BraTS-GLI-00005-000";
  fs::create_directories(dir.path() / id);
  FloatVolume flair = BrainVolume();
  Volume<int16_t> stored = ConvertVolume<int16_t>(flair);
  ASSERT_TRUE(WriteVolume(stored, dir.path() / id / (id + "-t2f.nii.gz")).ok());
  ASSERT_TRUE(WriteVolume(stored, dir.path() / id / (id + "-t1n.nii.gz")).ok());
  Volume<int16_t> seg = stored.LikeThis<int16_t>();
  seg.at(10, 10, 10) = 3;  // enhancing tumor in the BraTS2023 coding
  seg.at(11, 10, 10) = 2;
  ASSERT_TRUE(WriteVolume(seg, dir.path() / id / (id + "-seg.nii.gz")).ok());

  CaseFiles files = DiscoverCaseFiles(dir.path() / id, id, BratsNaming::kBraTS2023);
  PreprocessOptions options;
  options.modalities = {Modality::kFlair, Modality::kT1};
  auto from_files = PreprocessCase(files, options);
  ASSERT_TRUE(from_files.ok()) << from_files.status().ToString();
  auto in_memory = PreprocessVolumes(id, options.modalities,
                                     {ConvertVolume<float>(stored), ConvertVolume<float>(stored)},
                                     std::nullopt, options);
  ASSERT_TRUE(in_memory.ok());
  EXPECT_EQ(from_files->crop.box, in_memory->crop.box);
  EXPECT_EQ(from_files->images[0].voxels(), in_memory->images[0].voxels());
  ASSERT_TRUE(from_files->labels.has_value());
  EXPECT_EQ(from_files->labels->at(10 - 5, 10 - 3, 10 - 2), 4);  // BraTS2020 coding
  EXPECT_EQ(from_files->labels->at(11 - 5, 10 - 3, 10 - 2), 2);
  EXPECT_EQ(from_files->whole_tumor->at(10 - 5, 10 - 3, 10 - 2), 1);

  options.modalities = {Modality::kFlair, Modality::kT2};  // no t2w file
  auto missing = PreprocessCase(files, options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace clisc
