// NIfTI header parsing without ITK: the cheap first look at a file that decides, before any
// large allocation, whether it is a volume clisc can read. Only the header bytes are read (for
// gzip files only they are inflated), and the gzip trailer gives a cheap size check.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string_view>

#include "common/status.h"
#include "common/volume.h"
#include "common/volume_io.h"

namespace clisc {

inline constexpr size_t kNifti1HeaderSize = 348;
inline constexpr size_t kNifti2HeaderSize = 540;

// The fields of a NIfTI-1 or NIfTI-2 header that clisc uses, widened to one representation and
// already in host byte order.
struct NiftiHeader {
  int version = 1;               // 1 (348-byte header) or 2 (540-byte header)
  bool single_file = true;       // magic "n+1"/"n+2"; false for "ni1"/"ni2" (.hdr + .img pair)
  bool byte_swapped = false;     // the file was written on a machine of the other endianness
  std::array<int64_t, 8> dim{};  // dim[0] = number of dimensions, dim[1..7] = sizes
  std::array<double, 8> pixdim{};
  int datatype = 0;
  int bitpix = 0;
  double vox_offset = 0;  // a float in NIfTI-1, so keep it wide enough for both versions
  double scl_slope = 0;
  double scl_inter = 0;
  int xyzt_units = 0;  // spatial unit in bits 0-2: 1 m, 2 mm, 3 micron (ITK scales to mm)
  int qform_code = 0;
  int sform_code = 0;
  double quatern_b = 0, quatern_c = 0, quatern_d = 0;
  std::array<double, 3> qoffset{};
  std::array<std::array<double, 4>, 3> srow{};  // rows x, y, z of the sform affine (RAS)
};

// One NIfTI datatype code: its name for messages, bytes per voxel, and the PixelType clisc maps
// it to (absent for types clisc does not read: complex, RGB, 64-bit integers, long double).
struct NiftiDatatype {
  int code;
  std::string_view name;
  int bytes;
  std::optional<PixelType> pixel_type;
};

// Nullptr for a code that the NIfTI standard does not define.
const NiftiDatatype* FindNiftiDatatype(int code);

// Parses header bytes (at least 348 for NIfTI-1, 540 for NIfTI-2). INVALID_ARGUMENT when the
// bytes are not a NIfTI header (size field or magic wrong, Analyze 7.5 without magic). Does not
// judge the values; see ValidateNiftiHeader.
StatusOr<NiftiHeader> ParseNiftiHeader(std::span<const uint8_t> bytes);

// Checks that the header describes a 3D scalar volume within `limits`: dimensionality, sizes,
// datatype, spacing and data offset. INVALID_ARGUMENT with the problem named otherwise.
Status ValidateNiftiHeader(const NiftiHeader& header, const VolumeLimits& limits);

// Voxel count of the (validated) header's first three axes, and the payload size in bytes.
int64_t NiftiVoxelCount(const NiftiHeader& header);
int64_t NiftiPayloadBytes(const NiftiHeader& header);

// The voxel-to-world placement the header describes, in ITK's LPS convention, by the rule ITK
// 5.2's NiftiImageIO follows (checked against it in the tests): spacing is pixdim scaled to mm by
// the spatial unit; the sform is used when it is a rotation times pixdim and its code is
// SCANNER_ANAT or there is no qform, else the qform; with neither code, identity at the origin.
// Scaling (scl_slope/scl_inter) and the origin are not unit-scaled, as in ITK 5.2.
// ReadVolume takes geometry from ITK itself; this is the cheap header-only view.
Geometry NiftiHeaderGeometry(const NiftiHeader& header);

// False when ITK would refuse the placement: an sform that is not a rotation times pixdim and no
// qform to fall back on.
bool NiftiPlacementUsable(const NiftiHeader& header);

// What the first look at a file found.
struct NiftiFileProbe {
  NiftiHeader header;
  bool gzip = false;        // content is gzip (by its magic bytes, not by its name)
  uint64_t file_size = 0;   // bytes on disk
  uint32_t gzip_isize = 0;  // gzip trailer: uncompressed size mod 2^32 (last member only)
};

// Opens `path`, checks it is a regular readable file and parses its header (inflating only the
// header bytes of a gzip file). NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT (directory,
// symlink loop, not NIfTI), DATA_LOSS (corrupt gzip data, file shorter than a header).
StatusOr<NiftiFileProbe> ProbeNiftiFile(const std::filesystem::path& path);

// Inflates a gzip file and counts its bytes, stopping once `limit` are seen; a stream that ends
// early, or is corrupt, yields the count so far or DATA_LOSS respectively. The slow but certain
// size check, used only when the trailer disagrees with the header.
StatusOr<uint64_t> CountGzipBytes(const std::filesystem::path& path, uint64_t limit);

// Streams the voxel payload (after vox_offset, in file byte order) to `consume` in chunks whose
// sizes are multiples of 8 bytes, except perhaps the last. DATA_LOSS when the file ends early.
Status ReadNiftiPayload(const std::filesystem::path& path, const NiftiFileProbe& probe,
                        const std::function<void(std::span<const uint8_t>)>& consume);

}  // namespace clisc
