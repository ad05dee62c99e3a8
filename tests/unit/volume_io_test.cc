#include "common/volume_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace clisc {
namespace {

namespace fs = std::filesystem;

// ---- Byte-level NIfTI-1 files, written without ITK so that corruptions are exact ---------------

// A NIfTI-1 single-file image: 348-byte header, 4 bytes of (empty) extension flag, payload.
// Offsets are those of the NIfTI-1 standard.
class RawNifti {
 public:
  RawNifti(int16_t nx, int16_t ny, int16_t nz, int16_t datatype = 16, int16_t bitpix = 32)
      : bytes_(352, 0) {
    Put<int32_t>(0, 348);
    SetDims({3, nx, ny, nz, 1, 1, 1, 1});
    Put<int16_t>(70, datatype);
    Put<int16_t>(72, bitpix);
    for (int i = 0; i < 8; ++i) Put<float>(76 + 4 * i, 1.0f);
    Put<float>(108, 352.0f);  // vox_offset
    std::memcpy(&bytes_[344], "n+1\0", 4);
  }

  template <typename V>
  RawNifti& Put(size_t offset, V value) {
    std::memcpy(&bytes_[offset], &value, sizeof(V));
    return *this;
  }
  RawNifti& SetDims(std::array<int16_t, 8> dim) {
    for (int i = 0; i < 8; ++i) Put<int16_t>(40 + 2 * i, dim[i]);
    return *this;
  }
  RawNifti& SetPixdim(int axis, float value) { return Put<float>(76 + 4 * axis, value); }
  RawNifti& SetMagic(const char (&magic)[4]) {  // e.g. "n+1" with its NUL
    std::memcpy(&bytes_[344], magic, 4);
    return *this;
  }
  RawNifti& SetScaling(float slope, float inter) {
    Put<float>(112, slope);
    return Put<float>(116, inter);
  }
  template <typename V>
  RawNifti& Append(const std::vector<V>& voxels) {
    const auto* p = reinterpret_cast<const uint8_t*>(voxels.data());
    bytes_.insert(bytes_.end(), p, p + voxels.size() * sizeof(V));
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

void WriteFile(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void WriteGzip(const fs::path& path, const std::vector<uint8_t>& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb6");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

std::vector<uint8_t> ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Float voxels that do not compress away (so a cut .gz is cut inside the payload).
std::vector<float> NoisyVoxels(size_t n) {
  std::vector<float> v(n);
  uint32_t state = 12345;
  for (auto& x : v) {
    state = state * 1664525u + 1013904223u;
    x = static_cast<float>(state >> 8) / 65536.0f;
  }
  return v;
}

class VolumeIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "clisc-vio-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

Geometry ObliqueGeometry() {
  Geometry g;
  g.spacing = {0.75, 1.25, 3.0};
  g.origin = {-90.5, 126.25, -72.0};
  const double c = std::cos(0.3), s = std::sin(0.3);  // 0.3 rad about z, then flip z
  g.direction = {c, -s, 0, s, c, 0, 0, 0, -1};
  return g;
}

// ---- Round trips
// ---------------------------------------------------------------------------------

template <typename T>
class VolumeIoRoundTripTest : public VolumeIoTest {};
using PixelTypes = ::testing::Types<uint8_t, int16_t, int32_t, float, double>;
TYPED_TEST_SUITE(VolumeIoRoundTripTest, PixelTypes);

TYPED_TEST(VolumeIoRoundTripTest, KeepsVoxelsAndGeometryForBothExtensions) {
  using T = TypeParam;
  Volume<T> volume(Dims{7, 5, 3}, T{}, ObliqueGeometry());
  for (int64_t i = 0; i < volume.count(); ++i) {
    volume[i] = static_cast<T>(std::is_signed_v<T> ? (i * 7) % 200 - 100 : (i * 7) % 250);
  }
  if constexpr (std::is_floating_point_v<T>) volume[3] = static_cast<T>(0.125);
  for (const char* name : {"rt.nii", "rt.nii.gz"}) {
    const fs::path path = this->dir_ / name;
    ASSERT_TRUE(WriteVolume(volume, path).ok()) << name;
    auto header = ReadVolumeHeader(path);
    ASSERT_TRUE(header.ok()) << header.status().ToString();
    EXPECT_EQ(header->size, volume.size());
    EXPECT_EQ(header->compressed, std::string(name).ends_with(".gz"));
    auto read = ReadVolume<T>(path);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(read->size(), volume.size());
    EXPECT_EQ(read->voxels(), volume.voxels()) << name;
    // The header stores float32, so geometry survives to float precision.
    EXPECT_TRUE(read->geometry().NearlyEquals(volume.geometry(), 1e-6)) << name;
    EXPECT_TRUE(header->geometry.NearlyEquals(read->geometry(), 1e-6)) << name;
  }
}

TEST_F(VolumeIoTest, GeometryKeptToFloatPrecision) {
  Volume<float> volume(Dims{4, 3, 2}, 1.5f, ObliqueGeometry());
  const fs::path path = dir_ / "geo.nii.gz";
  ASSERT_TRUE(WriteVolume(volume, path).ok());
  auto read = ReadVolume<float>(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  const Geometry& g = read->geometry();
  for (int i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(g.spacing[i], volume.geometry().spacing[i]);  // exact in float
    EXPECT_DOUBLE_EQ(g.origin[i], volume.geometry().origin[i]);
  }
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(g.direction[i], volume.geometry().direction[i], 1e-6);
}

TEST_F(VolumeIoTest, WriteLeavesNoTemporaryFilesAndReplacesTarget) {
  const fs::path path = dir_ / "out.nii.gz";
  ASSERT_TRUE(WriteVolume(Volume<uint8_t>(Dims{2, 2, 2}, 1), path).ok());
  ASSERT_TRUE(WriteVolume(Volume<uint8_t>(Dims{3, 2, 2}, 2), path).ok());
  auto read = ReadVolume<uint8_t>(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), (Dims{3, 2, 2}));
  EXPECT_EQ((*read)[0], 2);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) entries += e.path() == path ? 1 : 100;
  EXPECT_EQ(entries, 1);
}

TEST_F(VolumeIoTest, WriteRejectsBadNamesAndFolders) {
  const Volume<float> volume(Dims{2, 2, 2});
  EXPECT_EQ(WriteVolume(volume, dir_ / "x.mha").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteVolume(volume, dir_ / "missing" / "x.nii").code(), StatusCode::kNotFound);
  EXPECT_EQ(WriteVolume(Volume<float>(), dir_ / "empty.nii").code(), StatusCode::kInvalidArgument);
  Volume<float> sheared(Dims{2, 2, 2});
  sheared.mutable_geometry().direction = {1, 0.5, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_EQ(WriteVolume(sheared, dir_ / "s.nii").code(), StatusCode::kInvalidArgument);
}

TEST_F(VolumeIoTest, OddFileNamesRoundTrip) {
  Volume<int16_t> volume(Dims{3, 3, 3}, 42);
  for (const char* name : {"with space.nii.gz", "-leading-dash.nii", "héllo 脑 ünï.nii.gz"}) {
    const fs::path path = dir_ / name;
    ASSERT_TRUE(WriteVolume(volume, path).ok()) << name;
    auto read = ReadVolume<int16_t>(path);
    ASSERT_TRUE(read.ok()) << name << ": " << read.status().ToString();
    EXPECT_EQ(read->voxels(), volume.voxels());
  }
}

// ---- The same-stem trap
// ---------------------------------------------------------------------------

TEST_F(VolumeIoTest, SameStemFilesEachReadTheirOwnVoxels) {
  const Volume<uint8_t> plain(Dims{4, 4, 4}, 11);
  const Volume<uint8_t> packed(Dims{4, 4, 4}, 22);
  ASSERT_TRUE(WriteVolume(plain, dir_ / "case.nii").ok());
  ASSERT_TRUE(WriteVolume(packed, dir_ / "case.nii.gz").ok());
  for (int round = 0; round < 2; ++round) {
    auto gz = ReadVolume<uint8_t>(dir_ / "case.nii.gz");
    auto raw = ReadVolume<uint8_t>(dir_ / "case.nii");
    ASSERT_TRUE(gz.ok() && raw.ok());
    EXPECT_EQ((*gz)[0], 22) << "x.nii.gz read x.nii's voxels";
    EXPECT_EQ((*raw)[0], 11);
  }
  // Only the two files remain: the private read links are gone.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

// ---- Values: conversion and scaling ------------------------------------------------------------

TEST_F(VolumeIoTest, FloatToIntegerRoundsToNearestAndSaturates) {
  const std::vector<float> stored = {2.9999f, -0.4f, 300.7f, std::nanf(""), 2.5f, -7.6f};
  WriteFile(dir_ / "f.nii", RawNifti(6, 1, 1).Append(stored).bytes());
  auto labels = ReadVolume<uint8_t>(dir_ / "f.nii");
  ASSERT_TRUE(labels.ok()) << labels.status().ToString();
  EXPECT_EQ(labels->voxels(), (std::vector<uint8_t>{3, 0, 255, 0, 3, 0}));
  auto signed_labels = ReadVolume<int16_t>(dir_ / "f.nii");
  ASSERT_TRUE(signed_labels.ok());
  EXPECT_EQ(signed_labels->voxels(), (std::vector<int16_t>{3, 0, 301, 0, 3, -8}));
}

TEST_F(VolumeIoTest, NonFiniteVoxelsAreCountedInTheFile) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> stored = {1.5f, std::nanf(""), -inf, 4.0f};
  WriteFile(dir_ / "nan.nii", RawNifti(4, 1, 1).Append(stored).bytes());
  WriteGzip(dir_ / "nan.nii.gz", RawNifti(4, 1, 1).Append(stored).bytes());
  for (const char* name : {"nan.nii", "nan.nii.gz"}) {
    // Not rejected; ITK's NIfTI library reads non-finite floats as 0 ...
    auto floats = ReadVolume<float>(dir_ / name);
    ASSERT_TRUE(floats.ok()) << floats.status().ToString();
    EXPECT_EQ(floats->voxels(), (std::vector<float>{1.5f, 0.0f, 0.0f, 4.0f}));
    EXPECT_TRUE(AllFinite(*floats));
    // ... so the file itself is asked.
    auto count = CountNonFiniteVoxels(dir_ / name);
    ASSERT_TRUE(count.ok()) << count.status().ToString();
    EXPECT_EQ(*count, 2) << name;
  }
  Volume<double> doubles(Dims{2, 1, 1}, 1.0);
  EXPECT_TRUE(AllFinite(doubles));
  doubles[1] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(AllFinite(doubles));
  ASSERT_TRUE(WriteVolume(Volume<int16_t>(Dims{2, 2, 2}, 3), dir_ / "int.nii.gz").ok());
  EXPECT_EQ(CountNonFiniteVoxels(dir_ / "int.nii.gz").value(), 0);
  EXPECT_EQ(CountNonFiniteVoxels(dir_ / "missing.nii").status().code(), StatusCode::kNotFound);
}

TEST_F(VolumeIoTest, IntegerNarrowingSaturates) {
  const std::vector<int32_t> stored = {-5, 70000, 255, 256};
  WriteFile(dir_ / "i.nii", RawNifti(4, 1, 1, 8, 32).Append(stored).bytes());
  auto read = ReadVolume<uint8_t>(dir_ / "i.nii");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->voxels(), (std::vector<uint8_t>{0, 255, 255, 255}));
}

TEST_F(VolumeIoTest, ScaleSlopeAndInterceptApplied) {
  const std::vector<int16_t> stored = {0, 1, 2, -3};
  WriteFile(dir_ / "s.nii", RawNifti(4, 1, 1, 4, 16).SetScaling(2.0f, 0.5f).Append(stored).bytes());
  auto read = ReadVolume<float>(dir_ / "s.nii");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->voxels(), (std::vector<float>{0.5f, 2.5f, 4.5f, -5.5f}));
  auto labels = ReadVolume<int32_t>(dir_ / "s.nii");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels->voxels(), (std::vector<int32_t>{1, 3, 5, -6}));  // rounded after scaling
  // As ITK 5.2: slope 0 counts as 1 but the intercept still applies.
  WriteFile(dir_ / "z.nii", RawNifti(4, 1, 1, 4, 16).SetScaling(0.0f, 9.0f).Append(stored).bytes());
  auto zero_slope = ReadVolume<float>(dir_ / "z.nii");
  ASSERT_TRUE(zero_slope.ok());
  EXPECT_EQ(zero_slope->voxels(), (std::vector<float>{9, 10, 11, 6}));
  // NaN slope and intercept (what nibabel writes for "unscaled"): values as stored.
  WriteFile(
      dir_ / "n.nii",
      RawNifti(4, 1, 1, 4, 16).SetScaling(std::nanf(""), std::nanf("")).Append(stored).bytes());
  auto unscaled = ReadVolume<int16_t>(dir_ / "n.nii");
  ASSERT_TRUE(unscaled.ok()) << unscaled.status().ToString();
  EXPECT_EQ(unscaled->voxels(), stored);
}

TEST_F(VolumeIoTest, ContentNotNameDecidesCompression) {
  const std::vector<int16_t> stored = {1, 2, 3, 4, 5, 6, 7, 8};
  const auto bytes = RawNifti(2, 2, 2, 4, 16).Append(stored).bytes();
  WriteGzip(dir_ / "packed-but-named.nii", bytes);
  WriteFile(dir_ / "plain-but-named.nii.gz", bytes);
  for (const char* name : {"packed-but-named.nii", "plain-but-named.nii.gz"}) {
    auto read = ReadVolume<int16_t>(dir_ / name);
    ASSERT_TRUE(read.ok()) << name << ": " << read.status().ToString();
    EXPECT_EQ(read->voxels(), stored);
  }
  EXPECT_TRUE(ReadVolumeHeader(dir_ / "packed-but-named.nii")->compressed);
  EXPECT_FALSE(ReadVolumeHeader(dir_ / "plain-but-named.nii.gz")->compressed);
}

TEST_F(VolumeIoTest, AxisOrderIsXFastest) {
  std::vector<float> stored(4 * 3 * 2);
  for (size_t i = 0; i < stored.size(); ++i) stored[i] = static_cast<float>(i);
  WriteFile(dir_ / "o.nii", RawNifti(4, 3, 2).Append(stored).bytes());
  auto read = ReadVolume<float>(dir_ / "o.nii");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), (Dims{4, 3, 2}));
  EXPECT_EQ(read->at(3, 2, 1), static_cast<float>((1 * 3 + 2) * 4 + 3));
}

