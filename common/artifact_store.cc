#include "common/artifact_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "common/sha256.h"

namespace clisc {
namespace fs = std::filesystem;

namespace {

// Maps an errno to the project's codes so callers can tell retryable IO trouble (UNAVAILABLE:
// an NFS hiccup) from conditions that retrying will not fix.
Status ErrnoStatus(std::string_view what, const fs::path& path, int err) {
  std::string message = std::string(what) + " " + path.string() + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFoundError(std::move(message));
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDeniedError(std::move(message));
    case ENOSPC:
    case EDQUOT:
      return ResourceExhaustedError(std::move(message));
    case EEXIST:
      return AlreadyExistsError(std::move(message));
    default:
      return UnavailableError(std::move(message));
  }
}

// Owns a file descriptor so every early return closes it.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Close();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { Close(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Close() {
    int rc = 0;
    if (fd_ >= 0) rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status OpenForRead(const fs::path& path, Fd& fd, uint64_t& size) {
  Fd opened(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!opened.valid()) return ErrnoStatus("cannot open", path, errno);
  struct stat st;
  if (::fstat(opened.get(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) return FailedPreconditionError(path.string() + " is not a file");
  size = static_cast<uint64_t>(st.st_size);
  fd = std::move(opened);
  return OkStatus();
}

Status WriteAll(int fd, const char* data, size_t size, const fs::path& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot write", path, errno);
    data += n;
    size -= static_cast<size_t>(n);
  }
  return OkStatus();
}

// Reads up to `size` bytes at `offset`; stops early only at end of file.
StatusOr<std::string> ReadAt(int fd, uint64_t offset, size_t size, const fs::path& path) {
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot read", path, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

// A rename is durable only once the directory holding the new entry is on disk.
Status SyncDirectory(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0 && errno != EINVAL) {
    return ErrnoStatus("cannot sync directory", dir, errno);
  }
  return OkStatus();
}

// Creates the missing directories between the root and the file, syncing each parent that
// gained an entry so the new path survives a power loss together with the file.
Status MakeParentDirectories(const fs::path& root, std::string_view relative_path) {
  fs::path dir = root;
  size_t start = 0;
  for (size_t slash; (slash = relative_path.find('/', start)) != std::string_view::npos;
       start = slash + 1) {
    fs::path parent = dir;
    dir /= std::string(relative_path.substr(start, slash - start));
    if (::mkdir(dir.c_str(), 0755) == 0) {
      RETURN_IF_ERROR(SyncDirectory(parent));
      continue;
    }
    if (errno != EEXIST) return ErrnoStatus("cannot create directory", dir, errno);
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus("cannot stat", dir, errno);
    if (!S_ISDIR(st.st_mode)) {
      return FailedPreconditionError(dir.string() + " exists and is not a directory");
    }
  }
  return OkStatus();
}

// Hidden, unique within the directory across processes and hosts sharing it, and short enough
// for NAME_MAX whatever the artifact's own name length.
std::string TempFileName(const std::string& target_name) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t process_nonce = [] {
    std::random_device device;
    return (uint64_t{device()} << 32) ^ device();
  }();
  return "." + target_name.substr(0, 100) + std::string(kArtifactTempMarker) +
         std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(process_nonce % 1000000007);
}

}  // namespace

namespace artifact_internal {

// A temporary file beside its target: written and hashed, then published by rename, or
// removed.
class PendingFile {
 public:
  using Hook = std::function<void(const fs::path&)>;

  static StatusOr<std::unique_ptr<PendingFile>> Create(fs::path target, Hook before_rename) {
    fs::path temp = target.parent_path() / TempFileName(target.filename().string());
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("cannot create", temp, errno);
    return std::unique_ptr<PendingFile>(
        new PendingFile(fd, std::move(temp), std::move(target), std::move(before_rename)));
  }

  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  ~PendingFile() { Discard(); }

  bool finished() const { return finished_; }
  uint64_t size() const { return size_; }

