// The bad-input corpus at case level: a data directory with good cases and one case per kind of
// breakage. Validation must accept exactly the good ones and reject each bad one with a reason
// that names the file and the problem; `clisc inspect` must report the same.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "common/brats_layout.h"
#include "common/case_validation.h"
#include "common/volume_io.h"
#include "tests/unit/test_volumes.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using namespace ::clisc::testing;

constexpr const char* kSuffixes[] = {"_flair", "_t1", "_t1ce", "_t2"};

std::string Id(int n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "BraTS20_Training_%03d", n);
  return buf;
}

// A float32 block volume with a gzip (.nii.gz) or plain (.nii) file per modality, and optionally
// a uint8 seg with labels {0, 1, 2, 4}.
void WriteGoodCase(const fs::path& root, const std::string& id, bool with_seg = true,
                   const std::string& ext = ".nii.gz") {
  fs::create_directories(root / id);
  NiftiSpec spec;
  for (const char* suffix : kSuffixes) {
    ASSERT_TRUE(WriteNifti(root / id / (id + suffix + ext), BlockFileBytes(spec)));
  }
  if (with_seg) {
    NiftiSpec seg_spec;
    seg_spec.datatype = kNiftiUInt8;
    seg_spec.bitpix = 8;
    std::vector<uint8_t> labels(20 * 20 * 16, 0);
    labels[(8 * 20 + 10) * 20 + 10] = 1;
    labels[(8 * 20 + 10) * 20 + 11] = 2;
    labels[(8 * 20 + 10) * 20 + 12] = 4;
    ASSERT_TRUE(WriteNifti(root / id / (id + "_seg" + ext), NiftiFileBytes(seg_spec, labels)));
  }
}

fs::path File(const fs::path& root, const std::string& id, const std::string& suffix,
              const std::string& ext = ".nii.gz") {
  return root / id / (id + suffix + ext);
}

// Noise compresses badly, so cutting a gzip file in half surely cuts into the voxels.
std::vector<uint8_t> NoiseFileBytes(const NiftiSpec& spec) {
  std::mt19937 rng(1);
  std::vector<float> v(static_cast<size_t>(spec.dims[0] * spec.dims[1] * spec.dims[2]));
  for (float& x : v) x = static_cast<float>(rng() % 1000) + 1.0f;
  return NiftiFileBytes(spec, RawBytes(v));
}

std::vector<uint8_t> ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

struct Expectation {
  bool accepted;
  std::vector<std::string> reason_parts;  // each must appear in one reason (or warning)
};

class IngestCorpusTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("ingest corpus ü");
    root_ = dir_->path() / "data";
    fs::create_directories(root_);
    BuildCorpus();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static void BuildCorpus();

  static TempDir* dir_;
  static fs::path root_;
  static std::map<std::string, Expectation> expected_;
};

TempDir* IngestCorpusTest::dir_ = nullptr;
fs::path IngestCorpusTest::root_;
std::map<std::string, Expectation> IngestCorpusTest::expected_;