TEST_F(VolumeIoTest, ByteSwappedFileReads) {
  // A big-endian file: every multi-byte field and voxel stored with its bytes reversed.
  auto swap16 = [](int16_t v) { return static_cast<int16_t>(__builtin_bswap16(v)); };
  auto swapf = [](float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    u = __builtin_bswap32(u);
    float out;
    std::memcpy(&out, &u, 4);
    return out;
  };
  RawNifti raw(2, 2, 1);
  raw.Put<int32_t>(0, static_cast<int32_t>(__builtin_bswap32(348)));
  raw.SetDims(
      {swap16(3), swap16(2), swap16(2), swap16(1), swap16(1), swap16(1), swap16(1), swap16(1)});
  raw.Put<int16_t>(70, swap16(16)).Put<int16_t>(72, swap16(32));
  for (int i = 0; i < 8; ++i) raw.SetPixdim(i, swapf(i == 2 ? 2.5f : 1.0f));
  raw.Put<float>(108, swapf(352.0f));
  raw.Append(std::vector<float>{swapf(1.0f), swapf(-2.0f), swapf(3.5f), swapf(4.0f)});
  WriteFile(dir_ / "be.nii", raw.bytes());
  auto header = ReadVolumeHeader(dir_ / "be.nii");
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->size, (Dims{2, 2, 1}));
  EXPECT_DOUBLE_EQ(header->geometry.spacing[1], 2.5);
  auto read = ReadVolume<float>(dir_ / "be.nii");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->voxels(), (std::vector<float>{1.0f, -2.0f, 3.5f, 4.0f}));
  EXPECT_DOUBLE_EQ(read->geometry().spacing[1], 2.5);
}

