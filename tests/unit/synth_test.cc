#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "common/synth_anatomy.h"
#include "common/synth_dataset.h"
#include "common/synth_tumor.h"
#include "common/volume_io.h"

namespace clisc {
namespace {
namespace fs = std::filesystem;

// Skips (visibly) when the template is not installed, unless CI demands it.
#define REQUIRE_TEMPLATE()                                                                  \
  do {                                                                                      \
    if (!fs::exists(kDefaultBrainTemplatePath)) {                                           \
      const char* require = std::getenv("CLISC_REQUIRE_FIXTURES");                          \
      if (require && std::string(require) == "1") {                                         \
        FAIL() << kDefaultBrainTemplatePath << " is missing (Debian package mricron-data)"; \
      }                                                                                     \
      GTEST_SKIP() << kDefaultBrainTemplatePath                                             \
                   << " is missing: install mricron-data to run the synth tests";           \
    }                                                                                       \
  } while (0)

fs::path TempDir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("clisc_synth_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SynthRandomTest, DeterministicAndWellShaped) {
  SynthRandom a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t va = a.Next();
    EXPECT_EQ(va, b.Next());
    differs |= va != c.Next();
  }
  EXPECT_TRUE(differs);
  SynthRandom r(7);
  double sum = 0, sum2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = r.Normal();
    sum += x;
    sum2 += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.02);
  for (int i = 0; i < 1000; ++i) {
    const double u = r.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_LT(r.UniformBelow(7), 7u);
  }
  EXPECT_NE(SynthRandom::Derive(1, 1), SynthRandom::Derive(1, 2));
  EXPECT_NE(SynthRandom::Derive(1, 1), SynthRandom::Derive(2, 1));
}

TEST(SynthDatasetTest, OneTumorFreeCasePerBlockOfTen) {
  for (uint64_t seed : {0ull, 1ull, 7ull, 12345ull}) {
    for (int block = 0; block < 5; ++block) {
      int count = 0;
      for (int k = block * 10 + 1; k <= block * 10 + 10; ++k) count += IsTumorFreeCase(seed, k);
      EXPECT_EQ(count, 1) << "seed " << seed << " block " << block;
    }
  }
}

TEST(SynthDatasetTest, SplitsCoverEveryCaseOnce) {
  for (int n : {1, 2, 3, 5, 10, 16, 37}) {
    std::vector<std::string> ids;
    for (int k = 1; k <= n; ++k) ids.push_back(SynthCaseId(k));
    const Splits s = SynthSplits(ids, 3);
    std::multiset<std::string> all;
    for (const auto* list : {&s.train, &s.valid, &s.test}) all.insert(list->begin(), list->end());
    EXPECT_EQ(all, std::multiset<std::string>(ids.begin(), ids.end())) << n;
    if (n >= 3) {
      EXPECT_GE(s.train.size(), 1u) << n;
      EXPECT_GE(s.valid.size(), 1u) << n;
      EXPECT_GE(s.test.size(), 1u) << n;
    }
  }
  std::vector<std::string> ids;
  for (int k = 1; k <= 10; ++k) ids.push_back(SynthCaseId(k));
  const Splits s = SynthSplits(ids, 3);
  EXPECT_EQ(s.train.size(), 7u);
  EXPECT_EQ(s.valid.size(), 1u);
  EXPECT_EQ(s.test.size(), 2u);
}

TEST(SynthDatasetTest, GridsAreBratsLike) {
  const SynthGrid full = BratsGrid(SynthSize::kFull);
  EXPECT_EQ(full.dims, (Dims{240, 240, 155}));
  EXPECT_EQ(full.geometry.origin, (std::array<double, 3>{0, -239, 0}));
  const SynthGrid half = BratsGrid(SynthSize::kHalf);
  EXPECT_EQ(half.dims, (Dims{120, 120, 78}));
  EXPECT_EQ(half.geometry.spacing, (std::array<double, 3>{2, 2, 2}));
  EXPECT_EQ(SynthCaseId(7), "BraTS20_Training_007");
}

