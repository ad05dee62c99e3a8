#include "common/nifti_header.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace clisc {
namespace {

// ---- Byte access -------------------------------------------------------------------------------

// Reads fixed-size fields at byte offsets, swapping when the file's endianness is not ours.
class FieldReader {
 public:
  FieldReader(std::span<const uint8_t> bytes, bool swap) : bytes_(bytes), swap_(swap) {}

  template <typename T>
  T Get(size_t offset) const {
    if constexpr (sizeof(T) == 1) {
      return static_cast<T>(bytes_[offset]);
    } else {
      return GetWide<T>(offset);
    }
  }

  static uint16_t ByteSwap(uint16_t v) { return __builtin_bswap16(v); }
  static uint32_t ByteSwap(uint32_t v) { return __builtin_bswap32(v); }
  static uint64_t ByteSwap(uint64_t v) { return __builtin_bswap64(v); }

 private:
  template <typename T>
  T GetWide(size_t offset) const {
    using U = std::conditional_t<sizeof(T) == 2, uint16_t,
                                 std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>;
    U raw;
    std::memcpy(&raw, bytes_.data() + offset, sizeof(U));
    if (swap_) raw = ByteSwap(raw);
    return std::bit_cast<T>(raw);
  }

  std::span<const uint8_t> bytes_;
  bool swap_;
};

std::string Printable(std::span<const uint8_t> bytes) {
  std::string out;
  for (uint8_t b : bytes) {
    if (b >= 0x20 && b < 0x7f && b != '\\') {
      out += static_cast<char>(b);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", b);
      out += hex;
    }
  }
  return out;
}

// ---- Per-version layouts (byte offsets from the NIfTI-1 and NIfTI-2 standards) ------------------

void ParseVersion1(const FieldReader& r, NiftiHeader& h) {
  for (int i = 0; i < 8; ++i) h.dim[i] = r.Get<int16_t>(40 + 2 * i);
  h.datatype = r.Get<int16_t>(70);
  h.bitpix = r.Get<int16_t>(72);
  for (int i = 0; i < 8; ++i) h.pixdim[i] = r.Get<float>(76 + 4 * i);
  h.vox_offset = r.Get<float>(108);
  h.scl_slope = r.Get<float>(112);
  h.scl_inter = r.Get<float>(116);
  h.xyzt_units = r.Get<uint8_t>(123);
  h.qform_code = r.Get<int16_t>(252);
  h.sform_code = r.Get<int16_t>(254);
  h.quatern_b = r.Get<float>(256);
  h.quatern_c = r.Get<float>(260);
  h.quatern_d = r.Get<float>(264);
  for (int i = 0; i < 3; ++i) h.qoffset[i] = r.Get<float>(268 + 4 * i);
  for (int row = 0; row < 3; ++row) {
    for (int col = 0; col < 4; ++col) h.srow[row][col] = r.Get<float>(280 + 16 * row + 4 * col);
  }
}

void ParseVersion2(const FieldReader& r, NiftiHeader& h) {
  h.datatype = r.Get<int16_t>(12);
  h.bitpix = r.Get<int16_t>(14);
  for (int i = 0; i < 8; ++i) h.dim[i] = r.Get<int64_t>(16 + 8 * i);
  for (int i = 0; i < 8; ++i) h.pixdim[i] = r.Get<double>(104 + 8 * i);
  h.vox_offset = static_cast<double>(r.Get<int64_t>(168));
  h.scl_slope = r.Get<double>(176);
  h.scl_inter = r.Get<double>(184);
  h.qform_code = r.Get<int32_t>(344);
  h.sform_code = r.Get<int32_t>(348);
  h.quatern_b = r.Get<double>(352);
  h.quatern_c = r.Get<double>(360);
  h.quatern_d = r.Get<double>(368);
  for (int i = 0; i < 3; ++i) h.qoffset[i] = r.Get<double>(376 + 8 * i);
  for (int row = 0; row < 3; ++row) {
    for (int col = 0; col < 4; ++col) h.srow[row][col] = r.Get<double>(400 + 32 * row + 8 * col);
  }
  h.xyzt_units = r.Get<int32_t>(500);
}

// The datatype codes of the NIfTI-1 standard (nifti1.h), which NIfTI-2 shares.
constexpr NiftiDatatype kDatatypes[] = {
    {1, "BINARY", 0, std::nullopt},          {2, "UINT8", 1, PixelType::kUInt8},
    {4, "INT16", 2, PixelType::kInt16},      {8, "INT32", 4, PixelType::kInt32},
    {16, "FLOAT32", 4, PixelType::kFloat32}, {32, "COMPLEX64", 8, std::nullopt},
    {64, "FLOAT64", 8, PixelType::kFloat64}, {128, "RGB24", 3, std::nullopt},
    {256, "INT8", 1, PixelType::kInt8},      {512, "UINT16", 2, PixelType::kUInt16},
    {768, "UINT32", 4, PixelType::kUInt32},  {1024, "INT64", 8, std::nullopt},
    {1280, "UINT64", 8, std::nullopt},       {1536, "FLOAT128", 16, std::nullopt},
    {1792, "COMPLEX128", 16, std::nullopt},  {2048, "COMPLEX256", 32, std::nullopt},
    {2304, "RGBA32", 4, std::nullopt},
};

// Overflow-safe product for sizes that were each checked against a limit.
bool MultiplyWithin(int64_t a, int64_t b, int64_t limit, int64_t* out) {
  if (a != 0 && b > limit / a) return false;
  *out = a * b;
  return *out <= limit;
}

}  // namespace

