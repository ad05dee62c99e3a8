#include "common/wire/frame_validation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "common/wire/frame_codec.h"
#include "common/wire/wire_error.h"
#include "tests/fuzz/sample_envelopes.h"

namespace clisc {
namespace {

using ::clisc::testing::SampleEnvelope;
using Body = wire::Envelope::BodyCase;

// Applies `edit` to the sample of `body`, sends it through the decoder and returns the reason
// it was refused (or fails the test when it was accepted).
FrameError Rejected(Body body, const std::function<void(wire::Envelope&)>& edit) {
  wire::Envelope e = SampleEnvelope(body);
  edit(e);
  std::string bytes = EncodeFrame(e);
  FrameError reason{};
  auto decoded = DecodeFrame(bytes.data(), bytes.size(), FrameLimits(), &reason);
  EXPECT_FALSE(decoded.ok()) << "accepted: " << e.ShortDebugString().substr(0, 300);
  return reason;
}

bool Accepted(Body body, const std::function<void(wire::Envelope&)>& edit) {
  wire::Envelope e = SampleEnvelope(body);
  edit(e);
  std::string bytes = EncodeFrame(e);
  auto decoded = DecodeFrame(bytes.data(), bytes.size());
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  return decoded.ok();
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(FrameValidationTest, HelloRules) {
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->clear_worker_id(); }),
            FrameError::kMissingField);
  EXPECT_EQ(Rejected(Body::kHello,
                     [](auto& e) { e.mutable_hello()->set_worker_id(std::string(257, 'w')); }),
            FrameError::kFieldTooLong);
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->set_worker_id("w\n1"); }),
            FrameError::kBadCharacters);
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->set_protocol_version(9); }),
            FrameError::kInconsistentFields);
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->clear_roles(); }),
            FrameError::kMissingField);
  EXPECT_EQ(Rejected(Body::kHello,
                     [](auto& e) {
                       for (int i = 0; i < 40; ++i)
                         e.mutable_hello()->add_roles("r" + std::to_string(i));
                     }),
            FrameError::kTooManyEntries);
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->add_roles("sam"); }),
            FrameError::kInconsistentFields);
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->add_roles(""); }),
            FrameError::kMissingField);
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->set_slots(0); }),
            FrameError::kBadNumber);
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->set_slots(5000); }),
            FrameError::kBadNumber);
  EXPECT_EQ(Rejected(Body::kHello, [](auto& e) { e.mutable_hello()->clear_device(); }),
            FrameError::kMissingField);
  EXPECT_TRUE(Accepted(Body::kHello, [](auto& e) { e.mutable_hello()->clear_hostname(); }));
}

TEST(FrameValidationTest, HelloAckAndHeartbeatRules) {
  EXPECT_EQ(Rejected(Body::kHelloAck,
                     [](auto& e) { e.mutable_hello_ack()->set_heartbeat_interval_ms(0); }),
            FrameError::kBadNumber);
  EXPECT_EQ(Rejected(Body::kHeartbeat, [](auto& e) { e.mutable_heartbeat()->clear_sender_id(); }),
            FrameError::kMissingField);
  EXPECT_EQ(Rejected(Body::kHeartbeat, [](auto& e) { e.mutable_heartbeat()->set_load(1.5); }),
            FrameError::kBadNumber);
  EXPECT_EQ(Rejected(Body::kHeartbeat, [](auto& e) { e.mutable_heartbeat()->set_load(kNaN); }),
            FrameError::kBadNumber);
  EXPECT_EQ(Rejected(Body::kHeartbeat,
                     [](auto& e) { e.mutable_heartbeat()->mutable_running(0)->set_attempt(0); }),
            FrameError::kBadAttempt);
  EXPECT_TRUE(Accepted(Body::kHeartbeat, [](auto& e) { e.mutable_heartbeat()->clear_running(); }));
}