void IngestCorpusTest::BuildCorpus() {
  const fs::path& r = root_;
  auto expect = [](int n, bool accepted, std::vector<std::string> parts) {
    expected_[Id(n)] = {accepted, std::move(parts)};
  };

  // 001: good, crafted .nii.gz with seg; odd file names beside the modalities are ignored.
  WriteGoodCase(r, Id(1));
  for (const char* odd : {"notes with spaces.txt", "ünïcødé.nii.gz", "-dash.nii", "new\nline"}) {
    WriteBytes(r / Id(1) / odd, {1, 2, 3});
  }
  expect(1, true, {"unrecognised file ignored: -dash.nii"});

  // 002: good, written by the project's writer as .nii, no seg (unlabelled).
  fs::create_directories(r / Id(2));
  for (const char* suffix : kSuffixes) {
    FloatVolume v(Dims{24, 20, 16}, 0.0f);
    for (int64_t z = 4; z < 12; ++z) v.at(12, 10, z) = 50.0f + static_cast<float>(z);
    ASSERT_TRUE(WriteVolume(v, File(r, Id(2), suffix, ".nii")).ok());
  }
  expect(2, true, {"no seg"});

  // 003: t1 is a gzip stream cut in half.
  WriteGoodCase(r, Id(3));
  {
    NiftiSpec spec;
    fs::path t1 = File(r, Id(3), "_t1");
    ASSERT_TRUE(WriteGzip(t1, NoiseFileBytes(spec)));
    std::vector<uint8_t> whole = ReadAll(t1);
    whole.resize(whole.size() / 2);
    ASSERT_TRUE(WriteBytes(t1, whole));
  }
  expect(3, false, {"t1: ", "truncated"});

  // 004: flair has a wrong magic.
  WriteGoodCase(r, Id(4));
  {
    NiftiSpec spec;
    std::memcpy(spec.magic, "xyz", 4);
    ASSERT_TRUE(WriteNifti(File(r, Id(4), "_flair"), BlockFileBytes(spec)));
  }
  expect(4, false, {"flair: ", "magic"});

  // 005: t2 has other dims.
  WriteGoodCase(r, Id(5));
  {
    NiftiSpec spec;
    spec.dims[2] = 18;
    ASSERT_TRUE(WriteNifti(File(r, Id(5), "_t2"), BlockFileBytes(spec)));
  }
  expect(5, false, {"t2: not on the grid of flair: dims 20x20x18 vs 20x20x16"});

  // 006: t1ce has the same dims but another spacing.
  WriteGoodCase(r, Id(6));
  {
    NiftiSpec spec;
    spec.spacing[0] = 1.5f;
    ASSERT_TRUE(WriteNifti(File(r, Id(6), "_t1ce"), BlockFileBytes(spec)));
  }
  expect(6, false, {"t1ce: not on the grid of flair: spacing 1.5 x 1 x 1 vs 1 x 1 x 1"});

  // 007: NaN and Inf voxels in t2.
  WriteGoodCase(r, Id(7));
  {
    NiftiSpec spec;
    std::vector<float> v = BlockVoxels(spec);
    v[5] = v[6] = v[700] = std::numeric_limits<float>::quiet_NaN();
    v[9] = std::numeric_limits<float>::infinity();
    v[10] = -std::numeric_limits<float>::infinity();
    ASSERT_TRUE(WriteNifti(File(r, Id(7), "_t2"), NiftiFileBytes(spec, RawBytes(v))));
  }
  expect(7, false, {"t2: 5 non-finite voxels (NaN or Inf)"});

  // 008: flair is 4D (two volumes).
  WriteGoodCase(r, Id(8));
  {
    NiftiSpec spec;
    spec.ndim = 4;
    spec.dims[3] = 2;
    std::vector<float> two = BlockVoxels(spec);
    two.insert(two.end(), two.begin(), two.end());
    ASSERT_TRUE(WriteNifti(File(r, Id(8), "_flair"), NiftiFileBytes(spec, RawBytes(two))));
  }
  expect(8, false, {"flair: ", "4D image"});

  // 009: t1 has a zero-size dimension.
  WriteGoodCase(r, Id(9));
  {
    NiftiSpec spec;
    spec.dims[1] = 0;
    ASSERT_TRUE(WriteNifti(File(r, Id(9), "_t1"), NiftiHeaderBytes(spec)));
  }
  expect(9, false, {"t1: ", "zero-size"});

  // 010: flair's header claims 30000^3 int16 voxels (54 TB) over a few bytes of payload.
  WriteGoodCase(r, Id(10));
  {
    NiftiSpec spec;
    spec.dims[0] = spec.dims[1] = spec.dims[2] = 30000;
    spec.datatype = kNiftiInt16;
    spec.bitpix = 16;
    ASSERT_TRUE(WriteNifti(File(r, Id(10), "_flair"), NiftiFileBytes(spec, {0, 0, 0, 0})));
  }
  expect(10, false, {"flair: ", "30000"});

  // 011: t1ce is missing.
  WriteGoodCase(r, Id(11));
  fs::remove(File(r, Id(11), "_t1ce"));
  expect(11, false, {"missing t1ce"});

  // 012: t2 "file" is a directory (root can read any file, so permissions cannot make one
  // unreadable).
  WriteGoodCase(r, Id(12));
  fs::remove(File(r, Id(12), "_t2"));
  fs::create_directories(File(r, Id(12), "_t2"));
  expect(12, false, {"t2: ", "directory"});

  // 013: t1 is a dangling symlink.
  WriteGoodCase(r, Id(13));
  fs::remove(File(r, Id(13), "_t1"));
  fs::create_symlink("does_not_exist.nii.gz", File(r, Id(13), "_t1"));
  expect(13, false, {"t1: ", "No such file"});

  // 014: the case folder is a symlink to itself.
  fs::create_symlink(Id(14), r / Id(14));
  expect(14, false, {"cannot open case folder", "symbolic links"});

  // 015: flair as both .nii and .nii.gz.
  WriteGoodCase(r, Id(15));
  ASSERT_TRUE(WriteBytes(File(r, Id(15), "_flair", ".nii"), BlockFileBytes(NiftiSpec{}, 7.0f)));
  expect(15, false, {"flair: ambiguous", "may hold different voxels"});

  // 016: flair is all zero (no brain).
  WriteGoodCase(r, Id(16));
  {
    NiftiSpec spec;
    ASSERT_TRUE(WriteNifti(File(r, Id(16), "_flair"),
                           NiftiFileBytes(spec, std::vector<uint8_t>(20 * 20 * 16 * 4, 0))));
  }
  expect(16, false, {"flair: all voxels are zero"});

  // 017: every modality 8 voxels wide: readable, but not a brain MRI.
  fs::create_directories(r / Id(17));
  {
    NiftiSpec spec;
    spec.dims[0] = 8;
    for (const char* suffix : kSuffixes) {
      ASSERT_TRUE(WriteNifti(File(r, Id(17), suffix), BlockFileBytes(spec)));
    }
  }
  expect(17, false, {"flair: implausible dims 8x20x16"});

  // 018: seg with a label BraTS2020 does not use: accepted, with a warning.
  WriteGoodCase(r, Id(18));
  {
    NiftiSpec spec;
    spec.datatype = kNiftiUInt8;
    spec.bitpix = 8;
    std::vector<uint8_t> labels(20 * 20 * 16, 0);
    labels[3000] = 3;
    labels[3001] = 1;
    ASSERT_TRUE(WriteNifti(File(r, Id(18), "_seg"), NiftiFileBytes(spec, labels)));
  }
  expect(18, true, {"seg: labels outside the brats2020 set: 3 (1 voxels)"});

  // 019: flair is a symlink to itself.
  WriteGoodCase(r, Id(19));
  fs::remove(File(r, Id(19), "_flair"));
  fs::create_symlink(File(r, Id(19), "_flair").filename(), File(r, Id(19), "_flair"));
  expect(19, false, {"flair: ", "symbolic link"});

  // 020: spacing of 20 mm.
  fs::create_directories(r / Id(20));
  {
    NiftiSpec spec;
    spec.spacing[2] = 20.0f;
    for (const char* suffix : kSuffixes) {
      ASSERT_TRUE(WriteNifti(File(r, Id(20), suffix), BlockFileBytes(spec)));
    }
  }
  expect(20, false, {"flair: implausible spacing 1 x 1 x 20 mm"});

  // A BraTS2023 case, one level down, with 3 as enhancing tumor: accepted without a warning.
  {
    const std::string id = "BraTS-GLI-00021-000";
    fs::path inner = r / "MICCAI extra level";
    fs::create_directories(inner / id);
    NiftiSpec spec;
    for (const char* suffix : {"-t2f", "-t1n", "-t1c", "-t2w"}) {
      ASSERT_TRUE(WriteNifti(inner / id / (id + suffix + ".nii.gz"), BlockFileBytes(spec)));
    }
    NiftiSpec seg_spec;
    seg_spec.datatype = kNiftiInt16;
    seg_spec.bitpix = 16;
    std::vector<int16_t> labels(20 * 20 * 16, 0);
    labels[3000] = 3;
    ASSERT_TRUE(
        WriteNifti(inner / id / (id + "-seg.nii.gz"), NiftiFileBytes(seg_spec, RawBytes(labels))));
    expected_[id] = {true, {}};
  }

  // Clutter in the data dir: a symlink loop, a dangling link, odd names.
  fs::create_symlink("loop_b", r / "loop_a");
  fs::create_symlink("loop_a", r / "loop_b");
  fs::create_symlink("nowhere", r / "dangling");
  for (const char* odd : {"with space.nii.gz", "ünïcødé", "-rf", "line\nbreak", "bad\xff"}) {
    WriteBytes(r / odd, {0});
  }
}