const NiftiDatatype* FindNiftiDatatype(int code) {
  for (const NiftiDatatype& t : kDatatypes) {
    if (t.code == code) return &t;
  }
  return nullptr;
}

StatusOr<NiftiHeader> ParseNiftiHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() < 4) {
    return InvalidArgumentError("not a NIfTI file: only " + std::to_string(bytes.size()) +
                                " bytes");
  }
  int32_t size_field;
  std::memcpy(&size_field, bytes.data(), 4);
  const int32_t swapped_size = static_cast<int32_t>(__builtin_bswap32(size_field));
  NiftiHeader h;
  if (size_field == 348 || swapped_size == 348) {
    h.version = 1;
    h.byte_swapped = size_field != 348;
  } else if (size_field == 540 || swapped_size == 540) {
    h.version = 2;
    h.byte_swapped = size_field != 540;
  } else {
    return InvalidArgumentError("not a NIfTI file: header size field is " +
                                std::to_string(size_field) + ", expected 348 or 540");
  }
  const size_t needed = h.version == 1 ? kNifti1HeaderSize : kNifti2HeaderSize;
  if (bytes.size() < needed) {
    return DataLossError("NIfTI-" + std::to_string(h.version) + " header truncated: " +
                         std::to_string(bytes.size()) + " of " + std::to_string(needed) + " bytes");
  }
  const FieldReader reader(bytes, h.byte_swapped);
  if (h.version == 1) {
    const auto magic = bytes.subspan(344, 4);
    if (std::memcmp(magic.data(), "n+1\0", 4) == 0) {
      h.single_file = true;
    } else if (std::memcmp(magic.data(), "ni1\0", 4) == 0) {
      h.single_file = false;
    } else {
      return InvalidArgumentError("bad NIfTI-1 magic \"" + Printable(magic) +
                                  "\" (expected \"n+1\"; Analyze 7.5 or a corrupt header)");
    }
    ParseVersion1(reader, h);
  } else {
    const auto magic = bytes.subspan(4, 8);
    if (std::memcmp(magic.data(), "n+2\0\r\n\032\n", 8) == 0) {
      h.single_file = true;
    } else if (std::memcmp(magic.data(), "ni2\0\r\n\032\n", 8) == 0) {
      h.single_file = false;
    } else {
      return InvalidArgumentError("bad NIfTI-2 magic \"" + Printable(magic) + "\"");
    }
    ParseVersion2(reader, h);
  }
  return h;
}

