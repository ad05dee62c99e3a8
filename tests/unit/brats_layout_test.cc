#include "common/brats_layout.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/volume_io.h"
#include "tests/unit/test_volumes.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::TempDir;

// A tiny volume written through the project's writer, as a real tool would.
void WriteTiny(const fs::path& path) {
  FloatVolume v(Dims{20, 20, 16}, 0.0f);
  v.at(10, 10, 8) = 1.0f;
  Status s = WriteVolume(v, path);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// Writes a case folder with the given file names (stem + extension).
void WriteCase(const fs::path& parent, const std::string& id,
               const std::vector<std::string>& names) {
  fs::create_directories(parent / id);
  for (const std::string& name : names) WriteTiny(parent / id / name);
}

void Touch(const fs::path& path) { std::ofstream(path) << ""; }

TEST(BratsLayoutTest, RecognisesCaseIds) {
  EXPECT_EQ(NamingOfCaseId("BraTS20_Training_001"), BratsNaming::kBraTS2020);
  EXPECT_EQ(NamingOfCaseId("BraTS20_Validation_125"), BratsNaming::kBraTS2020);
  EXPECT_EQ(NamingOfCaseId("BraTS2021_01666"), BratsNaming::kBraTS2021);
  EXPECT_EQ(NamingOfCaseId("BraTS-GLI-00000-000"), BratsNaming::kBraTS2023);
  for (const char* bad : {"BraTS20_Training_01", "BraTS20_Training_0011", "BraTS2021_0166",
                          "BraTS-GLI-00000-00", "BraTS-GLI-0000a-000", "MICCAI_BraTS2020_Training",
                          "", "-", "BraTS20_Training_001 ", "BraTS20_Training_00\n"}) {
    EXPECT_FALSE(NamingOfCaseId(bad).has_value()) << bad;
  }
  EXPECT_EQ(ModalityFileStem("BraTS-GLI-00001-000", BratsNaming::kBraTS2023, Modality::kT1ce),
            "BraTS-GLI-00001-000-t1c");
  EXPECT_EQ(ModalityFileStem("BraTS2021_00001", BratsNaming::kBraTS2021, Modality::kFlair),
            "BraTS2021_00001_flair");
  EXPECT_EQ(SegFileStem("BraTS-GLI-00001-000", BratsNaming::kBraTS2023), "BraTS-GLI-00001-000-seg");
}

TEST(BratsLayoutTest, ParsesModalityLists) {
  auto all = ParseModalityList("flair,t1,t1ce,t2");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);
  auto brats23 = ParseModalityList(" T2F , t1c");
  ASSERT_TRUE(brats23.ok());
  EXPECT_EQ(*brats23, (std::vector<Modality>{Modality::kFlair, Modality::kT1ce}));
  EXPECT_FALSE(ParseModalityList("").ok());
  EXPECT_FALSE(ParseModalityList("flair,,t1").ok());
  EXPECT_FALSE(ParseModalityList("flair,pd").ok());
  EXPECT_FALSE(ParseModalityList("flair,FLAIR").ok());
}

