#include "common/wire/frame_validation.h"

#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/artifact_store.h"
#include "common/sha256.h"

namespace clisc {
namespace {

// Collects the first failed rule; later checks are no-ops once one failed, so each validator
// reads as a flat list of rules.
class Checker {
 public:
  explicit Checker(const FrameLimits& limits) : limits_(limits) {}

  bool failed() const { return reason_.has_value(); }
  const FrameLimits& limits() const { return limits_; }

  void Fail(FrameError reason, std::string detail) {
    if (failed()) return;
    reason_ = reason;
    detail_ = std::move(detail);
  }

  Status ToStatus(FrameError* reason) const {
    if (!failed()) return OkStatus();
    if (reason != nullptr) *reason = *reason_;
    return FrameErrorStatus(*reason_, detail_);
  }

  // Ids and names end up in logs, ledger rows and Redis keys: bounded, no control characters.
  void Identifier(const std::string& field, const std::string& value, size_t max_bytes,
                  bool required) {
    if (failed()) return;
    if (value.empty()) {
      if (required) Fail(FrameError::kMissingField, field + " is empty");
      return;
    }
    if (value.size() > max_bytes) {
      Fail(FrameError::kFieldTooLong, field + " has " + std::to_string(value.size()) +
                                          " bytes, limit " + std::to_string(max_bytes));
      return;
    }
    for (char c : value) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        Fail(FrameError::kBadCharacters, field + " contains a control character");
        return;
      }
    }
  }
  void Id(const std::string& field, const std::string& value, bool required = true) {
    Identifier(field, value, limits_.max_id_bytes, required);
  }
  void Name(const std::string& field, const std::string& value, bool required = true) {
    Identifier(field, value, limits_.max_name_bytes, required);
  }

  void Text(const std::string& field, const std::string& value) {
    if (failed() || value.size() <= limits_.max_text_bytes) return;
    Fail(FrameError::kFieldTooLong, field + " has " + std::to_string(value.size()) +
                                        " bytes, limit " + std::to_string(limits_.max_text_bytes));
  }

  void Attempt(const std::string& field, uint32_t attempt) {
    if (!failed() && attempt < 1) Fail(FrameError::kBadAttempt, field + " must be >= 1");
  }

  void Count(const std::string& field, size_t count, size_t max) {
    if (failed() || count <= max) return;
    Fail(FrameError::kTooManyEntries,
         field + " has " + std::to_string(count) + " entries, limit " + std::to_string(max));
  }

  void Path(const std::string& field, const std::string& value) {
    if (failed()) return;
    if (value.empty()) {
      Fail(FrameError::kMissingField, field + " is empty");
      return;
    }
    Status status = ValidateArtifactPath(value);
    if (!status.ok()) Fail(FrameError::kBadPath, field + ": " + status.message());
  }

  void Checksum(const std::string& field, const std::string& value, bool required) {
    if (failed() || (value.empty() && !required)) return;
    if (!IsSha256Hex(value)) {
      Fail(FrameError::kBadChecksum, field + " is not 64 lowercase hex characters");
    }
  }

  void UnitInterval(const std::string& field, double value) {
    if (failed() || (std::isfinite(value) && value >= 0.0 && value <= 1.0)) return;
    Fail(FrameError::kBadNumber, field + " must be in [0, 1]");
  }

  void Metrics(const std::string& field,
               const google::protobuf::Map<std::string, double>& metrics) {
    Count(field, metrics.size(), limits_.max_metrics);
    for (const auto& [key, value] : metrics) Name(field + " key", key);
  }

  void Error(const std::string& field, const wire::Error& error) {
    if (failed()) return;
    if (error.code() == wire::Error::OK) {
      Fail(FrameError::kInconsistentFields, field + ".code is OK in an error");
    } else if (!wire::Error::Code_IsValid(error.code())) {
      Fail(FrameError::kBadNumber,
           field + ".code " + std::to_string(static_cast<int>(error.code())) + " is unknown");
    }
    Text(field + ".message", error.message());
  }

  void Artifact(const std::string& field, const wire::ArtifactRef& ref) {
    Name(field + ".name", ref.name());
    Path(field + ".path", ref.path());
    Checksum(field + ".sha256", ref.sha256(), /*required=*/true);
  }

  template <typename Repeated, typename CheckOne>
  void Artifacts(const std::string& field, const Repeated& items, CheckOne check_one) {
    Count(field, items.size(), limits_.max_artifacts);
    std::set<std::string_view> names;
    for (int i = 0; i < items.size() && !failed(); ++i) {
      check_one(field + "[" + std::to_string(i) + "]", items[i]);
      if (!failed() && !names.insert(items[i].name()).second) {
        Fail(FrameError::kInconsistentFields,
             field + " repeats the name '" + items[i].name() + "'");
      }
    }
  }

