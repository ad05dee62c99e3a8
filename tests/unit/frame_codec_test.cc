#include "common/wire/frame_codec.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <array>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/wire/frame_validation.h"
#include "common/wire/router_framing.h"
#include "tests/fuzz/sample_envelopes.h"

namespace clisc {
namespace {

using ::clisc::testing::AllBodyCases;
using ::clisc::testing::AllSampleEnvelopes;
using ::clisc::testing::SampleEnvelope;
using ::google::protobuf::util::MessageDifferencer;

FrameError DecodeReason(const std::string& bytes, const FrameLimits& limits = FrameLimits()) {
  FrameError reason{};
  auto decoded = DecodeFrame(bytes.data(), bytes.size(), limits, &reason);
  EXPECT_FALSE(decoded.ok()) << "frame unexpectedly accepted";
  if (!decoded.ok()) {
    // The Status names the reason, so a log line alone tells what was dropped.
    EXPECT_EQ(decoded.status().message().rfind(std::string(FrameErrorName(reason)) + ":", 0), 0u)
        << decoded.status().message();
  }
  return reason;
}

// A length-delimited field in raw protobuf encoding (field numbers < 16, lengths < 128).
std::string RawField(int number, std::string_view payload) {
  std::string out;
  out.push_back(static_cast<char>((number << 3) | 2));
  out.push_back(static_cast<char>(payload.size()));
  out.append(payload);
  return out;
}

TEST(FrameCodecTest, EveryMessageTypeHasAValidSample) {
  for (auto body : AllBodyCases()) {
    wire::Envelope e = SampleEnvelope(body);
    ASSERT_EQ(e.body_case(), body)
        << "add a sample for envelope field " << body << " to tests/fuzz/sample_envelopes.h";
    FrameError reason{};
    Status status = ValidateEnvelope(e, e.ByteSizeLong(), FrameLimits(), &reason);
    EXPECT_TRUE(status.ok()) << status.ToString();
  }
}

TEST(FrameCodecTest, RoundTripsEveryMessageType) {
  for (const wire::Envelope& e : AllSampleEnvelopes()) {
    std::string bytes = EncodeFrame(e);
    auto decoded = DecodeFrame(bytes.data(), bytes.size());
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_TRUE(MessageDifferencer::Equals(*decoded, e)) << e.ShortDebugString();
  }
}

TEST(FrameCodecTest, NewEnvelopeCarriesTheProtocolVersion) {
  EXPECT_EQ(NewEnvelope(7).protocol_version(), kProtocolVersion);
  EXPECT_EQ(NewEnvelope(7).seq(), 7u);
}

TEST(FrameCodecTest, EmptyFrameIsRefused) {
  EXPECT_EQ(DecodeReason(""), FrameError::kEmptyFrame);
  FrameError reason{};
  EXPECT_FALSE(DecodeFrame(nullptr, 0, FrameLimits(), &reason).ok());
  EXPECT_EQ(reason, FrameError::kEmptyFrame);
}

TEST(FrameCodecTest, HardCapIsCheckedBeforeParsing) {
  FrameLimits limits;
  limits.max_frame_bytes = 100;
  // Valid protobuf, but over the cap: refused by size, not parsed.
  std::string bytes = EncodeFrame(SampleEnvelope(wire::Envelope::kTaskAssign));
  ASSERT_GT(bytes.size(), 100u);
  EXPECT_EQ(DecodeReason(bytes, limits), FrameError::kFrameTooLarge);

  std::string huge((size_t{64} << 20) + 1, '\0');
  FrameError reason{};
  auto decoded = DecodeFrame(huge.data(), huge.size(), FrameLimits(), &reason);
  EXPECT_EQ(reason, FrameError::kFrameTooLarge);
  EXPECT_EQ(decoded.status().code(), StatusCode::kResourceExhausted);
}

TEST(FrameCodecTest, GarbageFailsToParse) {
  EXPECT_EQ(DecodeReason("\xff\xff\xff\xff"), FrameError::kParseFailed);
  EXPECT_EQ(DecodeReason(std::string("\x0a\x7f", 2)), FrameError::kParseFailed);  // short field
}

TEST(FrameCodecTest, InvalidUtf8InAStringFieldFailsToParse) {
  wire::Envelope e = SampleEnvelope(wire::Envelope::kHeartbeat);
  e.mutable_heartbeat()->set_sender_id("node\xc3");  // serializes; the receiver must refuse
  EXPECT_EQ(DecodeReason(EncodeFrame(e)), FrameError::kParseFailed);
}

TEST(FrameCodecTest, ProtocolVersionMismatchNamesBothVersions) {
  wire::Envelope e = SampleEnvelope(wire::Envelope::kHello);
  e.set_protocol_version(kProtocolVersion + 1);
  std::string bytes = EncodeFrame(e);
  FrameError reason{};
  auto decoded = DecodeFrame(bytes.data(), bytes.size(), FrameLimits(), &reason);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(reason, FrameError::kProtocolVersionMismatch);
  EXPECT_EQ(decoded.status().code(), StatusCode::kFailedPrecondition);
  const std::string& message = decoded.status().message();
  EXPECT_NE(message.find("version " + std::to_string(kProtocolVersion + 1)), std::string::npos);
  EXPECT_NE(message.find("version " + std::to_string(kProtocolVersion)), std::string::npos);

  e.clear_protocol_version();  // a peer that sends none at all
  EXPECT_EQ(DecodeReason(EncodeFrame(e)), FrameError::kProtocolVersionMismatch);
}

TEST(FrameCodecTest, MissingBodyIsRefused) {
  EXPECT_EQ(DecodeReason(EncodeFrame(NewEnvelope(1))), FrameError::kMissingBody);
  // An unknown header field (3..9) is not a message type.
  EXPECT_EQ(DecodeReason(EncodeFrame(NewEnvelope(1)) + RawField(5, "trace")),
            FrameError::kMissingBody);
}

TEST(FrameCodecTest, UnknownMessageTypeFromANewerPeerIsRefusedCleanly) {
  // What a newer peer's envelope with body field 15 looks like to this build.
  std::string bytes = EncodeFrame(NewEnvelope(1)) + RawField(15, RawField(1, "x"));
  FrameError reason{};
  auto decoded = DecodeFrame(bytes.data(), bytes.size(), FrameLimits(), &reason);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(reason, FrameError::kUnknownMessageType);
  EXPECT_EQ(decoded.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(decoded.status().message().find("field 15"), std::string::npos);
}

TEST(FrameCodecTest, UnknownFieldsInsideAKnownMessageAreTolerated) {
  // Adding a field to a message does not bump the protocol version (schemas/clisc.proto).
  wire::Envelope e = SampleEnvelope(wire::Envelope::kDisconnect);
  std::string body = e.disconnect().SerializeAsString() + RawField(9, "new");
  std::string bytes = EncodeFrame(NewEnvelope(1)) + RawField(14, body);
  auto decoded = DecodeFrame(bytes.data(), bytes.size());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->disconnect().sender_id(), "node7-gpu2");
}

TEST(FrameCodecTest, SizeLimitDependsOnTheMessageType) {
  FrameLimits limits;
  // A 2 MiB chunk is fine...
  wire::Envelope chunk = SampleEnvelope(wire::Envelope::kArtifactChunk);
  chunk.mutable_artifact_chunk()->set_offset(0);
  chunk.mutable_artifact_chunk()->set_data(std::string(2 << 20, 'v'));
  chunk.mutable_artifact_chunk()->set_total_size(2 << 20);
  std::string bytes = EncodeFrame(chunk);
  EXPECT_TRUE(DecodeFrame(bytes.data(), bytes.size(), limits).ok());
  // ...a 2 MiB progress report is not, even before its fields are looked at.
  wire::Envelope progress = SampleEnvelope(wire::Envelope::kProgress);
  progress.mutable_progress()->set_message(std::string(2 << 20, 'm'));
  EXPECT_EQ(DecodeReason(EncodeFrame(progress), limits), FrameError::kTooLargeForType);
  // Status replies get the bulk limit.
  wire::Envelope reply = SampleEnvelope(wire::Envelope::kStatusReply);
  reply.mutable_status_reply()->set_json(std::string(2 << 20, ' '));
  bytes = EncodeFrame(reply);
  EXPECT_TRUE(DecodeFrame(bytes.data(), bytes.size(), limits).ok());
  EXPECT_EQ(FrameLimitFor(wire::Envelope::kHello, limits), limits.max_control_frame_bytes);
}

TEST(FrameCodecTest, DropCountersCountPerReason) {
  FrameDropCounters counters;
  for (const std::string& bytes : {std::string(), std::string("\xff"), std::string()}) {
    FrameError reason{};
    if (!DecodeFrame(bytes.data(), bytes.size(), FrameLimits(), &reason).ok()) {
      counters.Record(reason);
    }
  }
  EXPECT_EQ(counters.count(FrameError::kEmptyFrame), 2u);
  EXPECT_EQ(counters.count(FrameError::kParseFailed), 1u);
  EXPECT_EQ(counters.total(), 3u);
  auto nonzero = counters.NonZero();
  ASSERT_EQ(nonzero.size(), 2u);
  EXPECT_EQ(nonzero[0].first, "empty_frame");
}

TEST(FrameCodecTest, EveryReasonHasADistinctName) {
  std::map<std::string_view, int> seen;
  for (size_t i = 0; i < kFrameErrorCount; ++i) {
    std::string_view name = FrameErrorName(static_cast<FrameError>(i));
    EXPECT_NE(name, "unknown_frame_error");
    EXPECT_EQ(++seen[name], 1) << name;
  }
}

TEST(RouterFramingTest, RouterFramesRoundTrip) {
  std::vector<std::string> frames = MakeRouterFrames("worker-1", "payload");
  std::vector<std::string_view> views(frames.begin(), frames.end());
  auto parsed = ParseRouterFrames(views);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->identity, "worker-1");
  EXPECT_EQ(parsed->payload, "payload");
}

TEST(RouterFramingTest, RouterFrameShapeIsChecked) {
  FrameError reason{};
  std::vector<std::string_view> two = {"id", "payload"};
  EXPECT_FALSE(ParseRouterFrames(two, &reason).ok());
  EXPECT_EQ(reason, FrameError::kBadFrameCount);
  std::vector<std::string_view> four = {"id", "", "payload", "extra"};
  EXPECT_FALSE(ParseRouterFrames(four, &reason).ok());
  EXPECT_EQ(reason, FrameError::kBadFrameCount);
  std::vector<std::string_view> delimiter = {"id", "x", "payload"};
  EXPECT_FALSE(ParseRouterFrames(delimiter, &reason).ok());
  EXPECT_EQ(reason, FrameError::kBadDelimiter);
  std::string long_id(256, 'i');
  std::vector<std::string_view> identity = {long_id, "", "payload"};
  EXPECT_FALSE(ParseRouterFrames(identity, &reason).ok());
  EXPECT_EQ(reason, FrameError::kBadIdentity);
  std::vector<std::string_view> empty_id = {"", "", "payload"};
  EXPECT_FALSE(ParseRouterFrames(empty_id, &reason).ok());
  EXPECT_EQ(reason, FrameError::kBadIdentity);
  EXPECT_FALSE(ParseRouterFrames({}, &reason).ok());
}

TEST(RouterFramingTest, DealerFrames) {
  std::vector<std::string> frames = MakeDealerFrames("payload");
  std::vector<std::string_view> views(frames.begin(), frames.end());
  auto payload = ParseDealerFrames(views);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(*payload, "payload");
  FrameError reason{};
  std::vector<std::string_view> bare = {"payload"};
  EXPECT_FALSE(ParseDealerFrames(bare, &reason).ok());
  EXPECT_EQ(reason, FrameError::kBadFrameCount);
  std::vector<std::string_view> delimiter = {"x", "payload"};
  EXPECT_FALSE(ParseDealerFrames(delimiter, &reason).ok());
  EXPECT_EQ(reason, FrameError::kBadDelimiter);
}

// ----- Robustness: random and mutated frames -----

class FrameMutator {
 public:
  explicit FrameMutator(uint32_t seed) : rng_(seed), samples_(AllSampleEnvelopes()) {
    for (const wire::Envelope& e : samples_) seeds_.push_back(EncodeFrame(e));
  }

