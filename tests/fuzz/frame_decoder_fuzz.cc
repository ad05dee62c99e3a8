// libFuzzer target for the frame decoder: any byte string must come back as an Envelope or as
// a Status with a FrameError, never as a crash, a sanitizer report or a leak. Accepted frames
// must survive a re-encode (what we accept, we can forward). The same bytes also go through the
// multipart parsers, split into frames by the first bytes of the input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/wire/frame_codec.h"
#include "common/wire/router_framing.h"

namespace {

void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "frame_decoder_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

void FuzzDecoder(const uint8_t* data, size_t size) {
  constexpr auto kNotADecoderReason = clisc::FrameError::kBadIdentity;
  clisc::FrameError reason = kNotADecoderReason;
  auto decoded = clisc::DecodeFrame(data, size, clisc::FrameLimits(), &reason);
  if (!decoded.ok()) {
    if (reason == kNotADecoderReason)
      Fail("rejection without a reason", decoded.status().ToString());
    std::string prefix = std::string(clisc::FrameErrorName(reason)) + ":";
    if (decoded.status().message().rfind(prefix, 0) != 0) {
      Fail("status does not name its reason", decoded.status().ToString());
    }
    return;
  }
  std::string again = clisc::EncodeFrame(*decoded);
  auto twice = clisc::DecodeFrame(again.data(), again.size());
  if (!twice.ok()) Fail("re-encoded frame refused", twice.status().ToString());
}

void FuzzMultipart(const uint8_t* data, size_t size) {
  if (size == 0) return;
  // First byte: frame count (0..4); each frame then takes a one-byte length prefix.
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> frames;
  for (int i = 0; i < data[0] % 5 && !rest.empty(); ++i) {
    size_t length = std::min<size_t>(static_cast<unsigned char>(rest[0]), rest.size() - 1);
    frames.push_back(rest.substr(1, length));
    rest.remove_prefix(1 + length);
  }
  (void)clisc::ParseRouterFrames(frames);
  (void)clisc::ParseDealerFrames(frames);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzDecoder(data, size);
  FuzzMultipart(data, size);
  return 0;
}
