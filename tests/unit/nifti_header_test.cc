#include "common/nifti_header.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "common/volume_io.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;

// NIfTI-1 header bytes at the standard's offsets, plus helpers for the placement fields.
class Header1 {
 public:
  Header1(int16_t nx, int16_t ny, int16_t nz) : bytes_(352, 0) {
    Put<int32_t>(0, 348);
    const int16_t dim[8] = {3, nx, ny, nz, 1, 1, 1, 1};
    for (int i = 0; i < 8; ++i) Put<int16_t>(40 + 2 * i, dim[i]);
    Put<int16_t>(70, 16).Put<int16_t>(72, 32);  // FLOAT32
    for (int i = 0; i < 8; ++i) Put<float>(76 + 4 * i, 1.0f);
    Put<float>(108, 352.0f);
    std::memcpy(&bytes_[344], "n+1\0", 4);
  }
  template <typename V>
  Header1& Put(size_t offset, V value) {
    std::memcpy(&bytes_[offset], &value, sizeof(V));
    return *this;
  }
  Header1& Spacing(float x, float y, float z, float qfac = 1.0f) {
    return Put<float>(76, qfac).Put<float>(80, x).Put<float>(84, y).Put<float>(88, z);
  }
  Header1& Qform(int16_t code, float b, float c, float d, float ox, float oy, float oz) {
    Put<int16_t>(252, code).Put<float>(256, b).Put<float>(260, c).Put<float>(264, d);
    return Put<float>(268, ox).Put<float>(272, oy).Put<float>(276, oz);
  }
  Header1& Sform(int16_t code, std::array<float, 12> rows) {
    Put<int16_t>(254, code);
    for (int i = 0; i < 12; ++i) Put<float>(280 + 4 * i, rows[i]);
    return *this;
  }
  Header1& Units(uint8_t units) { return Put<uint8_t>(123, units); }
  std::vector<uint8_t> WithVoxels() const {
    std::vector<uint8_t> out = bytes_;
    int16_t dims[3];
    std::memcpy(dims, &bytes_[42], 6);
    out.resize(out.size() + 4 * size_t(dims[0]) * dims[1] * dims[2], 0);
    return out;
  }
  std::span<const uint8_t> bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// NIfTI-2: 540 bytes, int64 sizes and double fields.
std::vector<uint8_t> Header2(int64_t nx, int64_t ny, int64_t nz) {
  std::vector<uint8_t> b(544, 0);
  auto put = [&b](size_t offset, auto value) { std::memcpy(&b[offset], &value, sizeof(value)); };
  put(0, int32_t{540});
  std::memcpy(&b[4], "n+2\0\r\n\032\n", 8);
  put(12, int16_t{16});
  put(14, int16_t{32});
  const int64_t dim[8] = {3, nx, ny, nz, 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put(16 + 8 * i, dim[i]);
  for (int i = 0; i < 8; ++i) put(104 + 8 * i, 1.0);
  put(168, int64_t{544});
  return b;
}

void WriteFile(const fs::path& path, std::span<const uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

class NiftiHeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "clisc-nifti-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// ---- Parsing -----------------------------------------------------------------------------------

TEST(NiftiParseTest, ReadsNifti1Fields) {
  Header1 h(5, 6, 7);
  h.Spacing(0.5f, 2.0f, 3.0f, -1.0f).Qform(1, 0.1f, 0.2f, 0.3f, 10, 20, 30);
  h.Put<float>(112, 2.0f).Put<float>(116, -1.0f).Units(2);
  auto parsed = ParseNiftiHeader(h.bytes());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->version, 1);
  EXPECT_FALSE(parsed->byte_swapped);
  EXPECT_EQ(parsed->dim[0], 3);
  EXPECT_EQ(parsed->dim[3], 7);
  EXPECT_EQ(parsed->datatype, 16);
  EXPECT_DOUBLE_EQ(parsed->pixdim[0], -1.0);
  EXPECT_DOUBLE_EQ(parsed->pixdim[2], 2.0);
  EXPECT_DOUBLE_EQ(parsed->vox_offset, 352.0);
  EXPECT_DOUBLE_EQ(parsed->scl_slope, 2.0);
  EXPECT_DOUBLE_EQ(parsed->scl_inter, -1.0);
  EXPECT_EQ(parsed->qform_code, 1);
  EXPECT_FLOAT_EQ(parsed->quatern_c, 0.2f);
  EXPECT_FLOAT_EQ(parsed->qoffset[2], 30.0f);
  EXPECT_EQ(parsed->xyzt_units, 2);
  EXPECT_TRUE(ValidateNiftiHeader(*parsed, {}).ok());
  EXPECT_EQ(NiftiVoxelCount(*parsed), 5 * 6 * 7);
  EXPECT_EQ(NiftiPayloadBytes(*parsed), 5 * 6 * 7 * 4);
}

TEST(NiftiParseTest, ReadsByteSwappedHeader) {
  Header1 h(5, 6, 7);
  std::vector<uint8_t> b(h.bytes().begin(), h.bytes().end());
  auto swap_at = [&b](size_t offset, size_t width) {
    std::reverse(b.begin() + offset, b.begin() + offset + width);
  };
  swap_at(0, 4);
  for (int i = 0; i < 8; ++i) swap_at(40 + 2 * i, 2);
  swap_at(70, 2);
  swap_at(72, 2);
  for (int i = 0; i < 8; ++i) swap_at(76 + 4 * i, 4);
  swap_at(108, 4);
  auto parsed = ParseNiftiHeader(b);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->byte_swapped);
  EXPECT_EQ(parsed->dim[2], 6);
  EXPECT_EQ(parsed->datatype, 16);
  EXPECT_DOUBLE_EQ(parsed->vox_offset, 352.0);
}

TEST(NiftiParseTest, RecognisesNifti2ButRefusesIt) {
  const auto b = Header2(100000, 100000, 100000);
  auto parsed = ParseNiftiHeader(b);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->version, 2);
  EXPECT_EQ(parsed->dim[1], 100000);
  EXPECT_DOUBLE_EQ(parsed->vox_offset, 544.0);
  const Status s = ValidateNiftiHeader(*parsed, {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("NIfTI-2"), std::string::npos) << s.message();
}

TEST(NiftiParseTest, RejectsWhatIsNotNifti) {
  Header1 analyze(2, 2, 2);
  analyze.Put<uint32_t>(344, 0);  // Analyze 7.5: right size field, no magic
  auto s = ParseNiftiHeader(analyze.bytes()).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("Analyze"), std::string::npos) << s.message();

