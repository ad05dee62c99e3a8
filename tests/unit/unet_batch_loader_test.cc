#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "common/volume_io.h"
#include "tests/unit/test_volumes.h"
#include "workers/segmentation/patch_batch_loader.h"
#include "workers/segmentation/poly_schedule.h"
#include "workers/segmentation/training_volume_cache.h"

namespace clisc::segmentation {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::TempDir;

// Writes a case of `channels` float volumes and a label (values 0/2/4 to check binarization).
roles::UNetCaseFiles WriteCase(const fs::path& dir, const std::string& id, Dims size, int channels,
                               float offset) {
  roles::UNetCaseFiles files;
  files.id = id;
  for (int c = 0; c < channels; ++c) {
    FloatVolume volume(size);
    for (size_t i = 0; i < volume.voxels().size(); ++i) {
      volume[i] = offset + static_cast<float>(c) * 100.0f + std::sin(static_cast<float>(i));
    }
    files.channels.push_back(dir / (id + "_c" + std::to_string(c) + ".nii"));
    EXPECT_TRUE(WriteVolume(volume, files.channels.back()).ok());
  }
  LabelVolume label(size);
  for (size_t i = 0; i < label.voxels().size(); ++i) label[i] = (i % 5 == 0) ? 2 : (i % 7 == 0);
  files.label = dir / (id + "_label.nii");
  EXPECT_TRUE(WriteVolume(label, files.label).ok());
  return files;
}

int64_t CaseBytes(Dims size, int channels) { return size.count() * (4 * channels + 1); }

TEST(UNetBatchLoader, ThreadsDoNotChangeTheBatches) {
  TempDir dir("unet_loader");
  std::vector<roles::UNetCaseFiles> cases;
  for (int i = 0; i < 3; ++i) {
    cases.push_back(WriteCase(dir.path(), "case" + std::to_string(i), Dims{9, 11, 10 + i}, 2,
                              static_cast<float>(i)));
  }
  PatchBatchOptions options;
  options.batch_size = 2;
  options.patch = {8, 8, 8};
  options.channels = 2;
  options.seed = 11;
  auto run = [&](int threads, int64_t first, int64_t last) {
    TrainingVolumeCache cache(cases, 1 << 30);
    PatchBatchLoader loader(cache, options, first, last, threads);
    std::vector<PatchBatch> batches;
    double waited = 0;
    while (true) {
      StatusOr<PatchBatchLoader::Loaded> next = loader.Next();
      if (!next.ok()) {
        EXPECT_EQ(next.status().code(), StatusCode::kOutOfRange) << next.status().ToString();
        break;
      }
      EXPECT_GE(next->waited_seconds, 0.0);
      waited += next->waited_seconds;
      batches.push_back(std::move(next->batch));
    }
    EXPECT_EQ(cache.misses(), 3);  // every case read once, then served from memory
    return batches;
  };
  const std::vector<PatchBatch> inline_batches = run(0, 0, 7);
  const std::vector<PatchBatch> threaded = run(2, 0, 7);
  const std::vector<PatchBatch> resumed = run(3, 4, 7);
  ASSERT_EQ(inline_batches.size(), 7u);
  ASSERT_EQ(threaded.size(), 7u);
  ASSERT_EQ(resumed.size(), 3u);
  for (size_t i = 0; i < inline_batches.size(); ++i) {
    EXPECT_EQ(inline_batches[i].iteration, static_cast<int64_t>(i));
    EXPECT_EQ(threaded[i].iteration, static_cast<int64_t>(i));
    EXPECT_EQ(inline_batches[i].images, threaded[i].images) << "iteration " << i;
    EXPECT_EQ(inline_batches[i].labels, threaded[i].labels) << "iteration " << i;
    EXPECT_EQ(inline_batches[i].cases, threaded[i].cases) << "iteration " << i;
    EXPECT_EQ(inline_batches[i].images.size(), 2u * 2u * 512u);
    for (uint8_t v : inline_batches[i].labels) EXPECT_LE(v, 1);  // labels binarized
  }
  for (size_t i = 0; i < resumed.size(); ++i) {
    EXPECT_EQ(resumed[i].images, inline_batches[4 + i].images);
  }
  // Samples 0..5 (iterations 0-2) walk two epochs of 3 cases: each case twice.
  std::vector<int> visits(3, 0);
  for (size_t i = 0; i < 3; ++i) {
    for (int64_t c : inline_batches[i].cases) ++visits[static_cast<size_t>(c)];
  }
  EXPECT_EQ(visits, (std::vector<int>{2, 2, 2}));
}

TEST(UNetBatchLoader, CacheEvictsLeastRecentlyUsedWithinItsBudget) {
  TempDir dir("unet_cache");
  const Dims size{6, 5, 4};
  std::vector<roles::UNetCaseFiles> cases;
  for (int i = 0; i < 3; ++i)
    cases.push_back(WriteCase(dir.path(), "c" + std::to_string(i), size, 2, 0));
  cases.push_back(WriteCase(dir.path(), "big", Dims{12, 10, 8}, 2, 0));
  const int64_t bytes = CaseBytes(size, 2);
  TrainingVolumeCache cache(cases, 2 * bytes);  // room for two small cases
  ASSERT_TRUE(cache.Get(0).ok());
  ASSERT_TRUE(cache.Get(1).ok());
  ASSERT_TRUE(cache.Get(0).ok());  // hit; case 1 is now the least recently used
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.misses(), 2);
  EXPECT_EQ(cache.cached_bytes(), 2 * bytes);
  ASSERT_TRUE(cache.Get(2).ok());  // evicts case 1
  EXPECT_EQ(cache.cached_cases(), 2u);
  ASSERT_TRUE(cache.Get(0).ok());  // still there
  EXPECT_EQ(cache.hits(), 2);
  ASSERT_TRUE(cache.Get(1).ok());  // read again
  EXPECT_EQ(cache.misses(), 4);
  // A case bigger than the whole budget is served but not kept, and evicts nothing.
  StatusOr<TrainingVolumeCache::CasePtr> big = cache.Get(3);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ((*big)->bytes(), CaseBytes(Dims{12, 10, 8}, 2));
  EXPECT_EQ(cache.cached_cases(), 2u);
  EXPECT_EQ(cache.cached_bytes(), 2 * bytes);
  ASSERT_TRUE(cache.Get(3).ok());
  EXPECT_EQ(cache.misses(), 6);
  // Channel minima come with the case (the background pad value).
  const auto c0 = cache.Get(0).value();
  EXPECT_EQ(c0->channel_minima.size(), 2u);
  EXPECT_FLOAT_EQ(c0->channel_minima[1], *std::min_element(c0->channels[1].voxels().begin(),
                                                           c0->channels[1].voxels().end()));
}

