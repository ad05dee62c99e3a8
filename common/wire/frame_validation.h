// Semantic validation of decoded envelopes: the protocol version, a known body, the size limit
// for the body's type, and per-type field rules (non-empty ids, attempt >= 1, fraction in
// [0, 1], bounded strings and lists, artifact paths that stay inside the store, consistent
// chunk offsets...). DecodeFrame() runs it on every incoming frame; senders may run it before
// sending to catch their own bugs early.
#pragma once

#include <cstddef>

#include "common/status.h"
#include "common/wire/frame_error.h"
#include "common/wire/frame_limits.h"
#include "schemas/clisc.pb.h"

namespace clisc {

// The size limit for a frame whose body is `body`.
size_t FrameLimitFor(wire::Envelope::BodyCase body, const FrameLimits& limits);

// `encoded_size` is the frame's size on the wire (ByteSizeLong() for an outgoing envelope).
// On failure the Status message names the field, and `*reason` (when given) the FrameError.
Status ValidateEnvelope(const wire::Envelope& envelope, size_t encoded_size,
                        const FrameLimits& limits, FrameError* reason = nullptr);

}  // namespace clisc
