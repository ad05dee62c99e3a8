// The ITK half of volume IO. Every ITK exception is caught here and becomes a Status.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/volume_io.h"
#include "itkImage.h"
#include "itkImageFileWriter.h"
#include "itkMultiThreaderBase.h"
#include "itkNiftiImageIO.h"

namespace clisc {
namespace fs = std::filesystem;
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

Status StatusFromErrno(int err, const std::string& what) {
  const std::string message = what + ": " + ErrnoText(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return ResourceExhaustedError(message);
    case EIO:
      return DataLossError(message);
    default:
      return InternalError(message);
  }
}

// Random hex for unique temporary names; the pid alone repeats across hosts on a shared disk.
std::string RandomSuffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char text[32];
  std::snprintf(text, sizeof(text), "%d-%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(rng() ^ counter.fetch_add(1)));
  return text;
}

// "x.nii.gz" -> ("x", ".nii.gz"); extension matched case-insensitively, empty when neither.
std::pair<std::string, std::string> SplitNiftiName(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const std::string ext : {".nii.gz", ".nii"}) {
    if (lower.size() > ext.size() && lower.ends_with(ext)) {
      return {name.substr(0, name.size() - ext.size()), ext};
    }
  }
  return {name, ""};
}

// ---- Private scratch directories ---------------------------------------------------------------

// A fresh directory under TMPDIR (mkdtemp), removed with its contents on destruction.
class PrivateDir {
 public:
  static StatusOr<std::unique_ptr<PrivateDir>> Create() {
    std::error_code ec;
    fs::path root = fs::temp_directory_path(ec);
    if (ec) root = "/tmp";
    std::string pattern = (root / "clisc-vio-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return StatusFromErrno(errno, "cannot create a private directory in " + root.string());
    }
    return std::unique_ptr<PrivateDir>(new PrivateDir(pattern));
  }
  ~PrivateDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);  // removes links, never what they point to
  }
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;
  const fs::path& path() const { return dir_; }

 private:
  explicit PrivateDir(fs::path dir) : dir_(std::move(dir)) {}
  fs::path dir_;
};

// Puts `source` alone in `dir` as "volume.nii" or "volume.nii.gz" (by content, which is what
// ITK must be told). ITK's NIfTI reader, given x.nii.gz, looks for x.nii first and reads its
// voxels if it exists; alone in a fresh directory, the file has no sibling to be confused with.
StatusOr<fs::path> LinkPrivately(const fs::path& source, const fs::path& dir, bool gzip) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(source, ec);
  if (ec) return InternalError("cannot resolve path: " + ec.message());
  const fs::path link = dir / (gzip ? "volume.nii.gz" : "volume.nii");
  if (::symlink(absolute.c_str(), link.c_str()) == 0) return link;
  // Filesystems without symlinks: a hard link, else a copy (costly, but correct).
  if (::link(absolute.c_str(), link.c_str()) == 0) return link;
  fs::copy_file(absolute, link, ec);
  if (ec) return InternalError("cannot link or copy into a private directory: " + ec.message());
  return link;
}

// ---- Pixel conversion ---------------------------------------------------------------------------