 private:
  const FrameLimits& limits_;
  std::optional<FrameError> reason_;
  std::string detail_;
};

void CheckHello(const wire::Hello& m, uint32_t envelope_version, Checker& c) {
  c.Id("hello.worker_id", m.worker_id());
  if (!c.failed() && m.protocol_version() != envelope_version) {
    c.Fail(FrameError::kInconsistentFields,
           "hello.protocol_version " + std::to_string(m.protocol_version()) +
               " differs from the envelope's " + std::to_string(envelope_version));
  }
  if (!c.failed() && m.roles().empty()) c.Fail(FrameError::kMissingField, "hello.roles is empty");
  c.Count("hello.roles", m.roles().size(), c.limits().max_roles);
  std::set<std::string_view> roles;
  for (const std::string& role : m.roles()) {
    c.Name("hello.roles[]", role);
    if (!c.failed() && !roles.insert(role).second) {
      c.Fail(FrameError::kInconsistentFields, "hello.roles repeats '" + role + "'");
    }
  }
  c.Name("hello.device", m.device());
  if (!c.failed() && (m.slots() < 1 || m.slots() > c.limits().max_slots)) {
    c.Fail(FrameError::kBadNumber,
           "hello.slots must be in [1, " + std::to_string(c.limits().max_slots) + "]");
  }
  c.Name("hello.hostname", m.hostname(), /*required=*/false);
  c.Text("hello.capabilities.artifact_root", m.capabilities().artifact_root());
  c.Name("hello.capabilities.software_version", m.capabilities().software_version(), false);
  c.Count("hello.running", m.running().size(), c.limits().max_leases);
  for (const wire::LeaseRef& lease : m.running()) {
    c.Id("hello.running[].task_id", lease.task_id());
    c.Attempt("hello.running[].attempt", lease.attempt());
  }
}

void CheckHelloAck(const wire::HelloAck& m, uint32_t envelope_version, Checker& c) {
  c.Id("hello_ack.coordinator_id", m.coordinator_id());
  if (!c.failed() && m.protocol_version() != envelope_version) {
    c.Fail(FrameError::kInconsistentFields,
           "hello_ack.protocol_version differs from the envelope's");
  }
  if (!c.failed() && (m.heartbeat_interval_ms() == 0 || m.heartbeat_liveness() == 0)) {
    c.Fail(FrameError::kBadNumber, "hello_ack heartbeat interval and liveness must be positive");
  }
  c.Id("hello_ack.run_id", m.run_id(), /*required=*/false);
}

void CheckHeartbeat(const wire::Heartbeat& m, Checker& c) {
  c.Id("heartbeat.sender_id", m.sender_id());
  c.Count("heartbeat.running", m.running().size(), c.limits().max_leases);
  for (const wire::LeaseRef& lease : m.running()) {
    c.Id("heartbeat.running[].task_id", lease.task_id());
    c.Attempt("heartbeat.running[].attempt", lease.attempt());
  }
  c.UnitInterval("heartbeat.load", m.load());
}

void CheckTaskAssign(const wire::TaskAssign& m, Checker& c) {
  c.Id("task_assign.task_id", m.task_id());
  c.Attempt("task_assign.attempt", m.attempt());
  c.Name("task_assign.role", m.role());
  c.Name("task_assign.stage", m.stage());
  c.Id("task_assign.case_id", m.case_id(), /*required=*/false);
  c.Id("task_assign.run_id", m.run_id(), /*required=*/false);
  c.Artifacts("task_assign.inputs", m.inputs(),
              [&](const std::string& f, const wire::ArtifactRef& a) { c.Artifact(f, a); });
  c.Artifacts("task_assign.expected_outputs", m.expected_outputs(),
              [&](const std::string& f, const wire::ExpectedOutput& o) {
                c.Name(f + ".name", o.name());
                c.Path(f + ".path", o.path());
              });
}

void CheckTaskResult(const wire::TaskResult& m, Checker& c) {
  c.Id("task_result.task_id", m.task_id());
  c.Attempt("task_result.attempt", m.attempt());
  if (!c.failed() && m.ok() == m.has_error()) {
    c.Fail(FrameError::kInconsistentFields, m.ok() ? "task_result is ok but carries an error"
                                                   : "task_result failed without an error");
  }
  if (m.has_error()) c.Error("task_result.error", m.error());
  c.Artifacts("task_result.outputs", m.outputs(),
              [&](const std::string& f, const wire::ArtifactRef& a) { c.Artifact(f, a); });
  c.Metrics("task_result.metrics", m.metrics());
}