TEST(BratsLayoutTest, DiscoversAllThreeNamings) {
  TempDir dir("layout");
  WriteCase(dir.path(), "BraTS20_Training_001",
            {"BraTS20_Training_001_flair.nii", "BraTS20_Training_001_t1.nii",
             "BraTS20_Training_001_t1ce.nii", "BraTS20_Training_001_t2.nii",
             "BraTS20_Training_001_seg.nii"});
  WriteCase(
      dir.path(), "BraTS2021_00002",
      {"BraTS2021_00002_flair.nii.gz", "BraTS2021_00002_t1.nii.gz", "BraTS2021_00002_t1ce.nii.gz",
       "BraTS2021_00002_t2.nii.gz", "BraTS2021_00002_seg.nii.gz"});
  WriteCase(dir.path(), "BraTS-GLI-00003-000",
            {"BraTS-GLI-00003-000-t2f.nii.gz", "BraTS-GLI-00003-000-t1n.nii.gz",
             "BraTS-GLI-00003-000-t1c.nii.gz", "BraTS-GLI-00003-000-t2w.nii.gz",
             "BraTS-GLI-00003-000-seg.nii.gz"});
  // Unlabelled validation case, and a file that belongs to no modality (like case 355's seg).
  WriteCase(dir.path(), "BraTS20_Validation_004",
            {"BraTS20_Validation_004_flair.nii", "BraTS20_Validation_004_t1.nii",
             "BraTS20_Validation_004_t1ce.nii", "BraTS20_Validation_004_t2.nii",
             "W39_1998.09.19_Segm.nii"});
  Touch(dir.path() / "name_mapping.csv");

  auto found = DiscoverCases(dir.path());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->cases.size(), 4u);
  // Sorted by id (byte order: '-' < '1' < '_').
  const CaseFiles& c2023 = found->cases[0];
  const CaseFiles& c2021 = found->cases[1];
  const CaseFiles& c2020 = found->cases[2];
  const CaseFiles& cval = found->cases[3];
  EXPECT_EQ(c2023.id, "BraTS-GLI-00003-000");
  EXPECT_EQ(c2021.id, "BraTS2021_00002");
  EXPECT_EQ(c2020.id, "BraTS20_Training_001");
  EXPECT_EQ(cval.id, "BraTS20_Validation_004");

  EXPECT_EQ(c2023.naming, BratsNaming::kBraTS2023);
  EXPECT_EQ(c2023.image(Modality::kFlair)->filename(), "BraTS-GLI-00003-000-t2f.nii.gz");
  EXPECT_EQ(c2023.image(Modality::kT1)->filename(), "BraTS-GLI-00003-000-t1n.nii.gz");
  EXPECT_EQ(c2023.image(Modality::kT1ce)->filename(), "BraTS-GLI-00003-000-t1c.nii.gz");
  EXPECT_EQ(c2023.image(Modality::kT2)->filename(), "BraTS-GLI-00003-000-t2w.nii.gz");
  EXPECT_EQ(c2023.seg->filename(), "BraTS-GLI-00003-000-seg.nii.gz");
  EXPECT_EQ(c2020.image(Modality::kT1ce)->filename(), "BraTS20_Training_001_t1ce.nii");
  EXPECT_EQ(c2021.image(Modality::kT2)->filename(), "BraTS2021_00002_t2.nii.gz");
  for (const CaseFiles* c : {&c2023, &c2020, &c2021}) {
    EXPECT_TRUE(c->problems.empty()) << c->id;
    EXPECT_TRUE(c->warnings.empty()) << c->id;
    EXPECT_TRUE(c->seg.has_value()) << c->id;
  }
  EXPECT_FALSE(cval.seg.has_value());
  EXPECT_TRUE(cval.problems.empty());
  ASSERT_EQ(cval.warnings.size(), 2u);
  EXPECT_EQ(cval.warnings[0], "no seg (unlabelled case)");
  EXPECT_NE(cval.warnings[1].find("W39_1998.09.19_Segm.nii"), std::string::npos);
}

TEST(BratsLayoutTest, FindsCasesOneLevelDown) {
  TempDir dir("layout_root");
  fs::path inner = dir.path() / "MICCAI_BraTS2020_TrainingData";
  for (const char* id : {"BraTS20_Training_001", "BraTS20_Training_002"}) {
    std::string s(id);
    WriteCase(inner, s, {s + "_flair.nii", s + "_t1.nii", s + "_t1ce.nii", s + "_t2.nii"});
  }
  Touch(inner / "survival_info.csv");
  auto found = DiscoverCases(dir.path());
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->cases.size(), 2u);
  EXPECT_EQ(found->cases[0].dir, inner / "BraTS20_Training_001");
  EXPECT_EQ(found->cases[1].id, "BraTS20_Training_002");
  // Two levels down is not searched.
  TempDir deep("layout_deep");
  fs::create_directories(deep.path() / "a" / "b" / "BraTS20_Training_001");
  auto none = DiscoverCases(deep.path());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->cases.empty());
}

