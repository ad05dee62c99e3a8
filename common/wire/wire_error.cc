#include "common/wire/wire_error.h"

#include <algorithm>

#include "common/wire/frame_limits.h"

namespace clisc {
namespace {

// The conversions below are casts; these keep the two enums in step.
constexpr bool SameCode(wire::Error::Code wire_code, StatusCode code) {
  return static_cast<int>(wire_code) == static_cast<int>(code);
}
static_assert(SameCode(wire::Error::OK, StatusCode::kOk));
static_assert(SameCode(wire::Error::CANCELLED, StatusCode::kCancelled));
static_assert(SameCode(wire::Error::UNKNOWN, StatusCode::kUnknown));
static_assert(SameCode(wire::Error::INVALID_ARGUMENT, StatusCode::kInvalidArgument));
static_assert(SameCode(wire::Error::DEADLINE_EXCEEDED, StatusCode::kDeadlineExceeded));
static_assert(SameCode(wire::Error::NOT_FOUND, StatusCode::kNotFound));
static_assert(SameCode(wire::Error::ALREADY_EXISTS, StatusCode::kAlreadyExists));
static_assert(SameCode(wire::Error::PERMISSION_DENIED, StatusCode::kPermissionDenied));
static_assert(SameCode(wire::Error::RESOURCE_EXHAUSTED, StatusCode::kResourceExhausted));
static_assert(SameCode(wire::Error::FAILED_PRECONDITION, StatusCode::kFailedPrecondition));
static_assert(SameCode(wire::Error::ABORTED, StatusCode::kAborted));
static_assert(SameCode(wire::Error::OUT_OF_RANGE, StatusCode::kOutOfRange));
static_assert(SameCode(wire::Error::UNIMPLEMENTED, StatusCode::kUnimplemented));
static_assert(SameCode(wire::Error::INTERNAL, StatusCode::kInternal));
static_assert(SameCode(wire::Error::UNAVAILABLE, StatusCode::kUnavailable));
static_assert(SameCode(wire::Error::DATA_LOSS, StatusCode::kDataLoss));

// Length of the well-formed UTF-8 sequence at the start of `text` (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when it is malformed.
size_t Utf8SequenceLength(std::string_view text) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  auto in = [](unsigned char b, unsigned char lo, unsigned char hi) { return b >= lo && b <= hi; };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (in(lead, 0xC2, 0xDF)) {
    length = 2;
  } else if (in(lead, 0xE0, 0xEF)) {
    length = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (in(lead, 0xF0, 0xF4)) {
    length = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length || !in(byte(1), lo, hi)) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (!in(byte(i), 0x80, 0xBF)) return 0;
  }
  return length;
}

}  // namespace

std::string SanitizeWireText(std::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  while (!text.empty()) {
    size_t length = Utf8SequenceLength(text);
    std::string_view piece = length == 0 ? std::string_view("?") : text.substr(0, length);
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    text.remove_prefix(length == 0 ? 1 : length);
  }
  return out;
}

wire::Error ToWireError(const Status& status) {
  wire::Error error;
  // An OK status has no place in an Error; UNKNOWN keeps the receiver from reading success.
  error.set_code(status.ok() ? wire::Error::UNKNOWN
                             : static_cast<wire::Error::Code>(status.code()));
  error.set_message(SanitizeWireText(status.message(), FrameLimits().max_text_bytes));
  error.set_retryable(status.IsRetryable());
  return error;
}

Status FromWireError(const wire::Error& error) {
  int code = static_cast<int>(error.code());
  if (code <= 0 || code > static_cast<int>(StatusCode::kDataLoss)) {
    return Status(StatusCode::kUnknown,
                  "peer error with code " + std::to_string(code) + ": " + error.message());
  }
  return Status(static_cast<StatusCode>(code), error.message());
}

}  // namespace clisc