Status ValidateNiftiHeader(const NiftiHeader& h, const VolumeLimits& limits) {
  if (h.version != 1) {
    return InvalidArgumentError(
        "NIfTI-2 file: clisc reads NIfTI-1 only (the ITK 5.2 reader has no NIfTI-2 support); "
        "convert it, e.g. with nibabel, to NIfTI-1");
  }
  if (!h.single_file) {
    return InvalidArgumentError(
        "two-file NIfTI header (magic \"ni1\", voxels in a separate .img): clisc reads "
        "single-file .nii/.nii.gz only");
  }
  const int64_t ndim = h.dim[0];
  if (ndim < 1 || ndim > 7) {
    return InvalidArgumentError("bad dimension count dim[0]=" + std::to_string(ndim) +
                                " (must be 1..7)");
  }
  for (int i = 1; i <= ndim; ++i) {
    if (h.dim[i] <= 0) {
      return InvalidArgumentError("dimension " + std::to_string(i) + " has size " +
                                  std::to_string(h.dim[i]) + " (zero-size or negative)");
    }
  }
  if (ndim >= 4 && h.dim[4] > 1) {
    return InvalidArgumentError(std::to_string(ndim) + "D image with " + std::to_string(h.dim[4]) +
                                " volumes; clisc needs 3D");
  }
  for (int i = 5; i <= ndim; ++i) {
    if (h.dim[i] > 1) {
      return InvalidArgumentError("image has size " + std::to_string(h.dim[i]) +
                                  " along dimension " + std::to_string(i) +
                                  " (vector or multi-component data); clisc needs 3D scalar");
    }
  }
  const NiftiDatatype* type = FindNiftiDatatype(h.datatype);
  if (type == nullptr) {
    return InvalidArgumentError("unknown NIfTI datatype code " + std::to_string(h.datatype));
  }
  if (!type->pixel_type) {
    return InvalidArgumentError("unsupported NIfTI datatype " + std::string(type->name) +
                                " (code " + std::to_string(h.datatype) +
                                "); clisc reads scalar integer and float volumes");
  }
  int64_t total = 1;
  for (int i = 1; i <= 3; ++i) {
    const int64_t n = i <= ndim ? h.dim[i] : 1;
    if (n > limits.max_dim) {
      return InvalidArgumentError("dimension " + std::to_string(i) + " has size " +
                                  std::to_string(n) + ", over the limit of " +
                                  std::to_string(limits.max_dim));
    }
    if (!MultiplyWithin(total, n, limits.max_voxels, &total)) {
      return InvalidArgumentError("image claims " + std::to_string(h.dim[1]) + "x" +
                                  std::to_string(ndim >= 2 ? h.dim[2] : 1) + "x" +
                                  std::to_string(ndim >= 3 ? h.dim[3] : 1) +
                                  " voxels, over the limit of " +
                                  std::to_string(limits.max_voxels));
    }
  }
  for (int i = 1; i <= std::min<int64_t>(ndim, 3); ++i) {
    if (!std::isfinite(h.pixdim[i]) || h.pixdim[i] <= 0) {
      return InvalidArgumentError("bad voxel spacing pixdim[" + std::to_string(i) +
                                  "]=" + std::to_string(h.pixdim[i]) + " (must be finite and > 0)");
    }
  }
  const double min_offset = static_cast<double>(kNifti1HeaderSize);
  if (!std::isfinite(h.vox_offset) || h.vox_offset < min_offset ||
      h.vox_offset > static_cast<double>(std::numeric_limits<int32_t>::max())) {
    return InvalidArgumentError("bad data offset vox_offset=" + std::to_string(h.vox_offset));
  }
  if (!NiftiPlacementUsable(h)) {
    return InvalidArgumentError(
        "the sform is not a rotation times the voxel spacing and there is no qform, so the "
        "image cannot be placed in space (ITK refuses it)");
  }
  return OkStatus();
}