  std::string Next() {
    switch (Below(10)) {
      case 8:
      case 9:
        return FieldMutation();
      case 0:
        return RandomBytes(Below(300));
      case 1:
        return FlipBits(Seed());
      case 2: {
        std::string s = Seed();
        s.resize(Below(s.size() + 1));
        return s;
      }
      case 3:
        return Seed() + RandomBytes(1 + Below(40));
      case 4:
        return LengthGame(Seed());
      case 5:
        return Splice(Seed(), Seed());
      case 6:
        return FlipBits(LengthGame(Seed()));
      default:
        return OverwriteByte(Seed());
    }
  }

 private:
  size_t Below(size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }
  const std::string& Seed() { return seeds_[Below(seeds_.size())]; }

  std::string RandomBytes(size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(Below(256));
    return s;
  }
  std::string FlipBits(std::string s) {
    if (s.empty()) return s;
    for (size_t flips = 1 + Below(4); flips > 0; --flips)
      s[Below(s.size())] ^= static_cast<char>(1 << Below(8));
    return s;
  }
  std::string OverwriteByte(std::string s) {
    static constexpr std::array<char, 6> kEdges = {'\x00', '\x01', '\x7f', '\x80', '\xff', '\x0a'};
    if (!s.empty()) s[Below(s.size())] = kEdges[Below(kEdges.size())];
    return s;
  }
  // Lies about lengths: huge or truncated varints, and length prefixes bumped up or down.
  std::string LengthGame(std::string s) {
    static const std::array<std::string, 4> kVarints = {"\xff\xff\xff\xff\x0f",
                                                        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                                                        "\x80", "\xfe\xff\xff\xff\x07"};
    size_t pos = Below(s.size() + 1);
    if (Below(2) == 0) return s.insert(pos, kVarints[Below(kVarints.size())]);
    if (!s.empty()) {
      pos = std::min(pos, s.size() - 1);
      s[pos] = static_cast<char>(static_cast<unsigned char>(s[pos]) + (Below(2) ? 1 : -1));
    }
    return s;
  }
  std::string Splice(const std::string& a, const std::string& b) {
    return a.substr(0, Below(a.size() + 1)) + b.substr(Below(b.size() + 1));
  }

