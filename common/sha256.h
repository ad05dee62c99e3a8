// SHA-256 (FIPS 180-4): the checksum recorded for every artifact in the ledger and carried in
// artifact references on the wire. Written against the standard so that the store has no
// crypto-library dependency; not constant-time, and not meant for secrets.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace clisc {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental hasher: Update() any number of times, then Finish() once.
class Sha256 {
 public:
  Sha256();

  void Update(const void* data, size_t size);
  void Update(std::string_view bytes) { Update(bytes.data(), bytes.size()); }
  // Pads, returns the digest, and resets the hasher so it can be reused.
  Sha256Digest Finish();
  std::string FinishHex();

 private:
  void Reset();
  void ProcessBlock(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_;
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lowercase hex, 64 characters.
std::string DigestToHex(const Sha256Digest& digest);
std::string Sha256Hex(std::string_view bytes);
// True when `text` has the shape of a digest as this project writes it (64 lowercase hex chars).
bool IsSha256Hex(std::string_view text);
// Streams a file through the hasher; the file may be larger than memory.
StatusOr<std::string> Sha256FileHex(const std::filesystem::path& path);

}  // namespace clisc