// ---- The bad-file corpus
// -------------------------------------------------------------------------

struct BadFile {
  std::string name;
  StatusCode code;
  std::string message_part;
};

void ExpectRejected(const fs::path& path, StatusCode code, const std::string& message_part) {
  auto header = ReadVolumeHeader(path);
  auto read = ReadVolume<float>(path);
  for (const Status& s : {header.status(), read.status()}) {
    EXPECT_EQ(s.code(), code) << path.filename() << ": " << s.ToString();
    EXPECT_NE(s.message().find(message_part), std::string::npos)
        << path.filename() << ": \"" << s.message() << "\" lacks \"" << message_part << "\"";
  }
}

TEST_F(VolumeIoTest, TruncatedFilesAreDataLoss) {
  const auto full = RawNifti(32, 32, 32).Append(NoisyVoxels(32 * 32 * 32)).bytes();
  // .nii cut in the payload.
  WriteFile(dir_ / "cut.nii", {full.begin(), full.begin() + full.size() / 2});
  ExpectRejected(dir_ / "cut.nii", StatusCode::kDataLoss, "truncated file");
  // .nii.gz cut in the middle of the compressed payload.
  WriteGzip(dir_ / "whole.nii.gz", full);
  const auto gz = ReadAll(dir_ / "whole.nii.gz");
  WriteFile(dir_ / "cut.nii.gz", {gz.begin(), gz.begin() + gz.size() / 2});
  ExpectRejected(dir_ / "cut.nii.gz", StatusCode::kDataLoss, "truncated gzip");
  // A header cut short.
  WriteFile(dir_ / "stub.nii", {full.begin(), full.begin() + 200});
  ExpectRejected(dir_ / "stub.nii", StatusCode::kDataLoss, "truncated NIfTI header");
}