// Stored value -> T. Integer targets round to nearest and saturate (static_cast of an
// out-of-range float is undefined behaviour, and truncation would turn 2.9999 into label 2).
template <typename T, typename S>
T ConvertVoxel(S value) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(value);
  } else if constexpr (std::is_floating_point_v<S>) {
    if (std::isnan(value)) return T{0};
    const double rounded = std::round(static_cast<double>(value));
    if (rounded <= static_cast<double>(std::numeric_limits<T>::min())) {
      return std::numeric_limits<T>::min();
    }
    if (rounded >= static_cast<double>(std::numeric_limits<T>::max())) {
      return std::numeric_limits<T>::max();
    }
    return static_cast<T>(rounded);
  } else {
    if (std::cmp_less(value, std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    if (std::cmp_greater(value, std::numeric_limits<T>::max())) {
      return std::numeric_limits<T>::max();
    }
    return static_cast<T>(value);
  }
}

// Reads the whole image as stored type S into `out`: straight into its buffer when S == T.
template <typename S, typename T>
void ReadAs(itk::ImageIOBase& io, Volume<T>& out) {
  if constexpr (std::is_same_v<S, T>) {
    io.Read(out.data());
  } else {
    std::vector<S> stored(out.voxels().size());
    io.Read(stored.data());
    for (size_t i = 0; i < stored.size(); ++i) out[i] = ConvertVoxel<T>(stored[i]);
  }
}

template <typename T>
Status ReadStored(itk::ImageIOBase& io, Volume<T>& out) {
  using C = itk::IOComponentEnum;
  switch (io.GetComponentType()) {
    case C::UCHAR:
      ReadAs<unsigned char>(io, out);
      break;
    case C::CHAR:
      ReadAs<signed char>(io, out);
      break;
    case C::USHORT:
      ReadAs<unsigned short>(io, out);
      break;
    case C::SHORT:
      ReadAs<short>(io, out);
      break;
    case C::UINT:
      ReadAs<unsigned int>(io, out);
      break;
    case C::INT:
      ReadAs<int>(io, out);
      break;
    case C::ULONG:
      ReadAs<unsigned long>(io, out);
      break;
    case C::LONG:
      ReadAs<long>(io, out);
      break;
    case C::ULONGLONG:
      ReadAs<unsigned long long>(io, out);
      break;
    case C::LONGLONG:
      ReadAs<long long>(io, out);
      break;
    case C::FLOAT:
      ReadAs<float>(io, out);
      break;
    case C::DOUBLE:
      ReadAs<double>(io, out);
      break;
    default:
      return InvalidArgumentError(
          "unsupported ITK component type " +
          std::string(itk::ImageIOBase::GetComponentTypeAsString(io.GetComponentType())));
  }
  return OkStatus();
}

// NiftiImageIO's constructor writes niftilib's global debug level and New() walks ITK's global
// factory list; both are done one thread at a time. Reads themselves run in parallel.
itk::NiftiImageIO::Pointer NewNiftiIO() {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  return itk::NiftiImageIO::New();
}

Geometry GeometryFromIO(const itk::ImageIOBase& io) {
  Geometry g;
  const unsigned nd = std::min(io.GetNumberOfDimensions(), 3u);
  for (unsigned j = 0; j < nd; ++j) {
    g.spacing[j] = io.GetSpacing(j);
    g.origin[j] = io.GetOrigin(j);
    const std::vector<double> axis = io.GetDirection(j);
    for (unsigned i = 0; i < nd && i < axis.size(); ++i) g.direction[i * 3 + j] = axis[i];
  }
  return g;
}

// ITK reports failures as exceptions; which step threw decides the code. The header was already
// checked, so a refused header is "not a volume" and a failed voxel read is damaged data.
enum class ReadStep { kHeader, kVoxels };

Status StatusFromReadFailure(ReadStep step, const std::string& what) {
  if (step == ReadStep::kHeader) return InvalidArgumentError("ITK cannot read the header: " + what);
  return DataLossError("cannot read voxels: " + what);
}

template <typename T>
StatusOr<Volume<T>> ReadWithItk(const fs::path& file, const VolumeHeader& header, ReadStep& step) {
  itk::NiftiImageIO::Pointer io = NewNiftiIO();
  io->SetFileName(file.string());
  step = ReadStep::kHeader;
  io->ReadImageInformation();
  if (io->GetNumberOfComponents() != 1) {
    return InvalidArgumentError("ITK reads " + std::to_string(io->GetNumberOfComponents()) +
                                " components per voxel; clisc needs scalar volumes");
  }
  const unsigned nd = io->GetNumberOfDimensions();
  itk::ImageIORegion region(nd);
  std::array<int64_t, 3> size{1, 1, 1};
  for (unsigned i = 0; i < nd; ++i) {
    region.SetIndex(i, 0);
    region.SetSize(i, io->GetDimensions(i));
    if (i < 3) {
      size[i] = static_cast<int64_t>(io->GetDimensions(i));
    } else if (io->GetDimensions(i) != 1) {
      return InvalidArgumentError("ITK reads a " + std::to_string(nd) + "D image");
    }
  }
  const Dims dims{size[0], size[1], size[2]};
  if (dims != header.size) {
    return InternalError("ITK reads size " + std::to_string(dims.x) + "x" + std::to_string(dims.y) +
                         "x" + std::to_string(dims.z) + ", the header says " +
                         std::to_string(header.size.x) + "x" + std::to_string(header.size.y) + "x" +
                         std::to_string(header.size.z));
  }
  io->SetIORegion(region);
  Volume<T> out(dims, T{}, GeometryFromIO(*io));
  step = ReadStep::kVoxels;
  RETURN_IF_ERROR(ReadStored(*io, out));
  return out;
}

}  // namespace