TEST(FrameValidationTest, TaskAssignRules) {
  EXPECT_EQ(Rejected(Body::kTaskAssign, [](auto& e) { e.mutable_task_assign()->set_attempt(0); }),
            FrameError::kBadAttempt);
  EXPECT_EQ(Rejected(Body::kTaskAssign, [](auto& e) { e.mutable_task_assign()->clear_task_id(); }),
            FrameError::kMissingField);
  EXPECT_EQ(Rejected(Body::kTaskAssign, [](auto& e) { e.mutable_task_assign()->clear_role(); }),
            FrameError::kMissingField);
  for (const char* path : {"../outside", "/etc/passwd", "a/./b", "a//b", "x/.y.clisc-tmp-1"}) {
    EXPECT_EQ(
        Rejected(Body::kTaskAssign,
                 [&](auto& e) { e.mutable_task_assign()->mutable_inputs(0)->set_path(path); }),
        FrameError::kBadPath)
        << path;
  }
  EXPECT_EQ(Rejected(Body::kTaskAssign,
                     [](auto& e) {
                       e.mutable_task_assign()->mutable_inputs(1)->set_path(std::string("a\0b", 3));
                     }),
            FrameError::kBadPath);
  EXPECT_EQ(Rejected(Body::kTaskAssign,
                     [](auto& e) {
                       e.mutable_task_assign()->mutable_expected_outputs(0)->set_path("../../x");
                     }),
            FrameError::kBadPath);
  EXPECT_EQ(Rejected(Body::kTaskAssign,
                     [](auto& e) {
                       e.mutable_task_assign()->mutable_inputs(0)->set_sha256(std::string(64, 'A'));
                     }),
            FrameError::kBadChecksum);
  EXPECT_EQ(Rejected(Body::kTaskAssign,
                     [](auto& e) { e.mutable_task_assign()->mutable_inputs(0)->clear_sha256(); }),
            FrameError::kBadChecksum);
  EXPECT_EQ(Rejected(Body::kTaskAssign,
                     [](auto& e) {
                       auto* m = e.mutable_task_assign();
                       *m->add_inputs() = m->inputs(0);
                     }),
            FrameError::kInconsistentFields);
  EXPECT_EQ(Rejected(Body::kTaskAssign,
                     [](auto& e) {
                       auto* m = e.mutable_task_assign();
                       const int too_many = static_cast<int>(FrameLimits{}.max_artifacts) + 1;
                       for (int i = 0; i < too_many; ++i) {
                         auto* ref = m->add_inputs();
                         *ref = m->inputs(0);
                         ref->set_name("in" + std::to_string(i));
                       }
                     }),
            FrameError::kTooManyEntries);
  // Global tasks (training) have no case.
  EXPECT_TRUE(
      Accepted(Body::kTaskAssign, [](auto& e) { e.mutable_task_assign()->clear_case_id(); }));
}

TEST(FrameValidationTest, ProgressRules) {
  for (double fraction : {-0.01, 1.01, kNaN, std::numeric_limits<double>::infinity()}) {
    EXPECT_EQ(
        Rejected(Body::kProgress, [&](auto& e) { e.mutable_progress()->set_fraction(fraction); }),
        FrameError::kBadNumber)
        << fraction;
  }
  EXPECT_TRUE(Accepted(Body::kProgress, [](auto& e) { e.mutable_progress()->set_fraction(0.0); }));
  EXPECT_TRUE(Accepted(Body::kProgress, [](auto& e) { e.mutable_progress()->set_fraction(1.0); }));
  // A diverging loss is worth reporting.
  EXPECT_TRUE(Accepted(Body::kProgress,
                       [](auto& e) { (*e.mutable_progress()->mutable_metrics())["loss"] = kNaN; }));
  EXPECT_EQ(Rejected(Body::kProgress, [](auto& e) { e.mutable_progress()->set_attempt(0); }),
            FrameError::kBadAttempt);
  EXPECT_EQ(Rejected(Body::kProgress,
                     [](auto& e) { e.mutable_progress()->set_message(std::string(5000, 'm')); }),
            FrameError::kFieldTooLong);
  EXPECT_EQ(Rejected(Body::kProgress,
                     [](auto& e) {
                       for (int i = 0; i < 300; ++i) {
                         (*e.mutable_progress()->mutable_metrics())["m" + std::to_string(i)] = i;
                       }
                     }),
            FrameError::kTooManyEntries);
  EXPECT_EQ(Rejected(Body::kProgress,
                     [](auto& e) { (*e.mutable_progress()->mutable_metrics())[""] = 1; }),
            FrameError::kMissingField);
}