int64_t NiftiVoxelCount(const NiftiHeader& h) {
  int64_t n = 1;
  for (int i = 1; i <= 3 && i <= h.dim[0]; ++i) n *= h.dim[i];
  return n;
}

int64_t NiftiPayloadBytes(const NiftiHeader& h) {
  const NiftiDatatype* type = FindNiftiDatatype(h.datatype);
  return NiftiVoxelCount(h) * (type ? type->bytes : 0);
}

// ---- Files
// ------------------------------------------------------------------------------------

namespace {

Status ErrnoStatus(int err, const std::string& what) {
  const std::string detail = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
      return NotFoundError(detail);
    case EACCES:
    case EPERM:
      return PermissionDeniedError(detail);
    case ELOOP:
      return InvalidArgumentError(detail + " (symbolic link loop?)");
    case EISDIR:
      return InvalidArgumentError(detail);
    case EIO:
      return DataLossError(detail);
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EINTR:
    case EAGAIN:
      return UnavailableError(detail);
    default:
      return InternalError(detail);
  }
}

// Closes a descriptor on every return path.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens a regular file for reading. O_NONBLOCK keeps a FIFO from hanging the open; it has no
// effect on regular files.
StatusOr<int> OpenRegularFile(const std::filesystem::path& path, uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, "cannot open");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError(S_ISDIR(st.st_mode) ? "is a directory, not a volume file"
                                                    : "not a regular file");
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

// Reads up to `want` bytes at `offset`, retrying short reads.
StatusOr<size_t> ReadAt(int fd, uint8_t* buffer, size_t want, off_t offset) {
  size_t got = 0;
  while (got < want) {
    const ssize_t n = ::pread(fd, buffer + got, want - got, offset + static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read failed");
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

// A gzFile closed on every return path.
class GzipReader {
 public:
  explicit GzipReader(gzFile file) : file_(file) {}
  ~GzipReader() {
    if (file_ != nullptr) gzclose_r(file_);
  }
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;
  gzFile get() const { return file_; }

  // Reads up to `want` bytes; fewer at the end of the stream, DATA_LOSS on corrupt data.
  StatusOr<size_t> Read(uint8_t* buffer, size_t want) {
    size_t got = 0;
    while (got < want) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(want - got, 1u << 30));
      const int n = gzread(file_, buffer + got, chunk);
      if (n < 0) {
        int code = 0;
        const char* message = gzerror(file_, &code);
        return DataLossError(std::string("corrupt gzip data: ") + (message ? message : "?"));
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    return got;
  }

 private:
  gzFile file_;
};

StatusOr<GzipReader*> OpenGzip(int fd, std::unique_ptr<GzipReader>& holder) {
  const int own = ::dup(fd);
  if (own < 0) return ErrnoStatus(errno, "dup failed");
  if (::lseek(own, 0, SEEK_SET) != 0) {
    ::close(own);
    return ErrnoStatus(errno, "seek failed");
  }
  gzFile file = gzdopen(own, "rb");
  if (file == nullptr) {
    ::close(own);
    return UnavailableError("gzdopen failed");
  }
  holder = std::make_unique<GzipReader>(file);
  return holder.get();
}

}  // namespace

StatusOr<NiftiFileProbe> ProbeNiftiFile(const std::filesystem::path& path) {
  NiftiFileProbe probe;
  ASSIGN_OR_RETURN(const int raw_fd, OpenRegularFile(path, &probe.file_size));
  FileDescriptor fd(raw_fd);
  if (probe.file_size == 0) return InvalidArgumentError("empty file (0 bytes)");

  std::vector<uint8_t> bytes(kNifti2HeaderSize);
  ASSIGN_OR_RETURN(size_t got, ReadAt(fd.get(), bytes.data(), bytes.size(), 0));
  probe.gzip = got >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
  if (probe.gzip) {
    // Inflate only the header: a small input buffer keeps zlib from reading far past it.
    std::unique_ptr<GzipReader> holder;
    ASSIGN_OR_RETURN(GzipReader * gz, OpenGzip(fd.get(), holder));
    gzbuffer(gz->get(), 4096);
    ASSIGN_OR_RETURN(got, gz->Read(bytes.data(), bytes.size()));
    if (probe.file_size >= 18) {  // smallest gzip member: 10-byte header + 8-byte trailer
      uint8_t trailer[4];
      ASSIGN_OR_RETURN(size_t n,
                       ReadAt(fd.get(), trailer, 4, static_cast<off_t>(probe.file_size - 4)));
      if (n == 4) {
        probe.gzip_isize = uint32_t{trailer[0]} | uint32_t{trailer[1]} << 8 |
                           uint32_t{trailer[2]} << 16 | uint32_t{trailer[3]} << 24;
      }
    }
  }
  bytes.resize(got);
  if (got < kNifti1HeaderSize) {
    // A header-size field of 348 means a NIfTI header that was cut short, not some other file.
    int32_t size_field = 0;
    if (got >= 4) std::memcpy(&size_field, bytes.data(), 4);
    if (size_field == 348 || size_field == static_cast<int32_t>(__builtin_bswap32(348))) {
      return DataLossError("truncated NIfTI header: " + std::to_string(got) + " of 348 bytes");
    }
    return InvalidArgumentError("not a NIfTI file: " + std::to_string(got) +
                                " bytes, shorter than a NIfTI header");
  }
  ASSIGN_OR_RETURN(probe.header, ParseNiftiHeader(bytes));
  return probe;
}

StatusOr<uint64_t> CountGzipBytes(const std::filesystem::path& path, uint64_t limit) {
  uint64_t size = 0;
  ASSIGN_OR_RETURN(const int raw_fd, OpenRegularFile(path, &size));
  FileDescriptor fd(raw_fd);
  std::unique_ptr<GzipReader> holder;
  ASSIGN_OR_RETURN(GzipReader * gz, OpenGzip(fd.get(), holder));
  std::vector<uint8_t> buffer(1 << 20);
  uint64_t total = 0;
  while (total < limit) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), limit - total));
    ASSIGN_OR_RETURN(size_t got, gz->Read(buffer.data(), want));
    if (got == 0) break;
    total += got;
  }
  return total;
}