  Header1 pair(2, 2, 2);
  pair.Put(344, std::array<char, 4>{'n', 'i', '1', '\0'});
  auto parsed = ParseNiftiHeader(pair.bytes());
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->single_file);
  EXPECT_NE(ValidateNiftiHeader(*parsed, {}).message().find("two-file"), std::string::npos);

  const std::vector<uint8_t> text(400, 'a');
  s = ParseNiftiHeader(text).status();
  EXPECT_NE(s.message().find("header size field"), std::string::npos) << s.message();
  EXPECT_EQ(ParseNiftiHeader(std::span<const uint8_t>(text.data(), 2)).status().code(),
            StatusCode::kInvalidArgument);
  Header1 good(2, 2, 2);
  EXPECT_EQ(ParseNiftiHeader(good.bytes().first(300)).status().code(), StatusCode::kDataLoss);
}

TEST(NiftiParseTest, DatatypeTable) {
  EXPECT_EQ(FindNiftiDatatype(2)->pixel_type, PixelType::kUInt8);
  EXPECT_EQ(FindNiftiDatatype(512)->pixel_type, PixelType::kUInt16);
  EXPECT_EQ(FindNiftiDatatype(64)->bytes, 8);
  EXPECT_FALSE(FindNiftiDatatype(1024)->pixel_type.has_value());  // INT64: not a PixelType
  EXPECT_EQ(FindNiftiDatatype(2304)->name, "RGBA32");
  EXPECT_EQ(FindNiftiDatatype(999), nullptr);
  EXPECT_EQ(PixelTypeName(PixelType::kFloat32), "float32");
}