TEST(FrameValidationTest, TaskResultRules) {
  EXPECT_EQ(Rejected(Body::kTaskResult,
                     [](auto& e) {
                       e.mutable_task_result()->mutable_error()->set_code(wire::Error::INTERNAL);
                     }),
            FrameError::kInconsistentFields);
  EXPECT_EQ(Rejected(Body::kTaskResult, [](auto& e) { e.mutable_task_result()->set_ok(false); }),
            FrameError::kInconsistentFields);
  auto failed_with = [](wire::Error::Code code) {
    return [code](wire::Envelope& e) {
      e.mutable_task_result()->set_ok(false);
      e.mutable_task_result()->mutable_error()->set_code(code);
    };
  };
  EXPECT_TRUE(Accepted(Body::kTaskResult, failed_with(wire::Error::UNAVAILABLE)));
  EXPECT_EQ(Rejected(Body::kTaskResult, failed_with(wire::Error::OK)),
            FrameError::kInconsistentFields);
  EXPECT_EQ(Rejected(Body::kTaskResult, failed_with(static_cast<wire::Error::Code>(99))),
            FrameError::kBadNumber);
  EXPECT_EQ(
      Rejected(Body::kTaskResult,
               [](auto& e) { e.mutable_task_result()->mutable_outputs(0)->set_path("/tmp/x"); }),
      FrameError::kBadPath);
}

TEST(FrameValidationTest, ArtifactChunkRules) {
  auto chunk = [](uint64_t offset, uint64_t total, std::string data, bool last) {
    return [=](wire::Envelope& e) {
      auto* m = e.mutable_artifact_chunk();
      m->set_offset(offset);
      m->set_total_size(total);
      m->set_data(data);
      m->set_last(last);
    };
  };
  EXPECT_TRUE(Accepted(Body::kArtifactChunk, chunk(0, 10, "abcd", false)));
  EXPECT_TRUE(Accepted(Body::kArtifactChunk, chunk(0, 0, "", true)));  // empty artifact
  EXPECT_EQ(Rejected(Body::kArtifactChunk, chunk(11, 10, "", false)), FrameError::kBadChunk);
  EXPECT_EQ(Rejected(Body::kArtifactChunk, chunk(8, 10, "abc", false)), FrameError::kBadChunk);
  EXPECT_EQ(Rejected(Body::kArtifactChunk, chunk(0, 10, "abc", true)), FrameError::kBadChunk);
  // Offsets chosen to overflow a naive offset + size.
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(Rejected(Body::kArtifactChunk, chunk(max, max, "ab", false)), FrameError::kBadChunk);
  EXPECT_EQ(
      Rejected(Body::kArtifactChunk, [](auto& e) { e.mutable_artifact_chunk()->clear_sha256(); }),
      FrameError::kBadChecksum);
  EXPECT_EQ(
      Rejected(Body::kArtifactChunk,
               [](auto& e) {
                 e.mutable_artifact_chunk()->mutable_error()->set_code(wire::Error::NOT_FOUND);
               }),
      FrameError::kInconsistentFields);  // an error and data at once
  EXPECT_TRUE(Accepted(Body::kArtifactChunk, [](auto& e) {
    e.mutable_artifact_chunk()->clear_data();
    e.mutable_artifact_chunk()->mutable_error()->set_code(wire::Error::NOT_FOUND);
  }));
  EXPECT_EQ(
      Rejected(Body::kArtifactChunk, [](auto& e) { e.mutable_artifact_chunk()->set_path("../x"); }),
      FrameError::kBadPath);
}

TEST(FrameValidationTest, ArtifactPutAndFetchRules) {
  EXPECT_EQ(
      Rejected(Body::kArtifactPut, [](auto& e) { e.mutable_artifact_put()->clear_task_id(); }),
      FrameError::kMissingField);
  EXPECT_EQ(Rejected(Body::kArtifactPut, [](auto& e) { e.mutable_artifact_put()->set_last(true); }),
            FrameError::kBadChunk);
  EXPECT_EQ(
      Rejected(Body::kArtifactFetch, [](auto& e) { e.mutable_artifact_fetch()->set_max_bytes(0); }),
      FrameError::kBadNumber);
  EXPECT_EQ(Rejected(Body::kArtifactFetch,
                     [](auto& e) { e.mutable_artifact_fetch()->set_max_bytes(uint64_t{1} << 40); }),
            FrameError::kBadNumber);
  EXPECT_EQ(
      Rejected(Body::kArtifactPutAck,
               [](auto& e) {
                 e.mutable_artifact_put_ack()->set_committed(true);
                 e.mutable_artifact_put_ack()->mutable_error()->set_code(wire::Error::DATA_LOSS);
               }),
      FrameError::kInconsistentFields);
}