TEST_F(VolumeIoTest, NotNiftiIsInvalidArgument) {
  WriteFile(dir_ / "magic.nii", RawNifti(2, 2, 2).SetMagic("n+3").Append(NoisyVoxels(8)).bytes());
  ExpectRejected(dir_ / "magic.nii", StatusCode::kInvalidArgument, "magic");
  std::string text;
  while (text.size() < 2000) text += "this is a plain text file, not a volume\n";
  WriteFile(dir_ / "text.nii", {text.begin(), text.end()});
  ExpectRejected(dir_ / "text.nii", StatusCode::kInvalidArgument, "not a NIfTI file");
  WriteFile(dir_ / "short.nii", {'h', 'i', '\n'});
  ExpectRejected(dir_ / "short.nii", StatusCode::kInvalidArgument, "not a NIfTI file");
  WriteFile(dir_ / "empty.nii", {});
  ExpectRejected(dir_ / "empty.nii", StatusCode::kInvalidArgument, "empty file");
  WriteGzip(dir_ / "garbage.nii.gz", {text.begin(), text.end()});
  ExpectRejected(dir_ / "garbage.nii.gz", StatusCode::kInvalidArgument, "not a NIfTI file");
  std::vector<uint8_t> fake_gzip = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03};
  fake_gzip.insert(fake_gzip.end(), text.begin(), text.end());
  WriteFile(dir_ / "badgzip.nii.gz", fake_gzip);
  ExpectRejected(dir_ / "badgzip.nii.gz", StatusCode::kDataLoss, "corrupt gzip");
}