TEST(NiftiParseTest, LimitsApplyPerAxisAndInTotal) {
  auto parsed = ParseNiftiHeader(Header1(300, 300, 300).bytes());
  ASSERT_TRUE(parsed.ok());
  VolumeLimits limits;
  EXPECT_TRUE(ValidateNiftiHeader(*parsed, limits).ok());
  limits.max_dim = 299;
  EXPECT_NE(ValidateNiftiHeader(*parsed, limits).message().find("dimension 1 has size 300"),
            std::string::npos);
  limits = {};
  limits.max_voxels = 300 * 300 * 300 - 1;
  EXPECT_NE(ValidateNiftiHeader(*parsed, limits).message().find("300x300x300 voxels"),
            std::string::npos);
}

// ---- Geometry: the header-only view agrees with what ITK reads -------------------------------

void ExpectHeaderGeometryMatchesItk(const fs::path& path, const Header1& header) {
  WriteFile(path, header.WithVoxels());
  auto from_header = ReadVolumeHeader(path);
  ASSERT_TRUE(from_header.ok()) << from_header.status().ToString();
  auto from_itk = ReadVolume<float>(path);
  ASSERT_TRUE(from_itk.ok()) << from_itk.status().ToString();
  const Geometry& a = from_header->geometry;
  const Geometry& b = from_itk->geometry();
  EXPECT_TRUE(a.NearlyEquals(b, 1e-6))
      << path.filename() << "\n header spacing " << a.spacing[0] << " " << a.spacing[1] << " "
      << a.spacing[2] << " origin " << a.origin[0] << " " << a.origin[1] << " " << a.origin[2]
      << "\n ITK    spacing " << b.spacing[0] << " " << b.spacing[1] << " " << b.spacing[2]
      << " origin " << b.origin[0] << " " << b.origin[1] << " " << b.origin[2];
}

TEST_F(NiftiHeaderTest, HeaderGeometryFollowsItk) {
  const float c = std::cos(0.4f), s = std::sin(0.4f);
  const std::array<float, 12> rotated = {c * 0.5f, -s * 2, 0, 5, s * 0.5f, c * 2, 0, 6, 0, 0, 3, 7};
  const float half_turn = std::sin(0.2f);
  struct Case {
    const char* name;
    Header1 header;
  };
  std::vector<Case> cases = {
      {"no_transform", Header1(2, 3, 4).Spacing(0.5f, 2, 3)},
      {"qform", Header1(2, 3, 4).Spacing(0.5f, 2, 3).Qform(1, 0, 0, half_turn, 10, -20, 30)},
      {"qform_qfac", Header1(2, 3, 4).Spacing(0.5f, 2, 3, -1).Qform(1, 0.1f, 0.2f, 0.3f, 1, 2, 3)},
      {"sform", Header1(2, 3, 4).Spacing(0.5f, 2, 3).Sform(1, rotated)},
      {"sform_mni", Header1(2, 3, 4).Spacing(0.5f, 2, 3).Sform(4, rotated)},
      {"both_scanner_sform",
       Header1(2, 3, 4).Spacing(0.5f, 2, 3).Qform(2, 0, 0, 0, 1, 2, 3).Sform(1, rotated)},
      {"both_aligned_sform",
       Header1(2, 3, 4).Spacing(0.5f, 2, 3).Qform(1, 0, 0, 0, 1, 2, 3).Sform(2, rotated)},
      {"sheared_sform_falls_back", Header1(2, 3, 4)
                                       .Spacing(0.5f, 2, 3)
                                       .Qform(1, 0, 0, 0, 1, 2, 3)
                                       .Sform(1, {0.5f, 0.3f, 0, 5, 0, 2, 0, 6, 0, 0, 3, 7})},
      {"microns",
       Header1(2, 3, 4).Spacing(500, 600, 700).Units(3).Qform(1, 0, 0, 0, 1e3f, 2e3f, 3e3f)},
  };
  for (const Case& test_case : cases) {
    ExpectHeaderGeometryMatchesItk(dir_ / (std::string(test_case.name) + ".nii"), test_case.header);
  }
}