  Status Write(const char* data, size_t size) {
    if (finished_) return FailedPreconditionError("write after the file was finished");
    Status status = WriteAll(fd_.get(), data, size, temp_);
    if (!status.ok()) {
      Discard();
      return status;
    }
    hasher_.Update(data, size);
    size_ += size;
    return OkStatus();
  }

  // Publishes the file when its checksum matches `expected_sha256` (any checksum when empty).
  StatusOr<ArtifactRef> Commit(std::string relative_path, std::string_view expected_sha256) {
    if (finished_) return FailedPreconditionError("commit after the file was finished");
    std::string sha256 = hasher_.FinishHex();
    if (!expected_sha256.empty() && sha256 != expected_sha256) {
      Discard();
      return DataLossError("checksum mismatch for " + relative_path + ": expected " +
                           std::string(expected_sha256) + ", received " + sha256);
    }
    if (::fsync(fd_.get()) != 0) return FailAndDiscard("cannot sync", errno);
    if (fd_.Close() != 0) return FailAndDiscard("cannot close", errno);
    if (before_rename_) before_rename_(temp_);
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
      return FailAndDiscard("cannot rename", errno);
    finished_ = true;
    RETURN_IF_ERROR(SyncDirectory(target_.parent_path()));
    return ArtifactRef{std::move(relative_path), size_, std::move(sha256)};
  }

  void Discard() {
    if (finished_) return;
    finished_ = true;
    fd_.Close();
    ::unlink(temp_.c_str());
  }

 private:
  PendingFile(int fd, fs::path temp, fs::path target, Hook before_rename)
      : fd_(fd),
        temp_(std::move(temp)),
        target_(std::move(target)),
        before_rename_(std::move(before_rename)) {}

  Status FailAndDiscard(std::string_view what, int err) {
    Status status = ErrnoStatus(what, temp_, err);
    Discard();
    return status;
  }

  Fd fd_;
  fs::path temp_;
  fs::path target_;
  Hook before_rename_;
  Sha256 hasher_;
  uint64_t size_ = 0;
  bool finished_ = false;
};

}  // namespace artifact_internal

using artifact_internal::PendingFile;

Status ValidateArtifactPath(std::string_view path) {
  auto bad = [&](std::string_view why) {
    // Quote a bounded prefix: the path itself may be hostile and huge.
    return InvalidArgumentError("artifact path '" + std::string(path.substr(0, 200)) +
                                "' refused: " + std::string(why));
  };
  if (path.empty()) return bad("empty");
  if (path.size() > kMaxArtifactPathLength) return bad("too long");
  if (path.front() == '/') return bad("absolute");
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("control character");
  }
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty()) return bad("empty component");
    if (part == "." || part == "..") return bad("'.' or '..' component");
    if (part.size() > kMaxArtifactPathComponent) return bad("component too long");
    if (part.find(kArtifactTempMarker) != std::string_view::npos) {
      return bad("reserved temporary-file marker");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return OkStatus();
}

// ----- ChunkedWriter -----

ChunkedWriter::ChunkedWriter(std::unique_ptr<PendingFile> file, std::string relative_path,
                             uint64_t total_size)
    : file_(std::move(file)), relative_path_(std::move(relative_path)), total_size_(total_size) {}
ChunkedWriter::ChunkedWriter(ChunkedWriter&&) noexcept = default;
ChunkedWriter& ChunkedWriter::operator=(ChunkedWriter&&) noexcept = default;
ChunkedWriter::~ChunkedWriter() = default;

uint64_t ChunkedWriter::bytes_written() const { return file_ ? file_->size() : 0; }

Status ChunkedWriter::Append(uint64_t offset, std::string_view data) {
  if (!file_ || file_->finished()) {
    return FailedPreconditionError("transfer of " + relative_path_ + " is already finished");
  }
  if (offset != file_->size()) {
    return FailedPreconditionError("transfer of " + relative_path_ + " expected offset " +
                                   std::to_string(file_->size()) + ", got " +
                                   std::to_string(offset));
  }
  if (data.size() > total_size_ - offset) {
    return OutOfRangeError("chunk at " + std::to_string(offset) + " of " +
                           std::to_string(data.size()) + " bytes runs past the declared size " +
                           std::to_string(total_size_) + " of " + relative_path_);
  }
  return file_->Write(data.data(), data.size());
}