  // Well-formed protobuf with hostile values: exercises the semantic rules, not the parser.
  std::string FieldMutation() {
    wire::Envelope e = samples_[Below(samples_.size())];
    for (size_t n = 1 + Below(3); n > 0; --n) MutateField(&e, 0);
    return EncodeFrame(e);
  }
  void MutateField(google::protobuf::Message* m, int depth) {
    using google::protobuf::FieldDescriptor;
    const auto* descriptor = m->GetDescriptor();
    const auto* reflection = m->GetReflection();
    const FieldDescriptor* f =
        descriptor->field(static_cast<int>(Below(descriptor->field_count())));
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (depth >= 3) return;
      google::protobuf::Message* child =
          f->is_repeated() ? reflection->AddMessage(m, f) : reflection->MutableMessage(m, f);
      for (int i = 0; i < child->GetDescriptor()->field_count(); ++i) {
        if (Below(2) == 0) MutateField(child, depth + 1);
      }
      return;
    }
    if (f->is_repeated()) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        for (size_t n = Below(40); n > 0; --n) reflection->AddString(m, f, HostileString());
      }
      return;
    }
    static constexpr std::array<uint64_t, 5> kIntegers = {0, 1, 2, 0xffffffffu, ~uint64_t{0}};
    static constexpr std::array<double, 7> kDoubles = {0.0,
                                                       1.0,
                                                       -0.5,
                                                       1.5,
                                                       1e308,
                                                       std::numeric_limits<double>::quiet_NaN(),
                                                       std::numeric_limits<double>::infinity()};
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(m, f, HostileString());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        reflection->SetUInt32(m, f, static_cast<uint32_t>(kIntegers[Below(kIntegers.size())]));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        reflection->SetUInt64(m, f, kIntegers[Below(kIntegers.size())]);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        reflection->SetDouble(m, f, kDoubles[Below(kDoubles.size())]);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        reflection->SetBool(m, f, !reflection->GetBool(*m, f));
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        reflection->SetEnumValue(m, f, static_cast<int>(Below(20)) - 2);
        break;
      default:
        break;
    }
  }
  std::string HostileString() {
    static const std::array<std::string, 10> kStrings = {"",
                                                         "..",
                                                         "/etc/passwd",
                                                         "a/../../b",
                                                         "ok-id",
                                                         "x\x01y",
                                                         std::string(5000, 'L'),
                                                         "cases/001/t1.nii.gz",
                                                         std::string(64, 'f'),
                                                         "a//b"};
    return kStrings[Below(kStrings.size())];
  }

  std::mt19937 rng_;
  std::vector<wire::Envelope> samples_;
  std::vector<std::string> seeds_;
};

