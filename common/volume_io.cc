// The ITK-free half of volume IO: header checks before any voxel is read.
#include "common/volume_io.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/nifti_header.h"

namespace clisc {

std::string_view PixelTypeName(PixelType type) {
  switch (type) {
    case PixelType::kUInt8:
      return "uint8";
    case PixelType::kInt8:
      return "int8";
    case PixelType::kUInt16:
      return "uint16";
    case PixelType::kInt16:
      return "int16";
    case PixelType::kUInt32:
      return "uint32";
    case PixelType::kInt32:
      return "int32";
    case PixelType::kFloat32:
      return "float32";
    case PixelType::kFloat64:
      return "float64";
  }
  return "unknown";
}

namespace {

// Checks that the file holds every voxel the header claims. Uncompressed: the file size says it.
// Gzip: the trailer's ISIZE (uncompressed size mod 2^32) is a free first check; only when it
// disagrees (a truncated file, or a multi-member gzip whose last member is short) is the stream
// inflated and counted. Payloads of 4 GiB or more are left to the full read.
Status CheckPayloadPresent(const std::filesystem::path& path, const NiftiFileProbe& probe) {
  const uint64_t payload = static_cast<uint64_t>(NiftiPayloadBytes(probe.header));
  const uint64_t needed = static_cast<uint64_t>(probe.header.vox_offset) + payload;
  const std::string claim = " (data offset " + std::to_string(int64_t(probe.header.vox_offset)) +
                            " + " + std::to_string(payload) + " voxel bytes)";
  if (!probe.gzip) {
    if (probe.file_size < needed) {
      return DataLossError("truncated file: " + std::to_string(probe.file_size) +
                           " bytes, the header needs " + std::to_string(needed) + claim);
    }
    return OkStatus();
  }
  if (needed >= (uint64_t{1} << 32) || probe.gzip_isize == static_cast<uint32_t>(needed)) {
    return OkStatus();
  }
  ASSIGN_OR_RETURN(const uint64_t inflated, CountGzipBytes(path, needed));
  if (inflated < needed) {
    return DataLossError("truncated gzip data: inflates to " + std::to_string(inflated) +
                         " bytes, the header needs " + std::to_string(needed) + claim);
  }
  return OkStatus();
}

template <typename F>
bool AllFiniteImpl(const Volume<F>& volume) {
  for (const F v : volume.voxels()) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

}  // namespace

StatusOr<VolumeHeader> ReadVolumeHeader(const std::filesystem::path& path,
                                        const VolumeLimits& limits) {
  const std::string where = path.string();
  auto probe_or = ProbeNiftiFile(path);
  if (!probe_or.ok()) return probe_or.status().WithContext(where);
  const NiftiFileProbe& probe = *probe_or;
  const NiftiHeader& h = probe.header;
  if (Status s = ValidateNiftiHeader(h, limits); !s.ok()) return s.WithContext(where);
  if (Status s = CheckPayloadPresent(path, probe); !s.ok()) return s.WithContext(where);

  VolumeHeader out;
  const int64_t ndim = h.dim[0];
  out.size = {h.dim[1], ndim >= 2 ? h.dim[2] : 1, ndim >= 3 ? h.dim[3] : 1};
  out.geometry = NiftiHeaderGeometry(h);
  out.pixel_type = *FindNiftiDatatype(h.datatype)->pixel_type;
  out.dimensions = static_cast<int>(std::min<int64_t>(ndim, 3));
  out.compressed = probe.gzip;
  return out;
}

StatusOr<int64_t> CountNonFiniteVoxels(const std::filesystem::path& path,
                                       const VolumeLimits& limits) {
  RETURN_IF_ERROR(ReadVolumeHeader(path, limits).status());
  auto probe = ProbeNiftiFile(path);
  if (!probe.ok()) return probe.status().WithContext(path.string());
  const NiftiHeader& h = probe->header;
  if (h.datatype != 16 && h.datatype != 64) return int64_t{0};  // integers are always finite
  int64_t count = 0;
  const bool swap = h.byte_swapped;
  auto scan = [&](std::span<const uint8_t> bytes) {
    if (h.datatype == 16) {
      for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
        uint32_t u;
        std::memcpy(&u, bytes.data() + i, 4);
        if (swap) u = __builtin_bswap32(u);
        count += !std::isfinite(std::bit_cast<float>(u));
      }
    } else {
      for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
        uint64_t u;
        std::memcpy(&u, bytes.data() + i, 8);
        if (swap) u = __builtin_bswap64(u);
        count += !std::isfinite(std::bit_cast<double>(u));
      }
    }
  };
  if (Status s = ReadNiftiPayload(path, *probe, scan); !s.ok()) {
    return s.WithContext(path.string());
  }
  return count;
}

bool AllFinite(const Volume<float>& volume) { return AllFiniteImpl(volume); }
bool AllFinite(const Volume<double>& volume) { return AllFiniteImpl(volume); }

}  // namespace clisc