TEST(BratsLayoutTest, FlagsBothExtensionsAndDuplicates) {
  TempDir dir("layout_ambiguous");
  const std::string id = "BraTS20_Training_007";
  fs::create_directories(dir.path() / id);
  for (const char* suffix : {"_flair.nii", "_flair.nii.gz", "_t1.nii", "_t1ce.nii", "_t2.nii",
                             "_seg.nii", "_seg.nii.gz"}) {
    Touch(dir.path() / id / (id + suffix));
  }
  // The same id again, one level down.
  fs::create_directories(dir.path() / "copy" / id);
  auto found = DiscoverCases(dir.path());
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->cases.size(), 2u);
  const CaseFiles& c = found->cases[0].dir == dir.path() / id ? found->cases[0] : found->cases[1];
  EXPECT_FALSE(c.image(Modality::kFlair).has_value());
  EXPECT_FALSE(c.seg.has_value());
  ASSERT_GE(c.problems.size(), 3u);
  EXPECT_EQ(c.problems[0].rfind("flair: ambiguous", 0), 0u) << c.problems[0];
  EXPECT_EQ(c.problems[1].rfind("seg: ambiguous", 0), 0u) << c.problems[1];
  EXPECT_NE(c.problems[2].find("duplicate case id"), std::string::npos);
  EXPECT_NE(found->cases[1].problems.back().find("duplicate case id"), std::string::npos);
}

TEST(BratsLayoutTest, SurvivesLinksLoopsAndOddNames) {
  TempDir dir("layout odd ü");
  const std::string id = "BraTS20_Training_010";
  fs::create_directories(dir.path() / id);
  for (const char* suffix : {"_flair.nii", "_t1.nii", "_t1ce.nii", "_t2.nii"}) {
    Touch(dir.path() / id / (id + suffix));
  }
  fs::create_symlink("loop_b", dir.path() / "loop_a");
  fs::create_symlink("loop_a", dir.path() / "loop_b");
  fs::create_symlink(".", dir.path() / "self");                 // walks back into the root
  fs::create_symlink(id, dir.path() / "BraTS20_Training_011");  // the same folder again
  fs::create_symlink("BraTS20_Training_012", dir.path() / "BraTS20_Training_012");  // loop
  fs::create_symlink("nowhere", dir.path() / "dangling");
  for (const char* name :
       {"with space.nii.gz", "ünïcødé.nii", "-leading-dash", "new\nline", "bad\xff\xfe"}) {
    Touch(dir.path() / name);
    Touch(dir.path() / id / name);
  }
  fs::create_directories(dir.path() / "sub dir\nwith newline");

  auto found = DiscoverCases(dir.path());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  // 010 once (not again through `self`, nor as 011), and the looping 012 as a broken case.
  ASSERT_EQ(found->cases.size(), 2u);
  EXPECT_EQ(found->cases[0].id, "BraTS20_Training_010");
  EXPECT_TRUE(found->cases[0].problems.empty());
  EXPECT_EQ(found->cases[1].id, "BraTS20_Training_012");
  ASSERT_EQ(found->cases[1].problems.size(), 1u);
  EXPECT_NE(found->cases[1].problems[0].find("cannot open case folder"), std::string::npos);
  auto mentions = [&](const std::string& text) {
    for (const std::string& w : found->warnings) {
      if (w.find(text) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(mentions("BraTS20_Training_011 is the same folder as"));
  EXPECT_TRUE(mentions("skipped loop_a"));
  // Every warning is printable and serialises as JSON.
  std::vector<std::string> all = found->warnings;
  for (const CaseFiles& c : found->cases)
    all.insert(all.end(), c.warnings.begin(), c.warnings.end());
  for (const std::string& w : all) {
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    EXPECT_NO_THROW(nlohmann::json(w).dump()) << w;
  }
}

TEST(BratsLayoutTest, DataDirErrors) {
  TempDir dir("layout_errors");
  auto missing = DiscoverCases(dir.path() / "absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  Touch(dir.path() / "file");
  auto not_dir = DiscoverCases(dir.path() / "file");
  ASSERT_FALSE(not_dir.ok());
  EXPECT_EQ(not_dir.status().code(), StatusCode::kInvalidArgument);
  auto empty = DiscoverCases(dir.path());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->cases.empty());
}

TEST(BratsLayoutTest, DisplayNameEscapes) {
  EXPECT_EQ(DisplayName("plain name.nii"), "plain name.nii");
  EXPECT_EQ(DisplayName("ünï"), "ünï");
  EXPECT_EQ(DisplayName("a\nb\tc"), "a\\nb\\tc");
  EXPECT_EQ(DisplayName("x\xff"), "x\\xFF");
  EXPECT_EQ(DisplayName("\xc3"), "\\xC3");                    // truncated sequence
  EXPECT_EQ(DisplayName("\xe0\x80\x80"), "\\xE0\\x80\\x80");  // overlong
}

}  // namespace
}  // namespace clisc
