// Test helpers for the data layer: a temporary directory, and NIfTI-1 files crafted byte by byte
// so that each corruption a test wants is exact (the writer under test is not involved).
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace clisc::testing {

// A fresh directory under the system temp folder, removed (with its contents) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "clisc") {
    std::string pattern = (std::filesystem::temp_directory_path() / (tag + "-XXXXXX")).string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// NIfTI-1 datatype codes used by the tests.
enum NiftiCode : int16_t {
  kNiftiUInt8 = 2,
  kNiftiInt16 = 4,
  kNiftiInt32 = 8,
  kNiftiFloat32 = 16,
  kNiftiFloat64 = 64,
};

// The fields of a single-file NIfTI-1 header that the tests vary.
struct NiftiSpec {
  int16_t ndim = 3;
  int64_t dims[7] = {20, 20, 16, 1, 1, 1, 1};
  float spacing[3] = {1.0f, 1.0f, 1.0f};
  int16_t datatype = kNiftiFloat32;
  int16_t bitpix = 32;
  char magic[4] = {'n', '+', '1', '\0'};
  int16_t qform_code = 1;
  float qoffset[3] = {0, 0, 0};
};

template <typename T>
void PutAt(std::vector<uint8_t>& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// 348-byte header + 4-byte extension flag (no extension); voxels start at byte 352.
inline std::vector<uint8_t> NiftiHeaderBytes(const NiftiSpec& spec) {
  std::vector<uint8_t> h(352, 0);
  PutAt<int32_t>(h, 0, 348);
  PutAt<int16_t>(h, 40, spec.ndim);
  for (int i = 0; i < 7; ++i) PutAt<int16_t>(h, 42 + 2 * i, static_cast<int16_t>(spec.dims[i]));
  PutAt<int16_t>(h, 70, spec.datatype);
  PutAt<int16_t>(h, 72, spec.bitpix);
  PutAt<float>(h, 76, 1.0f);  // qfac
  for (int i = 0; i < 3; ++i) PutAt<float>(h, 80 + 4 * i, spec.spacing[i]);
  PutAt<float>(h, 108, 352.0f);  // vox_offset
  PutAt<float>(h, 112, 0.0f);    // scl_slope 0: no scaling
  h[123] = 2;                    // xyzt_units: mm
  PutAt<int16_t>(h, 252, spec.qform_code);
  for (int i = 0; i < 3; ++i) PutAt<float>(h, 268 + 4 * i, spec.qoffset[i]);
  std::memcpy(h.data() + 344, spec.magic, 4);
  return h;
}

// Header followed by the voxels given as raw bytes.
inline std::vector<uint8_t> NiftiFileBytes(const NiftiSpec& spec,
                                           const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> bytes = NiftiHeaderBytes(spec);
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  return bytes;
}

template <typename T>
std::vector<uint8_t> RawBytes(const std::vector<T>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

inline bool WriteBytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// Writes `bytes` gzip-compressed (a complete, valid gzip stream).
inline bool WriteGzip(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = bytes.empty() || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
                                 static_cast<int>(bytes.size());
  return gzclose(f) == Z_OK && ok;
}

// Writes by extension: gzip for .gz, plain otherwise.
inline bool WriteNifti(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  return path.extension() == ".gz" ? WriteGzip(path, bytes) : WriteBytes(path, bytes);
}

// A float32 volume of spec.dims: a bright block (value `inside`) in the middle, 0 around it.
inline std::vector<float> BlockVoxels(const NiftiSpec& spec, float inside = 100.0f) {
  int64_t nx = spec.dims[0], ny = spec.dims[1], nz = spec.dims[2];
  std::vector<float> v(static_cast<size_t>(nx * ny * nz), 0.0f);
  for (int64_t z = nz / 4; z < nz - nz / 4; ++z) {
    for (int64_t y = ny / 4; y < ny - ny / 4; ++y) {
      for (int64_t x = nx / 4; x < nx - nx / 4; ++x) {
        v[static_cast<size_t>((z * ny + y) * nx + x)] = inside + static_cast<float>(x % 3);
      }
    }
  }
  return v;
}

inline std::vector<uint8_t> BlockFileBytes(const NiftiSpec& spec, float inside = 100.0f) {
  return NiftiFileBytes(spec, RawBytes(BlockVoxels(spec, inside)));
}

}  // namespace clisc::testing