StatusOr<ArtifactRef> ChunkedWriter::Commit(std::string_view expected_sha256) {
  if (!file_ || file_->finished()) {
    return FailedPreconditionError("transfer of " + relative_path_ + " is already finished");
  }
  if (!IsSha256Hex(expected_sha256)) {
    Abort();
    return InvalidArgumentError("transfer of " + relative_path_ + " has a malformed checksum");
  }
  if (file_->size() != total_size_) {
    uint64_t received = file_->size();
    Abort();
    return FailedPreconditionError("transfer of " + relative_path_ +
                                   " incomplete: " + std::to_string(received) + " of " +
                                   std::to_string(total_size_) + " bytes");
  }
  return file_->Commit(relative_path_, expected_sha256);
}

void ChunkedWriter::Abort() {
  if (file_) file_->Discard();
}

// ----- ArtifactStore -----

StatusOr<ArtifactStore> ArtifactStore::Open(const fs::path& root, Options options) {
  std::error_code ec;
  fs::path absolute = fs::absolute(root, ec);
  if (ec) return InvalidArgumentError("bad artifact root " + root.string() + ": " + ec.message());
  fs::create_directories(absolute, ec);
  if (ec) return ErrnoStatus("cannot create artifact root", absolute, ec.value());
  if (!fs::is_directory(absolute, ec)) {
    return FailedPreconditionError("artifact root " + absolute.string() + " is not a directory");
  }
  return ArtifactStore(absolute.lexically_normal(), std::move(options));
}

StatusOr<fs::path> ArtifactStore::Resolve(std::string_view relative_path) const {
  RETURN_IF_ERROR(ValidateArtifactPath(relative_path));
  return root_ / fs::path(std::string(relative_path));
}

StatusOr<std::unique_ptr<PendingFile>> ArtifactStore::StartWrite(
    std::string_view relative_path) const {
  ASSIGN_OR_RETURN(fs::path target, Resolve(relative_path));
  RETURN_IF_ERROR(MakeParentDirectories(root_, relative_path));
  return PendingFile::Create(std::move(target), options_.before_rename);
}

StatusOr<ArtifactRef> ArtifactStore::PutFile(std::string_view relative_path,
                                             std::string_view bytes) const {
  ASSIGN_OR_RETURN(std::unique_ptr<PendingFile> file, StartWrite(relative_path));
  RETURN_IF_ERROR(file->Write(bytes.data(), bytes.size()));
  return file->Commit(std::string(relative_path), "");
}

StatusOr<ArtifactRef> ArtifactStore::PutFromFile(std::string_view relative_path,
                                                 const fs::path& source) const {
  Fd in;
  uint64_t size = 0;
  RETURN_IF_ERROR(OpenForRead(source, in, size));
  ASSIGN_OR_RETURN(std::unique_ptr<PendingFile> file, StartWrite(relative_path));
  std::vector<char> buffer(1 << 20);
  while (true) {
    ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot read", source, errno);
    if (n == 0) break;
    RETURN_IF_ERROR(file->Write(buffer.data(), static_cast<size_t>(n)));
  }
  return file->Commit(std::string(relative_path), "");
}

StatusOr<ArtifactRef> ArtifactStore::Describe(std::string_view relative_path) const {
  ASSIGN_OR_RETURN(fs::path path, Resolve(relative_path));
  Fd fd;
  uint64_t size = 0;
  RETURN_IF_ERROR(OpenForRead(path, fd, size));
  ASSIGN_OR_RETURN(std::string sha256, Sha256FileHex(path));
  return ArtifactRef{std::string(relative_path), size, std::move(sha256)};
}

