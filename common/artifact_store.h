// The artifact store: a directory tree under the run's workdir (a shared filesystem on a
// cluster) where tasks read their inputs and write their outputs. Every write is atomic (temp
// file in the same directory, fsync, rename, fsync of the directory), so a reader or a restarted
// coordinator sees either the whole artifact or nothing, and every artifact is described by its
// size and SHA-256 so that the ledger can detect corruption. Paths come from task names and
// from the wire, so they are validated to stay inside the root.
//
// Workers without the shared filesystem move artifacts through the coordinator in chunks:
// ReadChunk() serves a fetch, ChunkedWriter receives a put (in order, verified at the end).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace clisc {

// What the ledger records about an artifact and what travels in wire artifact refs.
struct ArtifactRef {
  std::string path;  // relative to the store root, '/'-separated
  uint64_t size = 0;
  std::string sha256;  // lowercase hex
};

// A piece of an artifact for the through-the-coordinator transfer.
struct ArtifactChunkData {
  uint64_t offset = 0;
  uint64_t total_size = 0;
  std::string data;
  bool last = false;
};

// Temporary files carry this marker in their (hidden) names; artifact paths may not.
inline constexpr std::string_view kArtifactTempMarker = ".clisc-tmp-";
inline constexpr size_t kMaxArtifactPathLength = 4096;
inline constexpr size_t kMaxArtifactPathComponent = 255;

// OK when `path` is a relative, '/'-separated path that cannot leave the root: not empty, not
// absolute, no "." or ".." or empty components, no NUL or other control characters, no
// temporary-file marker, and within the length limits. INVALID_ARGUMENT otherwise.
Status ValidateArtifactPath(std::string_view path);

namespace artifact_internal {
class PendingFile;
}

// Receives an artifact in ordered chunks into a temporary file; Commit() checks the size and
// checksum and only then publishes the file. Dropping the writer without Commit() removes the
// temporary file.
class ChunkedWriter {
 public:
  ChunkedWriter(ChunkedWriter&&) noexcept;
  ChunkedWriter& operator=(ChunkedWriter&&) noexcept;
  ~ChunkedWriter();

  const std::string& relative_path() const { return relative_path_; }
  uint64_t total_size() const { return total_size_; }
  // The offset the next Append() must start at (what to tell a sender that resumes).
  uint64_t bytes_written() const;

  // FAILED_PRECONDITION when `offset` is not bytes_written() or the writer is finished;
  // OUT_OF_RANGE when the data would run past total_size().
  Status Append(uint64_t offset, std::string_view data);
  // FAILED_PRECONDITION when incomplete, DATA_LOSS when the checksum differs (the temporary
  // file is removed in both failure cases that end the transfer).
  StatusOr<ArtifactRef> Commit(std::string_view expected_sha256);
  void Abort();

 private:
  friend class ArtifactStore;
  ChunkedWriter(std::unique_ptr<artifact_internal::PendingFile> file, std::string relative_path,
                uint64_t total_size);

  std::unique_ptr<artifact_internal::PendingFile> file_;
  std::string relative_path_;
  uint64_t total_size_ = 0;
};

// Thread-safe (no mutable state). Two writers of one path each publish a complete file and the
// last rename wins, which is what a retried task that reruns a stale attempt needs.
class ArtifactStore {
 public:
  struct Options {
    // Test seam: runs after the temporary file is complete and fsynced, just before the rename
    // that publishes it. A test makes it exit the process to simulate a crash at that point.
    std::function<void(const std::filesystem::path& temp_path)> before_rename;
  };

  // Creates the root directory if needed.
  static StatusOr<ArtifactStore> Open(const std::filesystem::path& root, Options options = {});

  const std::filesystem::path& root() const { return root_; }
  // The absolute location of a validated relative path.
  StatusOr<std::filesystem::path> Resolve(std::string_view relative_path) const;

  // Atomically creates or replaces the artifact (parent directories are created).
  StatusOr<ArtifactRef> PutFile(std::string_view relative_path, std::string_view bytes) const;
  StatusOr<ArtifactRef> PutFromFile(std::string_view relative_path,
                                    const std::filesystem::path& source) const;

  // Size and checksum of what is stored now (NOT_FOUND when absent).
  StatusOr<ArtifactRef> Describe(std::string_view relative_path) const;
  // NOT_FOUND when missing, DATA_LOSS when the size or checksum differs from `ref`.
  Status Verify(const ArtifactRef& ref) const;
  // The whole artifact; RESOURCE_EXHAUSTED above `max_bytes`.
  StatusOr<std::string> Read(std::string_view relative_path,
                             uint64_t max_bytes = uint64_t{1} << 30) const;

  // Up to `max_bytes` starting at `offset`; OUT_OF_RANGE when offset is past the end. A read at
  // offset == size returns an empty, last chunk (so empty artifacts transfer too).
  StatusOr<ArtifactChunkData> ReadChunk(std::string_view relative_path, uint64_t offset,
                                        uint64_t max_bytes) const;
  StatusOr<ChunkedWriter> BeginChunkedWrite(std::string_view relative_path,
                                            uint64_t total_size) const;

  // Removes temporary files left by crashed writers, returning how many were removed. On a
  // shared filesystem other processes may be writing: pass a `min_age` longer than any write
  // takes, so only abandoned files are touched.
  StatusOr<size_t> CleanupTemporaries(std::chrono::seconds min_age = std::chrono::seconds(0)) const;

 private:
  ArtifactStore(std::filesystem::path root, Options options)
      : root_(std::move(root)), options_(std::move(options)) {}

  StatusOr<std::unique_ptr<artifact_internal::PendingFile>> StartWrite(
      std::string_view relative_path) const;

  std::filesystem::path root_;
  Options options_;
};

}  // namespace clisc
