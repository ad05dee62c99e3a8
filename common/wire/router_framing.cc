#include "common/wire/router_framing.h"

namespace clisc {
namespace {

Status Refuse(FrameError error, std::string_view detail, FrameError* reason) {
  if (reason != nullptr) *reason = error;
  return FrameErrorStatus(error, detail);
}

}  // namespace

StatusOr<RouterMessage> ParseRouterFrames(std::span<const std::string_view> frames,
                                          FrameError* reason) {
  if (frames.size() != 3) {
    return Refuse(FrameError::kBadFrameCount,
                  "router message has " + std::to_string(frames.size()) +
                      " frames, expected 3 ([identity][empty][payload])",
                  reason);
  }
  if (frames[0].empty() || frames[0].size() > kMaxRoutingIdBytes) {
    return Refuse(FrameError::kBadIdentity,
                  "routing id of " + std::to_string(frames[0].size()) + " bytes", reason);
  }
  if (!frames[1].empty()) {
    return Refuse(FrameError::kBadDelimiter, "delimiter frame is not empty", reason);
  }
  return RouterMessage{frames[0], frames[2]};
}

std::vector<std::string> MakeRouterFrames(std::string_view identity, std::string payload) {
  std::vector<std::string> frames;
  frames.reserve(3);
  frames.emplace_back(identity);
  frames.emplace_back();
  frames.push_back(std::move(payload));
  return frames;
}

StatusOr<std::string_view> ParseDealerFrames(std::span<const std::string_view> frames,
                                             FrameError* reason) {
  if (frames.size() != 2) {
    return Refuse(FrameError::kBadFrameCount,
                  "dealer message has " + std::to_string(frames.size()) +
                      " frames, expected 2 ([empty][payload])",
                  reason);
  }
  if (!frames[0].empty()) {
    return Refuse(FrameError::kBadDelimiter, "delimiter frame is not empty", reason);
  }
  return frames[1];
}

std::vector<std::string> MakeDealerFrames(std::string payload) {
  std::vector<std::string> frames;
  frames.reserve(2);
  frames.emplace_back();
  frames.push_back(std::move(payload));
  return frames;
}

}  // namespace clisc
