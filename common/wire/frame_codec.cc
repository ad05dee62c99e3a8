#include "common/wire/frame_codec.h"

#include <google/protobuf/stubs/logging.h>

#include <climits>
#include <mutex>

#include "common/logging.h"
#include "common/wire/frame_validation.h"

namespace clisc {
namespace {

// Protobuf prints invalid UTF-8 in a string field through its own logger before the parse
// fails. The decoder already turns that failure into a counted rejection, so the message goes to
// the debug log rather than to stderr once per hostile frame.
void RouteProtobufLogs() {
  static std::once_flag once;
  std::call_once(once, [] {
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel level, const char* file, int line,
                                       const std::string& message) {
      if (level >= google::protobuf::LOGLEVEL_FATAL) {
        LogError("protobuf_fatal", {{"file", file}, {"line", line}, {"message", message}});
      } else {
        LogDebug("protobuf_log", {{"file", file}, {"line", line}, {"message", message}});
      }
    });
  });
}

StatusOr<wire::Envelope> Reject(FrameError error, std::string_view detail, FrameError* reason) {
  if (reason != nullptr) *reason = error;
  return FrameErrorStatus(error, detail);
}

}  // namespace

wire::Envelope NewEnvelope(uint64_t seq) {
  wire::Envelope envelope;
  envelope.set_protocol_version(kProtocolVersion);
  envelope.set_seq(seq);
  return envelope;
}

std::string EncodeFrame(const wire::Envelope& envelope) {
  std::string out;
  if (!envelope.SerializeToString(&out)) out.clear();
  return out;
}

StatusOr<wire::Envelope> DecodeFrame(const void* data, size_t size, const FrameLimits& limits,
                                     FrameError* reason) {
  if (size == 0 || data == nullptr) {
    return Reject(FrameError::kEmptyFrame, size == 0 ? "zero-length frame" : "no frame data",
                  reason);
  }
  // Protobuf takes an int size; the cap also bounds what parsing may allocate.
  const size_t hard_cap = std::min<size_t>(limits.max_frame_bytes, INT_MAX);
  if (size > hard_cap) {
    return Reject(FrameError::kFrameTooLarge,
                  std::to_string(size) + " bytes, hard limit " + std::to_string(hard_cap), reason);
  }
  RouteProtobufLogs();
  wire::Envelope envelope;
  if (!envelope.ParseFromArray(data, static_cast<int>(size))) {
    return Reject(FrameError::kParseFailed,
                  "not a clisc.wire.Envelope (" + std::to_string(size) + " bytes)", reason);
  }
  RETURN_IF_ERROR(ValidateEnvelope(envelope, size, limits, reason));
  return envelope;
}

}  // namespace clisc