TEST(UNetBatchLoader, UnreadableOrMisalignedVolumesAreDataLoss) {
  TempDir dir("unet_bad");
  std::vector<roles::UNetCaseFiles> cases = {WriteCase(dir.path(), "good", Dims{9, 9, 9}, 1, 0),
                                             WriteCase(dir.path(), "broken", Dims{9, 9, 9}, 1, 0)};
  { std::ofstream(cases[1].channels[0], std::ios::trunc) << "not a nifti file"; }
  TrainingVolumeCache cache(cases, 1 << 30);
  const StatusOr<TrainingVolumeCache::CasePtr> broken = cache.Get(1);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(broken.status().message().find("broken"), std::string::npos);
  EXPECT_NE(broken.status().message().find(cases[1].channels[0].string()), std::string::npos);

  // Through the threaded loader: the error comes out of Next() in its turn and stays.
  PatchBatchOptions options;
  options.batch_size = 2;
  options.patch = {8, 8, 8};
  options.channels = 1;
  PatchBatchLoader loader(cache, options, 0, 5, 2);
  const StatusOr<PatchBatchLoader::Loaded> first = loader.Next();  // samples 0, 1: both cases
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(loader.Next().status().code(), StatusCode::kDataLoss);

  // A label on another grid, and a missing file.
  roles::UNetCaseFiles shifted = WriteCase(dir.path(), "shifted", Dims{9, 9, 9}, 1, 0);
  LabelVolume label(Dims{9, 9, 8});
  ASSERT_TRUE(WriteVolume(label, shifted.label).ok());
  const StatusOr<TrainingCase> misaligned = ReadTrainingCase(shifted);
  EXPECT_EQ(misaligned.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(misaligned.status().message().find("shifted"), std::string::npos);
  roles::UNetCaseFiles moved = WriteCase(dir.path(), "moved", Dims{9, 9, 9}, 2, 0);
  FloatVolume other(Dims{9, 9, 9});
  other.mutable_geometry().origin = {5, 0, 0};
  ASSERT_TRUE(WriteVolume(other, moved.channels[1]).ok());
  EXPECT_EQ(ReadTrainingCase(moved).status().code(), StatusCode::kDataLoss);
  roles::UNetCaseFiles missing = shifted;
  missing.id = "missing";
  missing.channels = {dir.path() / "nowhere.nii"};
  const StatusOr<TrainingCase> absent = ReadTrainingCase(missing);
  EXPECT_EQ(absent.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(absent.status().message().find("missing"), std::string::npos);
}

TEST(UNetBatchLoader, ChannelCountMismatchIsInvalidArgument) {
  TempDir dir("unet_channels");
  TrainingVolumeCache cache({WriteCase(dir.path(), "two", Dims{9, 9, 9}, 2, 0)}, 1 << 30);
  PatchBatchOptions options;
  options.patch = {8, 8, 8};
  options.channels = 4;
  const StatusOr<PatchBatch> batch = MakePatchBatch(cache, options, 0);
  EXPECT_EQ(batch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(batch.status().message().find("two"), std::string::npos);
}

TEST(UNetBatchLoader, PolySchedule) {
  // lr0 (1 - (k - 1) / max)^power for step k: step 1 runs at lr0.
  EXPECT_DOUBLE_EQ(PolyLearningRate(0.01, 1, 100, 0.9), 0.01);
  EXPECT_DOUBLE_EQ(PolyLearningRate(0.01, 2, 100, 0.9), 0.01 * std::pow(0.99, 0.9));
  EXPECT_DOUBLE_EQ(PolyLearningRate(0.01, 51, 100, 0.9), 0.01 * std::pow(0.5, 0.9));
  EXPECT_DOUBLE_EQ(PolyLearningRate(0.01, 100, 100, 0.9), 0.01 * std::pow(0.01, 0.9));
  EXPECT_DOUBLE_EQ(PolyLearningRate(0.01, 101, 100, 0.9), 0.0);
  EXPECT_DOUBLE_EQ(PolyLearningRate(0.02, 3, 4, 1.0), 0.01);
  // Python: 0.01 * (1.0 - 7 / 400) ** 0.9
  EXPECT_DOUBLE_EQ(PolyLearningRate(0.01, 8, 400, 0.9), 0.00984236129498943);
}

}  // namespace
}  // namespace clisc::segmentation