TEST(FrameCodecFuzzTest, TwoHundredThousandHostileFramesNeverCrash) {
  FrameMutator mutator(20240607);
  std::map<std::string_view, int> reasons;
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string frame = mutator.Next();
    FrameError reason = FrameError::kBadIdentity;  // not a decoder reason: must be overwritten
    auto decoded = DecodeFrame(frame.data(), frame.size(), FrameLimits(), &reason);
    if (decoded.ok()) {
      ++accepted;
      // What the decoder accepts, a sender can re-encode and the decoder accepts again.
      std::string again = EncodeFrame(*decoded);
      ASSERT_TRUE(DecodeFrame(again.data(), again.size()).ok()) << decoded->ShortDebugString();
      continue;
    }
    ASSERT_NE(reason, FrameError::kBadIdentity) << decoded.status().ToString();
    ASSERT_EQ(decoded.status().message().rfind(std::string(FrameErrorName(reason)), 0), 0u);
    ++reasons[FrameErrorName(reason)];
  }
  for (const auto& [name, count] : reasons)
    std::printf("  %-28s %d\n", std::string(name).c_str(), count);
  std::printf("  %-28s %d\n", "accepted", accepted);
  // The mutations reach past the parser into the semantic rules.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(reasons["parse_failed"], 1000);
  EXPECT_GE(reasons.size(), 8u);
}

}  // namespace
}  // namespace clisc
