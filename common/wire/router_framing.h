// Multipart framing around the payload frame. A ROUTER socket delivers and expects
// [identity][empty delimiter][payload]; the DEALER side sends and receives [empty][payload],
// the delimiter keeping the layout compatible with the zguide's REQ-style envelopes. Anything
// else (extra frames from a confused peer, a non-empty delimiter) is refused with a counted
// FrameError before the payload is decoded.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/wire/frame_error.h"

namespace clisc {

// ZeroMQ routing ids are 1 to 255 bytes.
inline constexpr size_t kMaxRoutingIdBytes = 255;

struct RouterMessage {
  std::string_view identity;  // views into the caller's frames
  std::string_view payload;
};

// Splits frames read from a ROUTER socket.
StatusOr<RouterMessage> ParseRouterFrames(std::span<const std::string_view> frames,
                                          FrameError* reason = nullptr);
// Frames to send from a ROUTER socket to the peer `identity`.
std::vector<std::string> MakeRouterFrames(std::string_view identity, std::string payload);

// Splits frames read from a DEALER socket; returns the payload.
StatusOr<std::string_view> ParseDealerFrames(std::span<const std::string_view> frames,
                                             FrameError* reason = nullptr);
// Frames to send from a DEALER socket.
std::vector<std::string> MakeDealerFrames(std::string payload);

}  // namespace clisc
