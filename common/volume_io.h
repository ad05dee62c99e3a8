// Reading and writing NIfTI volumes (.nii, .nii.gz) with spacing, origin and direction kept.
//
// Every read first checks the NIfTI header itself (magic, dimensionality, datatype, sizes, and
// that the file can hold the voxels it claims) so a hostile or broken file is rejected with a
// reason before any large allocation. Reads go through a private, uniquely named link to the
// file, so ITK's stem lookup can never take voxels from a same-stem sibling (x.nii beside
// x.nii.gz). Writes are atomic: temporary file in the target folder, fsync, rename.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"
#include "common/volume.h"

namespace clisc {

enum class PixelType { kUInt8, kInt8, kUInt16, kInt16, kUInt32, kInt32, kFloat32, kFloat64 };
std::string_view PixelTypeName(PixelType type);

struct VolumeHeader {
  Dims size;
  Geometry geometry;
  PixelType pixel_type = PixelType::kFloat32;
  int dimensions = 3;  // 3 for a volume; a 4D file with a trailing size-1 axis counts as 3D.
  bool compressed = false;
};

// Limits on what a header may claim; anything beyond is refused as implausible.
struct VolumeLimits {
  int64_t max_dim = 4096;                    // per axis
  int64_t max_voxels = 1024LL * 1024 * 1024;  // 1 Gi voxels
};

// Reads and validates the header only (cheap; for .nii.gz it inflates just the first bytes).
StatusOr<VolumeHeader> ReadVolumeHeader(const std::filesystem::path& path,
                                        const VolumeLimits& limits = {});

// Reads a 3D volume, converting the stored pixel type to T. Errors: NOT_FOUND, INVALID_ARGUMENT
// (not NIfTI, not 3D, absurd header), DATA_LOSS (truncated or corrupt payload).
template <typename T>
StatusOr<Volume<T>> ReadVolume(const std::filesystem::path& path, const VolumeLimits& limits = {});

// Writes atomically; the extension (.nii or .nii.gz) chooses compression.
template <typename T>
Status WriteVolume(const Volume<T>& volume, const std::filesystem::path& path);

}  // namespace clisc