TEST(SynthDatasetTest, MissingTemplateIsNotFoundNamingThePackage) {
  SynthOptions o;
  o.out_dir = TempDir("missing");
  o.cases = 1;
  o.template_path = "/nonexistent/ch2bet.nii.gz";
  auto r = WriteSynthDataset(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/ch2bet.nii.gz"), std::string::npos);
  EXPECT_NE(r.status().message().find("mricron-data"), std::string::npos);
  fs::remove_all(o.out_dir);
}

TEST(SynthCaseTest, SameSeedSameVoxelsOtherSeedDiffers) {
  REQUIRE_TEMPLATE();
  const SynthGrid grid = BratsGrid(SynthSize::kHalf);
  auto tpl = LoadBrainTemplate(kDefaultBrainTemplatePath, 2.0);
  ASSERT_TRUE(tpl.ok()) << tpl.status().ToString();
  auto a = SynthesizeCase(**tpl, grid, 11, 3, false);
  auto b = SynthesizeCase(**tpl, grid, 11, 3, false);
  auto c = SynthesizeCase(**tpl, grid, 12, 3, false);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  for (int m = 0; m < 4; ++m) EXPECT_EQ(a->images[m].voxels(), b->images[m].voxels()) << m;
  EXPECT_EQ(a->seg.voxels(), b->seg.voxels());
  EXPECT_NE(a->images[0].voxels(), c->images[0].voxels());
  EXPECT_NE(a->seg.voxels(), c->seg.voxels());
}

fs::path CaseFile(const fs::path& dir, const std::string& id, const std::string& suffix) {
  return dir / id / (id + "_" + suffix + ".nii.gz");
}

// Tumor cases hold exactly labels {1, 2, 4}, inside the brain, bright in FLAIR; tumor-free cases
// hold none.
void CheckLabelsAndIntensities(const fs::path& dir, const SynthCaseInfo& info) {
  SCOPED_TRACE(info.id);
  auto seg = ReadVolume<uint8_t>(CaseFile(dir, info.id, "seg"));
  auto flair = ReadVolume<int16_t>(CaseFile(dir, info.id, "flair"));
  ASSERT_TRUE(seg.ok() && flair.ok());
  std::map<int, int64_t> counts;
  int64_t outside_brain = 0, brain = 0, negative = 0;
  double wt_sum = 0, normal_sum = 0;
  int64_t wt_n = 0, normal_n = 0;
  for (size_t i = 0; i < seg->voxels().size(); ++i) {
    const int label = (*seg)[i];
    const int16_t f = (*flair)[i];
    negative += f < 0;
    if (label) ++counts[label];
    if (label && f == 0) ++outside_brain;
    if (f <= 0) continue;
    ++brain;
    if (label) {
      wt_sum += f;
      ++wt_n;
    } else {
      normal_sum += f;
      ++normal_n;
    }
  }
  EXPECT_EQ(negative, 0);
  EXPECT_EQ(outside_brain, 0);
  EXPECT_GT(brain, 100000);  // ~1.2-1.6 l of brain at 8 mm^3 per voxel
  if (info.tumor_free) {
    EXPECT_TRUE(counts.empty());
    EXPECT_EQ(info.wt_cm3, 0.0);
    return;
  }
  std::set<int> labels;
  for (const auto& [l, n] : counts) labels.insert(l);
  EXPECT_EQ(labels, (std::set<int>{1, 2, 4}));
  const double ratio = (wt_sum / wt_n) / (normal_sum / normal_n);
  EXPECT_GT(ratio, 1.3) << "FLAIR mean in the whole tumor over the mean of normal brain";
  EXPECT_NEAR(info.wt_cm3, (counts[1] + counts[2] + counts[4]) * 8e-3, 1e-9);
}

void CheckOneGrid(const fs::path& dir, const SynthCaseInfo& info) {
  SCOPED_TRACE(info.id);
  auto seg = ReadVolumeHeader(CaseFile(dir, info.id, "seg"));
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_EQ(seg->size, (Dims{120, 120, 78}));
  for (const char* m : {"flair", "t1", "t1ce", "t2"}) {
    auto h = ReadVolumeHeader(CaseFile(dir, info.id, m));
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    EXPECT_EQ(h->size, seg->size) << m;
    EXPECT_TRUE(h->geometry.NearlyEquals(seg->geometry)) << m;
  }
}

void CheckSplitCsvs(const fs::path& dir, int cases) {
  std::multiset<std::string> listed;
  for (const char* split : {"train", "valid", "test"}) {
    SCOPED_TRACE(split);
    std::istringstream in(ReadText(dir / "splits" / (std::string(split) + ".csv")));
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_EQ(line, "image_pth,mask_pth");
    int rows = 0;
    while (std::getline(in, line)) {
      const auto comma = line.find(',');
      ASSERT_NE(comma, std::string::npos);
      const std::string image = line.substr(0, comma), mask = line.substr(comma + 1);
      EXPECT_TRUE(fs::exists(dir / image)) << image;
      EXPECT_TRUE(fs::exists(dir / mask)) << mask;
      const std::string id = image.substr(0, image.find('/'));
      EXPECT_EQ(image, id + "/" + id + "_flair.nii.gz");
      EXPECT_EQ(mask, id + "/" + id + "_seg.nii.gz");
      listed.insert(id);
      ++rows;
    }
    EXPECT_GE(rows, 1);
  }
  std::multiset<std::string> expected;
  for (int k = 1; k <= cases; ++k) expected.insert(SynthCaseId(k));
  EXPECT_EQ(listed, expected);
}

void CheckManifest(const fs::path& dir, const SynthSummary& summary) {
  const auto j = nlohmann::json::parse(ReadText(dir / "synth_manifest.json"));
  ASSERT_EQ(j["case_list"].size(), summary.cases.size());
  for (size_t k = 0; k < summary.cases.size(); ++k) {
    const auto& c = j["case_list"][k];
    const SynthCaseInfo& info = summary.cases[k];
    SCOPED_TRACE(info.id);
    EXPECT_EQ(c["id"], info.id);
    EXPECT_EQ(c["seed"].get<uint64_t>(), info.seed);
    EXPECT_EQ(c["tumor_free"].get<bool>(), info.tumor_free);
    EXPECT_NEAR(c["wt_cm3"].get<double>(), info.wt_cm3, 1e-3);
    if (!info.tumor_free) {
      EXPECT_GT(info.wt_cm3, 1.0);
      EXPECT_EQ(c["tumor_center_mm"].size(), 3u);
    }
  }
}

// One small dataset, checked from every side (generated once: a run costs seconds).
TEST(SynthRunTest, SmallHalfSizeDatasetIsBratsLike) {
  REQUIRE_TEMPLATE();
  constexpr int kCases = 5;
  // A seed whose first cases include a tumor-free one, so both kinds are checked.
  uint64_t seed = 1;
  auto has_tumor_free = [](uint64_t s) {
    for (int k = 1; k <= kCases; ++k) {
      if (IsTumorFreeCase(s, k)) return true;
    }
    return false;
  };
  while (!has_tumor_free(seed)) ++seed;
  SynthOptions options;
  options.out_dir = TempDir("run");
  options.cases = kCases;
  options.seed = seed;
  options.threads = 2;
  auto summary = WriteSynthDataset(options);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  ASSERT_EQ(summary->cases.size(), static_cast<size_t>(kCases));
  int tumor_free = 0;
  for (const SynthCaseInfo& info : summary->cases) {
    tumor_free += info.tumor_free;
    CheckLabelsAndIntensities(options.out_dir, info);
    CheckOneGrid(options.out_dir, info);
  }
  EXPECT_GE(tumor_free, 1);
  EXPECT_LT(tumor_free, kCases);
  CheckSplitCsvs(options.out_dir, kCases);
  CheckManifest(options.out_dir, *summary);
  fs::remove_all(options.out_dir);
}

TEST(SynthRunTest, SameSeedGivesByteIdenticalFiles) {
  REQUIRE_TEMPLATE();
  // Case k depends neither on N nor on the thread count: case 1 of a two-case run on two
  // threads must equal a one-case run on one thread, byte for byte.
  SynthOptions a;
  a.out_dir = TempDir("bytes_a");
  a.cases = 2;
  a.seed = 21;
  a.threads = 2;
  SynthOptions b = a;
  b.out_dir = TempDir("bytes_b");
  b.cases = 1;
  b.threads = 1;
  auto ra = WriteSynthDataset(a);
  auto rb = WriteSynthDataset(b);
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  const std::string id = SynthCaseId(1);
  for (const char* m : {"flair", "t1", "t1ce", "t2", "seg"}) {
    const std::string file = id + "/" + id + "_" + m + ".nii.gz";
    const std::string bytes = ReadText(a.out_dir / file);
    EXPECT_FALSE(bytes.empty()) << file;
    EXPECT_EQ(bytes, ReadText(b.out_dir / file)) << file;
  }
  fs::remove_all(a.out_dir);
  fs::remove_all(b.out_dir);
}

TEST(SynthCliTest, MissingTemplateFailsWithAClearMessage) {
  const fs::path out = TempDir("cli");
  const std::string cmd = std::string(CLISC_BINARY) + " synth --out " + out.string() +
                          " --cases 1 --template /nonexistent/t.nii.gz > " +
                          (out / "stdout").string() + " 2> " + (out / "stderr").string();
  const int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 1);
  const std::string err = ReadText(out / "stderr");
  EXPECT_NE(err.find("NOT_FOUND"), std::string::npos) << err;
  EXPECT_NE(err.find("mricron-data"), std::string::npos) << err;
  fs::remove_all(out);
}

}  // namespace
}  // namespace clisc