TEST_F(VolumeIoTest, ImplausibleHeadersAreInvalidArgument) {
  WriteFile(dir_ / "4d.nii",
            RawNifti(2, 2, 2).SetDims({4, 2, 2, 2, 3, 1, 1, 1}).Append(NoisyVoxels(24)).bytes());
  ExpectRejected(dir_ / "4d.nii", StatusCode::kInvalidArgument, "4D image with 3 volumes");
  WriteFile(dir_ / "zero.nii", RawNifti(2, 0, 2).bytes());
  ExpectRejected(dir_ / "zero.nii", StatusCode::kInvalidArgument, "dimension 2 has size 0");
  WriteFile(dir_ / "dtype.nii", RawNifti(2, 2, 2, 999, 32).Append(NoisyVoxels(8)).bytes());
  ExpectRejected(dir_ / "dtype.nii", StatusCode::kInvalidArgument, "datatype code 999");
  WriteFile(dir_ / "complex.nii", RawNifti(2, 2, 2, 32, 64).Append(NoisyVoxels(16)).bytes());
  ExpectRejected(dir_ / "complex.nii", StatusCode::kInvalidArgument, "COMPLEX64");
  WriteFile(dir_ / "rgb.nii", RawNifti(2, 2, 2, 128, 24).Append(NoisyVoxels(8)).bytes());
  ExpectRejected(dir_ / "rgb.nii", StatusCode::kInvalidArgument, "RGB24");
  WriteFile(dir_ / "nan.nii",
            RawNifti(2, 2, 2).SetPixdim(2, std::nanf("")).Append(NoisyVoxels(8)).bytes());
  ExpectRejected(dir_ / "nan.nii", StatusCode::kInvalidArgument, "pixdim[2]");
  WriteFile(dir_ / "neg.nii", RawNifti(2, 2, 2).SetPixdim(1, -1.0f).Append(NoisyVoxels(8)).bytes());
  ExpectRejected(dir_ / "neg.nii", StatusCode::kInvalidArgument, "pixdim[1]");
  WriteFile(dir_ / "dim0.nii", RawNifti(2, 2, 2).SetDims({9, 2, 2, 2, 1, 1, 1, 1}).bytes());
  ExpectRejected(dir_ / "dim0.nii", StatusCode::kInvalidArgument, "dim[0]=9");
  WriteFile(dir_ / "offset.nii", RawNifti(2, 2, 2).Put<float>(108, 12.0f).bytes());
  ExpectRejected(dir_ / "offset.nii", StatusCode::kInvalidArgument, "vox_offset");
  // An sform that is not a rotation times pixdim, and no qform: ITK cannot place the image.
  RawNifti sheared(2, 2, 2);
  sheared.Put<int16_t>(254, 1);  // sform_code
  const float srow[12] = {1, 0.5f, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
  for (int i = 0; i < 12; ++i) sheared.Put<float>(280 + 4 * i, srow[i]);
  WriteFile(dir_ / "shear.nii", sheared.Append(NoisyVoxels(8)).bytes());
  ExpectRejected(dir_ / "shear.nii", StatusCode::kInvalidArgument, "sform");
  // Vector data (a size-3 fifth dimension).
  WriteFile(dir_ / "vec.nii",
            RawNifti(2, 2, 2).SetDims({5, 2, 2, 2, 1, 3, 1, 1}).Append(NoisyVoxels(24)).bytes());
  ExpectRejected(dir_ / "vec.nii", StatusCode::kInvalidArgument, "dimension 5");
}

TEST_F(VolumeIoTest, TrailingSingletonAxesAndFewerAxesRead) {
  WriteFile(dir_ / "4d1.nii",
            RawNifti(3, 2, 2).SetDims({4, 3, 2, 2, 1, 1, 1, 1}).Append(NoisyVoxels(12)).bytes());
  auto header = ReadVolumeHeader(dir_ / "4d1.nii");
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->dimensions, 3);
  auto volume = ReadVolume<float>(dir_ / "4d1.nii");
  ASSERT_TRUE(volume.ok()) << volume.status().ToString();
  EXPECT_EQ(volume->size(), (Dims{3, 2, 2}));
  EXPECT_EQ(volume->voxels(), NoisyVoxels(12));
  WriteFile(dir_ / "2d.nii",
            RawNifti(3, 2, 1).SetDims({2, 3, 2, 1, 1, 1, 1, 1}).Append(NoisyVoxels(6)).bytes());
  auto flat = ReadVolume<float>(dir_ / "2d.nii");
  ASSERT_TRUE(flat.ok()) << flat.status().ToString();
  EXPECT_EQ(flat->size(), (Dims{3, 2, 1}));
  EXPECT_EQ(ReadVolumeHeader(dir_ / "2d.nii")->dimensions, 2);
}