Status ArtifactStore::Verify(const ArtifactRef& ref) const {
  if (!IsSha256Hex(ref.sha256)) {
    return InvalidArgumentError("artifact ref for " + ref.path + " has a malformed checksum");
  }
  ASSIGN_OR_RETURN(fs::path path, Resolve(ref.path));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("missing artifact", path, errno);
  if (static_cast<uint64_t>(st.st_size) != ref.size) {
    return DataLossError("artifact " + ref.path + " has " + std::to_string(st.st_size) +
                         " bytes, the ledger says " + std::to_string(ref.size));
  }
  ASSIGN_OR_RETURN(std::string sha256, Sha256FileHex(path));
  if (sha256 != ref.sha256) {
    return DataLossError("artifact " + ref.path + " checksum " + sha256 + " differs from " +
                         ref.sha256);
  }
  return OkStatus();
}

StatusOr<std::string> ArtifactStore::Read(std::string_view relative_path,
                                          uint64_t max_bytes) const {
  ASSIGN_OR_RETURN(fs::path path, Resolve(relative_path));
  Fd fd;
  uint64_t size = 0;
  RETURN_IF_ERROR(OpenForRead(path, fd, size));
  if (size > max_bytes) {
    return ResourceExhaustedError("artifact " + std::string(relative_path) + " has " +
                                  std::to_string(size) + " bytes, more than " +
                                  std::to_string(max_bytes));
  }
  return ReadAt(fd.get(), 0, static_cast<size_t>(size), path);
}

StatusOr<ArtifactChunkData> ArtifactStore::ReadChunk(std::string_view relative_path,
                                                     uint64_t offset, uint64_t max_bytes) const {
  if (max_bytes == 0) return InvalidArgumentError("chunk size must be positive");
  ASSIGN_OR_RETURN(fs::path path, Resolve(relative_path));
  Fd fd;
  uint64_t size = 0;
  RETURN_IF_ERROR(OpenForRead(path, fd, size));
  if (offset > size) {
    return OutOfRangeError("offset " + std::to_string(offset) + " is past the end of " +
                           std::string(relative_path) + " (" + std::to_string(size) + " bytes)");
  }
  uint64_t want = std::min(max_bytes, size - offset);
  ASSIGN_OR_RETURN(std::string data, ReadAt(fd.get(), offset, static_cast<size_t>(want), path));
  if (data.size() != want) {
    return AbortedError("artifact " + std::string(relative_path) + " shrank while being read");
  }
  ArtifactChunkData chunk;
  chunk.offset = offset;
  chunk.total_size = size;
  chunk.last = offset + want == size;
  chunk.data = std::move(data);
  return chunk;
}

StatusOr<ChunkedWriter> ArtifactStore::BeginChunkedWrite(std::string_view relative_path,
                                                         uint64_t total_size) const {
  ASSIGN_OR_RETURN(std::unique_ptr<PendingFile> file, StartWrite(relative_path));
  return ChunkedWriter(std::move(file), std::string(relative_path), total_size);
}

StatusOr<size_t> ArtifactStore::CleanupTemporaries(std::chrono::seconds min_age) const {
  std::error_code ec;
  // Symlinked directories are not followed: cleanup never leaves the root.
  fs::recursive_directory_iterator it(root_, fs::directory_options::skip_permission_denied, ec);
  if (ec) return ErrnoStatus("cannot list", root_, ec.value());
  const auto now = fs::file_time_type::clock::now();
  size_t removed = 0;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return ErrnoStatus("cannot list", root_, ec.value());
    const fs::path& path = it->path();
    if (path.filename().string().find(kArtifactTempMarker) == std::string::npos) continue;
    if (!it->is_regular_file(ec) || ec) continue;
    auto modified = it->last_write_time(ec);
    if (ec || now - modified < min_age) continue;
    if (fs::remove(path, ec) && !ec) ++removed;
  }
  if (ec) return ErrnoStatus("cannot list", root_, ec.value());
  return removed;
}

}  // namespace clisc