TEST(FrameValidationTest, ClientMessageRules) {
  EXPECT_EQ(Rejected(Body::kSubmitRun, [](auto& e) { e.mutable_submit_run()->set_resume(true); }),
            FrameError::kMissingField);  // resuming needs the run id
  EXPECT_EQ(
      Rejected(Body::kSubmitRun, [](auto& e) { e.mutable_submit_run()->clear_config_yaml(); }),
      FrameError::kMissingField);
  EXPECT_EQ(Rejected(Body::kSubmitRunAck,
                     [](auto& e) { e.mutable_submit_run_ack()->set_accepted(false); }),
            FrameError::kInconsistentFields);
  EXPECT_EQ(
      Rejected(Body::kCancelRequest, [](auto& e) { e.mutable_cancel_request()->clear_target(); }),
      FrameError::kMissingField);
  EXPECT_EQ(
      Rejected(Body::kCancelRequest, [](auto& e) { e.mutable_cancel_request()->set_task_id(""); }),
      FrameError::kMissingField);
  EXPECT_EQ(
      Rejected(Body::kCancelAck, [](auto& e) { e.mutable_cancel_ack()->set_accepted(false); }),
      FrameError::kInconsistentFields);
  EXPECT_TRUE(
      Accepted(Body::kStatusRequest, [](auto& e) { e.mutable_status_request()->clear_run_id(); }));
}

TEST(FrameValidationTest, SendersCanValidateBeforeSending) {
  wire::Envelope e = SampleEnvelope(Body::kTaskCancel);
  e.mutable_task_cancel()->set_attempt(0);
  FrameError reason{};
  Status status = ValidateEnvelope(e, e.ByteSizeLong(), FrameLimits(), &reason);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reason, FrameError::kBadAttempt);
  EXPECT_NE(status.message().find("task_cancel.attempt"), std::string::npos) << status.message();
}

TEST(WireErrorTest, RoundTripsCodesAndCutsLongMessages) {
  wire::Error error = ToWireError(UnavailableError("worker lost"));
  EXPECT_EQ(error.code(), wire::Error::UNAVAILABLE);
  EXPECT_TRUE(error.retryable());
  Status back = FromWireError(error);
  EXPECT_EQ(back.code(), StatusCode::kUnavailable);
  EXPECT_EQ(back.message(), "worker lost");
  EXPECT_FALSE(ToWireError(InvalidArgumentError("bad config")).retryable());

  // 4095 ASCII bytes then a two-byte character: the cut must not split it.
  std::string message = std::string(4095, 'x') + "\xc3\xa9" + "tail";
  wire::Error cut = ToWireError(InternalError(message));
  EXPECT_EQ(cut.message().size(), 4095u);

  EXPECT_EQ(ToWireError(OkStatus()).code(), wire::Error::UNKNOWN);
  // A Latin-1 path in an error message must not cost the whole result frame.
  wire::Envelope e = SampleEnvelope(Body::kTaskResult);
  e.mutable_task_result()->set_ok(false);
  *e.mutable_task_result()->mutable_error() = ToWireError(NotFoundError("no file caf\xe9.nii"));
  EXPECT_EQ(e.task_result().error().message(), "no file caf?.nii");
  std::string bytes = EncodeFrame(e);
  EXPECT_TRUE(DecodeFrame(bytes.data(), bytes.size()).ok());
  wire::Error weird;
  weird.set_code(static_cast<wire::Error::Code>(77));
  EXPECT_EQ(FromWireError(weird).code(), StatusCode::kUnknown);
  weird.set_code(wire::Error::OK);
  EXPECT_FALSE(FromWireError(weird).ok());
}

TEST(WireErrorTest, SanitizeWireTextKeepsValidUtf8AndReplacesTheRest) {
  EXPECT_EQ(SanitizeWireText("plain", 100), "plain");
  EXPECT_EQ(SanitizeWireText("\xc3\xa9t\xc3\xa9", 100), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(SanitizeWireText("\xf0\x9f\x98\x80", 100), "\xf0\x9f\x98\x80");  // 4-byte character
  EXPECT_EQ(SanitizeWireText("a\xc3", 100), "a?");                           // truncated sequence
  EXPECT_EQ(SanitizeWireText("\xc0\xaf", 100), "??");                        // overlong '/'
  EXPECT_EQ(SanitizeWireText("\xed\xa0\x80", 100), "???");                   // surrogate
  EXPECT_EQ(SanitizeWireText("\xf4\x90\x80\x80", 100), "????");              // above U+10FFFF
  EXPECT_EQ(SanitizeWireText("ab\xc3\xa9", 3), "ab");                        // no split character
}

}  // namespace
}  // namespace clisc