bool AnyContains(const std::vector<std::string>& items, const std::string& part) {
  for (const std::string& s : items) {
    if (s.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST_F(IngestCorpusTest, AcceptsExactlyTheGoodCasesAndNamesEachProblem) {
  ValidationOptions options;
  auto start = std::chrono::steady_clock::now();
  auto report = InspectDataset(root_, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_LT(seconds, 30.0);  // the absurd header must not be read, let alone allocated

  std::map<std::string, const CaseReport*> by_id;
  for (const CaseReport& c : report->cases) by_id[c.id] = &c;
  ASSERT_EQ(by_id.size(), expected_.size());
  for (const auto& [id, want] : expected_) {
    ASSERT_TRUE(by_id.count(id)) << id << " not found";
    const CaseReport& got = *by_id[id];
    std::string all;
    for (const std::string& s : got.reasons) all += "\n  reason: " + s;
    for (const std::string& s : got.warnings) all += "\n  warning: " + s;
    EXPECT_EQ(got.accepted, want.accepted) << id << all;
    EXPECT_EQ(got.reasons.empty(), want.accepted) << id << all;
    std::vector<std::string> texts = got.reasons;
    texts.insert(texts.end(), got.warnings.begin(), got.warnings.end());
    for (const std::string& part : want.reason_parts) {
      EXPECT_TRUE(AnyContains(texts, part)) << id << ": no reason mentions '" << part << "'" << all;
    }
    for (const std::string& s : texts) EXPECT_EQ(s.find('\n'), std::string::npos) << id << s;
  }
  // The BraTS2023 case's label 3 is its enhancing tumor, not an unexpected label.
  EXPECT_TRUE(by_id["BraTS-GLI-00021-000"]->warnings.empty());
  EXPECT_EQ(by_id[Id(1)]->dims, (Dims{20, 20, 16}));
  EXPECT_TRUE(AnyContains(report->warnings, "skipped loop_a"));
  EXPECT_NO_THROW(DatasetReportToJson(*report, options).dump());
}

TEST_F(IngestCorpusTest, OnlyTheRequiredModalitiesAreChecked) {
  ValidationOptions options;
  options.required = {Modality::kFlair};
  options.threads = 1;
  auto report = InspectDataset(root_, options);
  ASSERT_TRUE(report.ok());
  for (const CaseReport& c : report->cases) {
    // t1ce missing, t1/t2 broken: irrelevant when only flair is asked for.
    if (c.id == Id(11) || c.id == Id(3) || c.id == Id(12) || c.id == Id(13)) {
      EXPECT_TRUE(c.accepted) << c.id << ": " << (c.reasons.empty() ? "" : c.reasons[0]);
    }
    if (c.id == Id(4)) {
      EXPECT_FALSE(c.accepted);
    }
  }
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
};

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CommandResult RunClisc(const std::string& args) {
  CommandResult result;
  std::string command = ShellQuote(CLISC_BINARY) + " --log-level error " + args + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.out.append(buf, n);
  int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

TEST_F(IngestCorpusTest, InspectCommandReportsTheSame) {
  CommandResult json_run = RunClisc("inspect " + ShellQuote(root_.string()) + " --json");
  ASSERT_EQ(json_run.exit_code, 0) << json_run.out;
  nlohmann::json j = nlohmann::json::parse(json_run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json_run.out;
  std::map<std::string, std::string> status;
  for (const auto& c : j["cases"]) status[c["id"].get<std::string>()] = c["status"];
  ASSERT_EQ(status.size(), expected_.size());
  size_t accepted = 0;
  for (const auto& [id, want] : expected_) {
    EXPECT_EQ(status[id], want.accepted ? "accepted" : "rejected") << id;
    accepted += want.accepted;
  }
  EXPECT_EQ(j["summary"]["accepted"], accepted);
  EXPECT_EQ(j["summary"]["rejected"], expected_.size() - accepted);

  CommandResult table = RunClisc("inspect " + ShellQuote(root_.string()) + " --threads 1");
  EXPECT_EQ(table.exit_code, 0);
  std::string summary = std::to_string(expected_.size()) + " cases: " + std::to_string(accepted) +
                        " accepted, " + std::to_string(expected_.size() - accepted) + " rejected";
  EXPECT_NE(table.out.find(summary), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("missing t1ce"), std::string::npos);
}

TEST_F(IngestCorpusTest, InspectCommandExitCodes) {
  EXPECT_EQ(RunClisc("inspect " + ShellQuote((root_ / "absent").string())).exit_code, 2);
  EXPECT_EQ(RunClisc("inspect " + ShellQuote((root_ / "with space.nii.gz").string())).exit_code, 2);
  EXPECT_EQ(RunClisc("inspect " + ShellQuote(root_.string()) + " --modalities flair,pd").exit_code,
            2);
  EXPECT_EQ(RunClisc("inspect " + ShellQuote(root_.string()) + " --threads 0").exit_code, 2);
  EXPECT_EQ(RunClisc("inspect").exit_code, 2);
  // Only broken cases: exit 1.
  TempDir only_bad("ingest_bad");
  fs::create_directories(only_bad.path() / Id(1));
  CommandResult none = RunClisc("inspect " + ShellQuote(only_bad.path().string()) + " --json");
  EXPECT_EQ(none.exit_code, 1);
  nlohmann::json j = nlohmann::json::parse(none.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << none.out;
  EXPECT_EQ(j["summary"]["rejected"], 1);
  // An empty directory: nothing accepted.
  TempDir empty("ingest_empty");
  EXPECT_EQ(RunClisc("inspect " + ShellQuote(empty.path().string())).exit_code, 1);
}

}  // namespace
}  // namespace clisc
