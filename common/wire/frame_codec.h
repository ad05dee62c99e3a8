// Encoding and decoding of one ZeroMQ payload frame (one wire::Envelope). Decoding treats the
// bytes as hostile: it never crashes, never allocates beyond the hard frame cap, and every
// rejection carries one countable FrameError (see frame_error.h).
//
// Generated message classes come from schemas/clisc.proto, included as "schemas/clisc.pb.h".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "common/wire/frame_error.h"
#include "common/wire/frame_limits.h"
#include "common/wire/protocol_version.h"
#include "schemas/clisc.pb.h"

namespace clisc {

// An envelope stamped with this build's protocol version.
wire::Envelope NewEnvelope(uint64_t seq);

// Serializes without validating (senders may call ValidateEnvelope() first). Returns an empty
// string only for an envelope protobuf cannot serialize (over 2 GiB), which every receiver
// refuses as an empty frame.
std::string EncodeFrame(const wire::Envelope& envelope);

// Parses and validates one frame: hard size cap, protobuf parse, protocol version, a known
// body, the size limit for that body's type, then the body's field rules. On failure
// `*reason` (when given) says why, for drop counters.
StatusOr<wire::Envelope> DecodeFrame(const void* data, size_t size,
                                     const FrameLimits& limits = FrameLimits(),
                                     FrameError* reason = nullptr);

}  // namespace clisc
