#include "common/wire/frame_error.h"

namespace clisc {

std::string_view FrameErrorName(FrameError reason) {
  switch (reason) {
    case FrameError::kEmptyFrame:
      return "empty_frame";
    case FrameError::kFrameTooLarge:
      return "frame_too_large";
    case FrameError::kParseFailed:
      return "parse_failed";
    case FrameError::kProtocolVersionMismatch:
      return "protocol_version_mismatch";
    case FrameError::kUnknownMessageType:
      return "unknown_message_type";
    case FrameError::kMissingBody:
      return "missing_body";
    case FrameError::kTooLargeForType:
      return "too_large_for_type";
    case FrameError::kMissingField:
      return "missing_field";
    case FrameError::kFieldTooLong:
      return "field_too_long";
    case FrameError::kBadCharacters:
      return "bad_characters";
    case FrameError::kTooManyEntries:
      return "too_many_entries";
    case FrameError::kBadAttempt:
      return "bad_attempt";
    case FrameError::kBadNumber:
      return "bad_number";
    case FrameError::kBadPath:
      return "bad_path";
    case FrameError::kBadChecksum:
      return "bad_checksum";
    case FrameError::kBadChunk:
      return "bad_chunk";
    case FrameError::kInconsistentFields:
      return "inconsistent_fields";
    case FrameError::kBadFrameCount:
      return "bad_frame_count";
    case FrameError::kBadDelimiter:
      return "bad_delimiter";
    case FrameError::kBadIdentity:
      return "bad_identity";
  }
  return "unknown_frame_error";
}

Status FrameErrorStatus(FrameError reason, std::string_view detail) {
  std::string message = std::string(FrameErrorName(reason)) + ": " + std::string(detail);
  switch (reason) {
    case FrameError::kFrameTooLarge:
    case FrameError::kTooLargeForType:
      return ResourceExhaustedError(std::move(message));
    case FrameError::kProtocolVersionMismatch:
      return FailedPreconditionError(std::move(message));
    case FrameError::kUnknownMessageType:
      return UnimplementedError(std::move(message));
    default:
      return InvalidArgumentError(std::move(message));
  }
}

uint64_t FrameDropCounters::total() const {
  uint64_t sum = 0;
  for (const auto& count : counts_) sum += count.load(std::memory_order_relaxed);
  return sum;
}

std::vector<std::pair<std::string_view, uint64_t>> FrameDropCounters::NonZero() const {
  std::vector<std::pair<std::string_view, uint64_t>> out;
  for (size_t i = 0; i < kFrameErrorCount; ++i) {
    uint64_t n = counts_[i].load(std::memory_order_relaxed);
    if (n > 0) out.emplace_back(FrameErrorName(static_cast<FrameError>(i)), n);
  }
  return out;
}

}  // namespace clisc