// Shared by ArtifactChunk and ArtifactPut: the data must lie inside the declared size and the
// last chunk must end exactly there and carry the whole artifact's checksum.
template <typename ChunkMessage>
void CheckChunkGeometry(const std::string& field, const ChunkMessage& m, Checker& c) {
  c.Path(field + ".path", m.path());
  if (c.failed()) return;
  const uint64_t data_size = m.data().size();
  if (data_size > c.limits().max_chunk_data_bytes()) {
    c.Fail(FrameError::kBadChunk, field + ".data exceeds the chunk size limit");
  } else if (m.offset() > m.total_size() || data_size > m.total_size() - m.offset()) {
    c.Fail(FrameError::kBadChunk, field + " [" + std::to_string(m.offset()) + ", +" +
                                      std::to_string(data_size) + ") runs past total_size " +
                                      std::to_string(m.total_size()));
  } else if (m.last() && m.offset() + data_size != m.total_size()) {
    c.Fail(FrameError::kBadChunk, field + " is marked last but ends before total_size");
  }
  c.Checksum(field + ".sha256", m.sha256(), /*required=*/m.last());
}

void CheckArtifactChunk(const wire::ArtifactChunk& m, Checker& c) {
  if (m.has_error()) {
    c.Path("artifact_chunk.path", m.path());
    c.Error("artifact_chunk.error", m.error());
    if (!c.failed() && !m.data().empty()) {
      c.Fail(FrameError::kInconsistentFields, "artifact_chunk carries both an error and data");
    }
    return;
  }
  CheckChunkGeometry("artifact_chunk", m, c);
}

void CheckArtifactPut(const wire::ArtifactPut& m, Checker& c) {
  CheckChunkGeometry("artifact_put", m, c);
  c.Id("artifact_put.task_id", m.task_id());
  c.Attempt("artifact_put.attempt", m.attempt());
}

void CheckArtifactFetch(const wire::ArtifactFetch& m, Checker& c) {
  c.Path("artifact_fetch.path", m.path());
  if (!c.failed() && (m.max_bytes() < 1 || m.max_bytes() > c.limits().max_chunk_data_bytes())) {
    c.Fail(FrameError::kBadNumber, "artifact_fetch.max_bytes must be in [1, " +
                                       std::to_string(c.limits().max_chunk_data_bytes()) + "]");
  }
  c.Id("artifact_fetch.task_id", m.task_id());
  c.Attempt("artifact_fetch.attempt", m.attempt());
}

// An acknowledgement that refuses must say why.
void CheckAck(const std::string& field, bool accepted, bool has_error, const wire::Error& error,
              Checker& c) {
  if (!c.failed() && accepted == has_error) {
    c.Fail(FrameError::kInconsistentFields, accepted ? field + " accepted but carries an error"
                                                     : field + " refused without an error");
  }
  if (has_error) c.Error(field + ".error", error);
}