Status ReadNiftiPayload(const std::filesystem::path& path, const NiftiFileProbe& probe,
                        const std::function<void(std::span<const uint8_t>)>& consume) {
  uint64_t size = 0;
  ASSIGN_OR_RETURN(const int raw_fd, OpenRegularFile(path, &size));
  FileDescriptor fd(raw_fd);
  const uint64_t offset = static_cast<uint64_t>(probe.header.vox_offset);
  uint64_t left = static_cast<uint64_t>(NiftiPayloadBytes(probe.header));
  std::vector<uint8_t> buffer(1 << 20);
  std::unique_ptr<GzipReader> holder;
  GzipReader* gz = nullptr;
  if (probe.gzip) {
    ASSIGN_OR_RETURN(gz, OpenGzip(fd.get(), holder));
    for (uint64_t skipped = 0; skipped < offset;) {  // gzseek would inflate the same bytes
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), offset - skipped));
      ASSIGN_OR_RETURN(const size_t got, gz->Read(buffer.data(), want));
      if (got == 0) return DataLossError("file ends before the voxel data");
      skipped += got;
    }
  }
  uint64_t position = offset;
  while (left > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), left));
    size_t got = 0;
    if (gz != nullptr) {
      ASSIGN_OR_RETURN(got, gz->Read(buffer.data(), want));
    } else {
      ASSIGN_OR_RETURN(got, ReadAt(fd.get(), buffer.data(), want, static_cast<off_t>(position)));
    }
    if (got < want) {
      return DataLossError("voxel data truncated: " + std::to_string(left - got) +
                           " bytes missing");
    }
    consume(std::span<const uint8_t>(buffer.data(), got));
    left -= got;
    position += got;
  }
  return OkStatus();
}

}  // namespace clisc
