// Why an incoming frame was dropped. Every rejection maps to exactly one reason so the
// coordinator can count drops per reason (a spike of `protocol_version_mismatch` after a
// deploy reads differently from a spike of `parse_failed`).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace clisc {

enum class FrameError : uint8_t {
  // Before parsing.
  kEmptyFrame,
  kFrameTooLarge,  // above the hard cap; not even parsed
  kParseFailed,    // not a protobuf Envelope (or invalid UTF-8 in a string field)
  // Envelope level.
  kProtocolVersionMismatch,
  kUnknownMessageType,  // a body this build does not know (a newer peer)
  kMissingBody,
  kTooLargeForType,  // within the hard cap but above the limit for its message type
  // Field level.
  kMissingField,
  kFieldTooLong,
  kBadCharacters,  // control characters in an id or name
  kTooManyEntries,
  kBadAttempt,
  kBadNumber,  // out of range or not finite
  kBadPath,
  kBadChecksum,
  kBadChunk,  // offsets or sizes that do not add up
  kInconsistentFields,
  // Multipart framing (ROUTER / DEALER).
  kBadFrameCount,
  kBadDelimiter,
  kBadIdentity,
};

inline constexpr size_t kFrameErrorCount = static_cast<size_t>(FrameError::kBadIdentity) + 1;

// A stable snake_case name ("frame_too_large"), for logs and metric labels.
std::string_view FrameErrorName(FrameError reason);

// The Status for a rejection: "<name>: <detail>", with a code that says what kind of problem it
// is (RESOURCE_EXHAUSTED for sizes, FAILED_PRECONDITION for a version mismatch, UNIMPLEMENTED
// for an unknown message type, INVALID_ARGUMENT otherwise).
Status FrameErrorStatus(FrameError reason, std::string_view detail);

// Drop counters per reason; safe to bump from several threads.
class FrameDropCounters {
 public:
  void Record(FrameError reason) {
    counts_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t count(FrameError reason) const {
    return counts_[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
  }
  uint64_t total() const;
  // (name, count) for every reason with a non-zero count, in enum order.
  std::vector<std::pair<std::string_view, uint64_t>> NonZero() const;

 private:
  std::array<std::atomic<uint64_t>, kFrameErrorCount> counts_{};
};

}  // namespace clisc
