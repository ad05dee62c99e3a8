// Reading and writing NIfTI volumes (.nii, .nii.gz) with spacing, origin and direction kept.
//
// Every read first checks the NIfTI header itself (magic, dimensionality, datatype, sizes, and
// that the file can hold the voxels it claims) so a hostile or broken file is rejected with a
// reason before any large allocation. Reads go through a private, uniquely named link to the
// file, so ITK's stem lookup can never take voxels from a same-stem sibling (x.nii beside
// x.nii.gz). Writes are atomic: temporary file in the target folder, fsync, rename.
// Only NIfTI-1 single files are read; NIfTI-2 is recognised and refused (ITK 5.2 cannot read it).
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
// Also checks that the file holds the voxels the header claims (file size; for gzip the trailer's
// size field, inflating the whole stream only when that disagrees). The content decides gzip or
// not, whatever the name says. `geometry` here is computed from the header by ITK 5.2's rule
// (see NiftiHeaderGeometry in common/nifti_header.h; the tests check it against ITK), while
// ReadVolume takes it from ITK itself. Errors as ReadVolume's.
StatusOr<VolumeHeader> ReadVolumeHeader(const std::filesystem::path& path,
                                        const VolumeLimits& limits = {});

// Reads a 3D volume, converting the stored pixel type to T. Errors: NOT_FOUND, INVALID_ARGUMENT
// (not NIfTI, not 3D, absurd header), DATA_LOSS (truncated or corrupt payload),
// PERMISSION_DENIED (unreadable).
//
// Values: scl_slope/scl_inter are applied as ITK 5.2 applies them: value * slope + inter,
// computed in float (double if stored as double); a slope that is 0 or not finite counts as 1
// and a non-finite intercept as 0 (so slope 0 with intercept 9 adds 9, unlike the NIfTI
// standard's "slope 0 means no scaling"). Conversion to an integer T rounds to nearest, halves
// away from zero (a label stored as 2.9999 reads as 3, not 2), and saturates at T's range;
// conversion to a float T is a plain cast. No voxel is rejected for its value, but ITK's NIfTI
// library silently turns NaN and infinite float voxels into 0 as it reads (CountNonFiniteVoxels
// finds them in the file). Safe to call from several threads at once.
// T is one of uint8_t, int16_t, int32_t, float, double.
template <typename T>
StatusOr<Volume<T>> ReadVolume(const std::filesystem::path& path, const VolumeLimits& limits = {});

// Writes atomically; the extension (.nii or .nii.gz) chooses compression (gzip at a fast level).
// The file appears complete or not at all: a temporary `.<name>.tmp-<pid>-<random>.nii[.gz]` in
// the target folder, fsync, rename over the target, fsync of the folder. Stored as T
// (uint8_t, int16_t, int32_t, float, double) with qform and sform both set from the geometry.
template <typename T>
Status WriteVolume(const Volume<T>& volume, const std::filesystem::path& path);

// Sets the number of threads ITK's filters and IO use, process-wide (ITK's global default).
// `threads` <= 0 means: the value of CLISC_IMAGING_THREADS if set, else 1 (workers share their
// cores with LibTorch, so ITK must not take them all by default). Returns the count set.
int SetImagingThreads(int threads);

// True when no voxel is NaN or infinite.
bool AllFinite(const Volume<float>& volume);
bool AllFinite(const Volume<double>& volume);

// Counts NaN and infinite voxels in the file as stored, without ITK and without holding the
// volume in memory (it streams the payload). ReadVolume cannot report them: ITK 5.2's NIfTI
// library replaces every non-finite float voxel with 0 as it reads, silently, so the data layer
// must ask the file. 0 for integer datatypes.
StatusOr<int64_t> CountNonFiniteVoxels(const std::filesystem::path& path,
                                       const VolumeLimits& limits = {});

}  // namespace clisc