template <typename T>
StatusOr<Volume<T>> ReadVolume(const fs::path& path, const VolumeLimits& limits) {
  ASSIGN_OR_RETURN(const VolumeHeader header, ReadVolumeHeader(path, limits));
  const std::string where = path.string();
  auto dir = PrivateDir::Create();
  if (!dir.ok()) return dir.status().WithContext(where);
  auto link = LinkPrivately(path, (*dir)->path(), header.compressed);
  if (!link.ok()) return link.status().WithContext(where);
  ReadStep step = ReadStep::kHeader;
  try {
    auto volume = ReadWithItk<T>(*link, header, step);
    if (!volume.ok()) return volume.status().WithContext(where);
    return volume;
  } catch (const itk::ExceptionObject& e) {
    return StatusFromReadFailure(step, e.GetDescription()).WithContext(where);
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError(where + ": out of memory reading the volume");
  } catch (const std::exception& e) {
    return StatusFromReadFailure(step, e.what()).WithContext(where);
  }
}

// ---- Writing ------------------------------------------------------------------------------------

namespace {

Status CheckWritable(const Dims& size, const Geometry& g) {
  if (size.x <= 0 || size.y <= 0 || size.z <= 0) {
    return InvalidArgumentError("cannot write an empty volume");
  }
  for (int i = 0; i < 3; ++i) {
    if (!std::isfinite(g.spacing[i]) || g.spacing[i] <= 0) {
      return InvalidArgumentError("spacing must be finite and > 0");
    }
    if (!std::isfinite(g.origin[i])) return InvalidArgumentError("origin must be finite");
  }
  // NIfTI stores a rotation (qform) and ITK refuses to write anything else.
  for (int a = 0; a < 3; ++a) {
    for (int b = a; b < 3; ++b) {
      double dot = 0;
      for (int i = 0; i < 3; ++i) dot += g.direction[i * 3 + a] * g.direction[i * 3 + b];
      if (!std::isfinite(dot) || std::abs(dot - (a == b ? 1.0 : 0.0)) > 1e-4) {
        return InvalidArgumentError("direction is not orthonormal");
      }
    }
  }
  return OkStatus();
}

Status SyncPath(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return StatusFromErrno(errno, "cannot open " + path.string() + " to sync");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS))) {
    return StatusFromErrno(err, "fsync of " + path.string() + " failed");
  }
  return OkStatus();
}

template <typename T>
void WriteWithItk(const Volume<T>& volume, const fs::path& file) {
  using Image = itk::Image<T, 3>;
  auto image = Image::New();
  typename Image::SizeType size;
  size[0] = volume.size().x, size[1] = volume.size().y, size[2] = volume.size().z;
  image->SetRegions(typename Image::RegionType(size));
  const Geometry& g = volume.geometry();
  typename Image::SpacingType spacing;
  typename Image::PointType origin;
  typename Image::DirectionType direction;
  for (int i = 0; i < 3; ++i) {
    spacing[i] = g.spacing[i];
    origin[i] = g.origin[i];
    for (int j = 0; j < 3; ++j) direction(i, j) = g.direction[i * 3 + j];
  }
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  // The writer only reads the buffer, so the volume's memory is lent, not copied.
  image->GetPixelContainer()->SetImportPointer(const_cast<T*>(volume.data()),
                                               volume.voxels().size(), false);
  auto writer = itk::ImageFileWriter<Image>::New();
  writer->SetImageIO(NewNiftiIO());
  writer->SetFileName(file.string());
  writer->SetInput(image);
  writer->SetUseCompression(false);
  writer->Update();
}