void CheckBody(const wire::Envelope& e, Checker& c) {
  using wire::Envelope;
  switch (e.body_case()) {
    case Envelope::kHello:
      return CheckHello(e.hello(), e.protocol_version(), c);
    case Envelope::kHelloAck:
      return CheckHelloAck(e.hello_ack(), e.protocol_version(), c);
    case Envelope::kRefused:
      return c.Text("refused.reason", e.refused().reason());
    case Envelope::kHeartbeat:
      return CheckHeartbeat(e.heartbeat(), c);
    case Envelope::kDisconnect:
      c.Id("disconnect.sender_id", e.disconnect().sender_id());
      return c.Text("disconnect.reason", e.disconnect().reason());
    case Envelope::kTaskAssign:
      return CheckTaskAssign(e.task_assign(), c);
    case Envelope::kTaskCancel:
      c.Id("task_cancel.task_id", e.task_cancel().task_id());
      c.Attempt("task_cancel.attempt", e.task_cancel().attempt());
      return c.Text("task_cancel.reason", e.task_cancel().reason());
    case Envelope::kProgress:
      c.Id("progress.task_id", e.progress().task_id());
      c.Attempt("progress.attempt", e.progress().attempt());
      c.UnitInterval("progress.fraction", e.progress().fraction());
      c.Text("progress.message", e.progress().message());
      return c.Metrics("progress.metrics", e.progress().metrics());
    case Envelope::kTaskResult:
      return CheckTaskResult(e.task_result(), c);
    case Envelope::kArtifactFetch:
      return CheckArtifactFetch(e.artifact_fetch(), c);
    case Envelope::kArtifactChunk:
      return CheckArtifactChunk(e.artifact_chunk(), c);
    case Envelope::kArtifactPut:
      return CheckArtifactPut(e.artifact_put(), c);
    case Envelope::kArtifactPutAck: {
      const wire::ArtifactPutAck& m = e.artifact_put_ack();
      c.Path("artifact_put_ack.path", m.path());
      if (!c.failed() && m.committed() && m.has_error()) {
        c.Fail(FrameError::kInconsistentFields, "artifact_put_ack committed with an error");
      }
      if (m.has_error()) c.Error("artifact_put_ack.error", m.error());
      return;
    }
    case Envelope::kStatusRequest:
      return c.Id("status_request.run_id", e.status_request().run_id(), false);
    case Envelope::kStatusReply:
      if (e.status_reply().has_error()) c.Error("status_reply.error", e.status_reply().error());
      return;
    case Envelope::kSubmitRun: {
      const wire::SubmitRun& m = e.submit_run();
      c.Id("submit_run.run_id", m.run_id(), /*required=*/m.resume());
      if (!c.failed() && !m.resume() && m.config_yaml().empty()) {
        c.Fail(FrameError::kMissingField, "submit_run.config_yaml is empty");
      }
      if (!c.failed() && !m.resume() && m.dataset_dir().empty()) {
        c.Fail(FrameError::kMissingField, "submit_run.dataset_dir is empty");
      }
      return c.Text("submit_run.dataset_dir", m.dataset_dir());
    }
    case Envelope::kSubmitRunAck: {
      const wire::SubmitRunAck& m = e.submit_run_ack();
      c.Id("submit_run_ack.run_id", m.run_id(), /*required=*/m.accepted());
      return CheckAck("submit_run_ack", m.accepted(), m.has_error(), m.error(), c);
    }
    case Envelope::kCancelRequest: {
      const wire::CancelRequest& m = e.cancel_request();
      if (m.target_case() == wire::CancelRequest::kRunId)
        c.Id("cancel_request.run_id", m.run_id());
      else if (m.target_case() == wire::CancelRequest::kTaskId)
        c.Id("cancel_request.task_id", m.task_id());
      else
        c.Fail(FrameError::kMissingField, "cancel_request names neither a run nor a task");
      return c.Text("cancel_request.reason", m.reason());
    }
    case Envelope::kCancelAck: {
      const wire::CancelAck& m = e.cancel_ack();
      return CheckAck("cancel_ack", m.accepted(), m.has_error(), m.error(), c);
    }
    case Envelope::BODY_NOT_SET:
      return;  // handled by the caller
  }
}

// A body number this build does not know arrives as an unknown envelope field (numbers 3..9
// are reserved for header fields and do not count as bodies).
std::optional<int> UnknownBodyField(const wire::Envelope& e) {
  const auto& unknown = e.GetReflection()->GetUnknownFields(e);
  for (int i = 0; i < unknown.field_count(); ++i) {
    if (unknown.field(i).number() >= 10) return unknown.field(i).number();
  }
  return std::nullopt;
}

}  // namespace

size_t FrameLimitFor(wire::Envelope::BodyCase body, const FrameLimits& limits) {
  switch (body) {
    case wire::Envelope::kArtifactChunk:
    case wire::Envelope::kArtifactPut:
      return limits.max_frame_bytes;
    case wire::Envelope::kStatusReply:
    case wire::Envelope::kSubmitRun:
    case wire::Envelope::kTaskAssign:
      return limits.max_bulk_frame_bytes;
    default:
      return limits.max_control_frame_bytes;
  }
}

Status ValidateEnvelope(const wire::Envelope& envelope, size_t encoded_size,
                        const FrameLimits& limits, FrameError* reason) {
  Checker c(limits);
  if (envelope.protocol_version() != limits.protocol_version) {
    c.Fail(FrameError::kProtocolVersionMismatch,
           "peer speaks protocol version " + std::to_string(envelope.protocol_version()) +
               ", this build speaks version " + std::to_string(limits.protocol_version));
  } else if (envelope.body_case() == wire::Envelope::BODY_NOT_SET) {
    if (std::optional<int> field = UnknownBodyField(envelope)) {
      c.Fail(FrameError::kUnknownMessageType,
             "message type (envelope field " + std::to_string(*field) +
                 ") is not part of protocol version " + std::to_string(limits.protocol_version));
    } else {
      c.Fail(FrameError::kMissingBody, "envelope carries no message");
    }
  } else if (size_t limit = FrameLimitFor(envelope.body_case(), limits); encoded_size > limit) {
    c.Fail(FrameError::kTooLargeForType, std::to_string(encoded_size) +
                                             " bytes, limit for this message type " +
                                             std::to_string(limit));
  } else {
    CheckBody(envelope, c);
  }
  return c.ToStatus(reason);
}

}  // namespace clisc