TEST_F(VolumeIoTest, AbsurdSizeRejectedFastWithoutAllocation) {
  // NIfTI-1 sizes are int16, so 32767^3 is the largest claim the format can make.
  WriteFile(dir_ / "huge.nii", RawNifti(32767, 32767, 32767).bytes());
  const auto start = std::chrono::steady_clock::now();
  ExpectRejected(dir_ / "huge.nii", StatusCode::kInvalidArgument, "over the limit");
  VolumeLimits wide;
  wide.max_dim = 1 << 20;
  auto read = ReadVolume<float>(dir_ / "huge.nii", wide);
  EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(read.status().message().find("32767x32767x32767 voxels"), std::string::npos)
      << read.status().message();
  // Within the limits the claim still fails fast: the file cannot hold the voxels.
  wide.max_voxels = int64_t{1} << 50;
  read = ReadVolume<float>(dir_ / "huge.nii", wide);
  EXPECT_EQ(read.status().code(), StatusCode::kDataLoss) << read.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST_F(VolumeIoTest, FileSystemProblemsAreNamed) {
  ExpectRejected(dir_ / "missing.nii.gz", StatusCode::kNotFound, "No such file");
  fs::create_directory(dir_ / "folder.nii");
  ExpectRejected(dir_ / "folder.nii", StatusCode::kInvalidArgument, "is a directory");
  fs::create_symlink(dir_ / "b.nii", dir_ / "a.nii");
  fs::create_symlink(dir_ / "a.nii", dir_ / "b.nii");
  ExpectRejected(dir_ / "a.nii", StatusCode::kInvalidArgument, "symbolic link");
  WriteFile(dir_ / "locked.nii", RawNifti(2, 2, 2).Append(NoisyVoxels(8)).bytes());
  fs::permissions(dir_ / "locked.nii", fs::perms::none);
  if (::geteuid() == 0) {
    GTEST_LOG_(INFO) << "running as root: permission bits do not apply, chmod 000 case skipped";
  } else {
    ExpectRejected(dir_ / "locked.nii", StatusCode::kPermissionDenied, "Permission denied");
  }
}

// ---- Concurrency and speed ---------------------------------------------------------------------

TEST_F(VolumeIoTest, ConcurrentReadsAreSafe) {
  SetImagingThreads(2);
  for (int k = 0; k < 4; ++k) {
    Volume<int16_t> v(Dims{20, 20, 20}, static_cast<int16_t>(k + 1));
    ASSERT_TRUE(WriteVolume(v, dir_ / ("c" + std::to_string(k) + ".nii.gz")).ok());
  }
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        const int k = (t + round) % 4;
        auto read = ReadVolume<int16_t>(dir_ / ("c" + std::to_string(k) + ".nii.gz"));
        if (!read.ok() || (*read)[123] != k + 1) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

TEST_F(VolumeIoTest, SetImagingThreadsUsesArgumentThenEnvironment) {
  EXPECT_EQ(SetImagingThreads(3), 3);
  ::setenv("CLISC_IMAGING_THREADS", "2", 1);
  EXPECT_EQ(SetImagingThreads(0), 2);
  ::unsetenv("CLISC_IMAGING_THREADS");
  EXPECT_EQ(SetImagingThreads(0), 1);
}

// BraTS-sized float volume: how long a write takes uncompressed and gzipped.
TEST_F(VolumeIoTest, WriteTimingBratsSizedFloat) {
  Volume<float> volume(Dims{240, 240, 155});
  const std::vector<float> noise = NoisyVoxels(4096);
  for (int64_t i = 0; i < volume.count(); ++i) {
    // Brain-like: a smooth blob with noise, zero background.
    const int64_t x = i % 240, y = (i / 240) % 240, z = i / (240 * 240);
    const double r2 =
        ((x - 120) * (x - 120) + (y - 120) * (y - 120)) / 8000.0 + (z - 77) * (z - 77) / 3000.0;
    volume[i] = r2 < 1.0 ? static_cast<float>(400 * (1 - r2)) + noise[i % noise.size()] : 0.0f;
  }
  for (const char* name : {"t.nii", "t.nii.gz"}) {
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(WriteVolume(volume, dir_ / name).ok());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto bytes = fs::file_size(dir_ / name);
    std::printf("write 240x240x155 float32 %-9s %.3f s, %.1f MB\n", name, seconds, bytes / 1e6);
    RecordProperty(std::string("seconds_") + name, std::to_string(seconds));
    const auto read_start = std::chrono::steady_clock::now();
    ASSERT_TRUE(ReadVolume<float>(dir_ / name).ok());
    std::printf(
        "read  240x240x155 float32 %-9s %.3f s\n", name,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - read_start).count());
  }
}

}  // namespace
}  // namespace clisc