// gzips `raw` into a new file `target`. ITK 5.2's NIfTI writer ignores SetCompressionLevel and
// deflates at zlib's default; level 1 with run-length matching is several times faster on
// volumes (long runs of background) and compresses them as well.
Status GzipFile(const fs::path& raw, const fs::path& target) {
  const int in = ::open(raw.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return StatusFromErrno(errno, "cannot reopen the uncompressed volume");
  const int out = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return StatusFromErrno(err, "cannot create " + target.string());
  }
  gzFile gz = gzdopen(out, "wb1R");
  if (gz == nullptr) {
    ::close(in);
    ::close(out);
    return ResourceExhaustedError("cannot start gzip compression");
  }
  gzbuffer(gz, 1 << 18);
  std::vector<char> buffer(1 << 20);
  Status status;
  for (;;) {
    const ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = StatusFromErrno(errno, "cannot read the uncompressed volume");
      break;
    }
    if (n == 0) break;
    if (gzwrite(gz, buffer.data(), static_cast<unsigned>(n)) != n) {
      int code = 0;
      status =
          StatusFromErrno(errno, std::string("gzip write failed (") + gzerror(gz, &code) + ")");
      break;
    }
  }
  ::close(in);
  if (gzclose_w(gz) != Z_OK && status.ok()) {
    status = StatusFromErrno(errno, "gzip write failed at close");
  }
  return status;
}

// Writes the file at `temp` (uncompressed by ITK, then gzipped by us for .nii.gz).
template <typename T>
Status WriteTemporary(const Volume<T>& volume, const fs::path& temp, bool gzip) {
  try {
    if (!gzip) {
      WriteWithItk(volume, temp);
      return OkStatus();
    }
    ASSIGN_OR_RETURN(auto scratch, PrivateDir::Create());
    const fs::path raw = scratch->path() / "volume.nii";
    WriteWithItk(volume, raw);
    return GzipFile(raw, temp);
  } catch (const itk::ExceptionObject& e) {
    return InternalError("ITK cannot write: " + std::string(e.GetDescription()));
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory writing the volume");
  } catch (const std::exception& e) {
    return InternalError(std::string("cannot write: ") + e.what());
  }
}

}  // namespace

template <typename T>
Status WriteVolume(const Volume<T>& volume, const fs::path& path) {
  const std::string where = path.string();
  if (Status s = CheckWritable(volume.size(), volume.geometry()); !s.ok()) {
    return s.WithContext(where);
  }
  const auto [stem, ext] = SplitNiftiName(path.filename().string());
  if (ext.empty()) {
    return InvalidArgumentError(where + ": volume files must end in .nii or .nii.gz");
  }
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    return NotFoundError(where + ": folder " + folder.string() + " does not exist");
  }
  // Same folder (so the rename is atomic), same extension, a leading dot and a unique tail (so
  // no reader takes it for a finished volume, and concurrent writers never collide).
  const fs::path temp = folder / ("." + stem.substr(0, 100) + ".tmp-" + RandomSuffix() + ext);
  Status status = WriteTemporary(volume, temp, ext == ".nii.gz");
  if (status.ok()) status = SyncPath(temp, false);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = StatusFromErrno(errno, "cannot rename the temporary file into place");
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status.WithContext(where);
  }
  return SyncPath(folder, true).WithContext(where);
}

int SetImagingThreads(int threads) {
  if (threads <= 0) {
    threads = 1;
    if (const char* env = std::getenv("CLISC_IMAGING_THREADS")) {
      char* end = nullptr;
      const long value = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && value > 0 && value <= 1024) {
        threads = static_cast<int>(value);
      }
    }
  }
  itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(static_cast<itk::ThreadIdType>(threads));
  return static_cast<int>(itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads());
}

#define CLISC_INSTANTIATE_VOLUME_IO(T)                                              \
  template StatusOr<Volume<T>> ReadVolume<T>(const fs::path&, const VolumeLimits&); \
  template Status WriteVolume<T>(const Volume<T>&, const fs::path&);
CLISC_INSTANTIATE_VOLUME_IO(uint8_t)
CLISC_INSTANTIATE_VOLUME_IO(int16_t)
CLISC_INSTANTIATE_VOLUME_IO(int32_t)
CLISC_INSTANTIATE_VOLUME_IO(float)
CLISC_INSTANTIATE_VOLUME_IO(double)
#undef CLISC_INSTANTIATE_VOLUME_IO

}  // namespace clisc