TEST_F(NiftiHeaderTest, HeaderGeometryOfItkWrittenFile) {
  Volume<float> volume(Dims{3, 4, 5});
  Geometry& g = volume.mutable_geometry();
  g.spacing = {0.9, 1.1, 2.5};
  g.origin = {12.5, -40.25, 7.0};
  const double a = std::numbers::pi / 7;
  g.direction = {1, 0, 0, 0, std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a)};
  for (const char* name : {"w.nii", "w.nii.gz"}) {
    ASSERT_TRUE(WriteVolume(volume, dir_ / name).ok());
    auto header = ReadVolumeHeader(dir_ / name);
    ASSERT_TRUE(header.ok());
    EXPECT_TRUE(header->geometry.NearlyEquals(g, 1e-6)) << name;
  }
}

// ---- Files -------------------------------------------------------------------------------------

TEST_F(NiftiHeaderTest, ProbeReportsGzipTrailerSize) {
  const auto bytes = Header1(4, 4, 4).WithVoxels();
  gzFile gz = gzopen((dir_ / "a.nii.gz").c_str(), "wb");
  gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(gz);
  auto probe = ProbeNiftiFile(dir_ / "a.nii.gz");
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  EXPECT_TRUE(probe->gzip);
  EXPECT_EQ(probe->gzip_isize, bytes.size());
  EXPECT_EQ(probe->file_size, fs::file_size(dir_ / "a.nii.gz"));
  EXPECT_EQ(CountGzipBytes(dir_ / "a.nii.gz", 1u << 30).value(), bytes.size());
  EXPECT_EQ(CountGzipBytes(dir_ / "a.nii.gz", 100).value(), 100u);
}

// Two gzip members (as pigz --independent or concatenated streams make): the trailer then gives
// only the last member's size, so the check must fall back to inflating, and accept the file.
TEST_F(NiftiHeaderTest, MultiMemberGzipIsAccepted) {
  const auto bytes = Header1(8, 8, 8).WithVoxels();
  const size_t half = bytes.size() / 2;
  for (int member = 0; member < 2; ++member) {
    gzFile gz = gzopen((dir_ / "m.nii.gz").c_str(), member == 0 ? "wb" : "ab");
    const uint8_t* start = bytes.data() + (member == 0 ? 0 : half);
    const size_t n = member == 0 ? half : bytes.size() - half;
    gzwrite(gz, start, static_cast<unsigned>(n));
    gzclose(gz);
  }
  auto probe = ProbeNiftiFile(dir_ / "m.nii.gz");
  ASSERT_TRUE(probe.ok());
  EXPECT_NE(probe->gzip_isize, bytes.size());
  auto header = ReadVolumeHeader(dir_ / "m.nii.gz");
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  auto volume = ReadVolume<float>(dir_ / "m.nii.gz");
  ASSERT_TRUE(volume.ok()) << volume.status().ToString();
  EXPECT_EQ(volume->size(), (Dims{8, 8, 8}));
}

TEST_F(NiftiHeaderTest, PayloadStreamsInWholeVoxels) {
  Header1 h(10, 10, 10);
  auto bytes = h.WithVoxels();
  for (size_t i = 352; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i);
  WriteFile(dir_ / "p.nii", bytes);
  auto probe = ProbeNiftiFile(dir_ / "p.nii");
  ASSERT_TRUE(probe.ok());
  std::vector<uint8_t> seen;
  ASSERT_TRUE(ReadNiftiPayload(dir_ / "p.nii", *probe, [&](std::span<const uint8_t> chunk) {
                seen.insert(seen.end(), chunk.begin(), chunk.end());
              }).ok());
  EXPECT_EQ(seen, std::vector<uint8_t>(bytes.begin() + 352, bytes.end()));
}

}  // namespace
}  // namespace clisc
