#include "workers/runtime/artifact_transfer.h"

#include <algorithm>
#include <optional>

#include "common/wire/wire_error.h"

namespace clisc::worker {
namespace {

using Clock = std::chrono::steady_clock;

// Replies that make no progress (the same offset acknowledged again) before a push gives up.
constexpr int kMaxStalls = 3;

class WaiterRegistration {
 public:
  WaiterRegistration(ReplyMailbox& mailbox, std::string path)
      : mailbox_(mailbox), waiter_(mailbox.Register(std::move(path))) {}
  ~WaiterRegistration() { mailbox_.Unregister(waiter_); }
  ReplyMailbox::Waiter& waiter() { return *waiter_; }

 private:
  ReplyMailbox& mailbox_;
  std::shared_ptr<ReplyMailbox::Waiter> waiter_;
};

Status Stopped(const LeaseControl& control, const std::string& what) {
  if (control.deadline_passed()) return DeadlineExceededError("deadline passed during " + what);
  return CancelledError("task cancelled during " + what);
}

}  // namespace

uint64_t ArtifactTransfer::chunk_bytes() const {
  return std::max<uint64_t>(1, std::min(options_.chunk_bytes, session_.max_chunk_bytes()));
}

StatusOr<wire::Envelope> ArtifactTransfer::Exchange(const wire::Envelope& request,
                                                    ReplyMailbox::Waiter& waiter,
                                                    const Accept& accept,
                                                    const LeaseControl& control,
                                                    const std::string& what) {
  auto timeout = [&] {
    return std::max(std::chrono::milliseconds(1),
                    session_.heartbeat_interval() * options_.reply_timeout_heartbeats);
  };
  uint64_t generation = session_.generation();
  outbox_.Post(request);
  Clock::time_point deadline = Clock::now() + timeout();
  while (true) {
    const auto remaining = deadline - Clock::now();
    const auto wait = std::clamp<Clock::duration>(remaining, std::chrono::milliseconds(1),
                                                  std::chrono::milliseconds(50));
    std::optional<wire::Envelope> reply =
        waiter.WaitFor(std::chrono::duration_cast<std::chrono::milliseconds>(wait));
    if (reply && accept(*reply)) return std::move(*reply);
    if (control.stopped()) return Stopped(control, what);
    if (const uint64_t now_generation = session_.generation(); now_generation != generation) {
      generation = now_generation;
      outbox_.Post(request);
      deadline = Clock::now() + timeout();
      continue;
    }
    if (Clock::now() >= deadline) {
      return UnavailableError("no reply to " + what + " from the coordinator within " +
                              std::to_string(timeout().count()) + " ms");
    }
  }
}

Status ArtifactTransfer::Fetch(const TaskSpec& task, const TaskInput& input,
                               const ArtifactStore& store, const LeaseControl& control) {
  const ArtifactRef expected{input.path, input.size, input.sha256};
  if (store.Verify(expected).ok()) return OkStatus();
  const std::string what = "the fetch of input '" + input.name + "' (" + input.path + ")";
  WaiterRegistration registration(mailbox_, input.path);
  std::optional<ChunkedWriter> writer;
  uint64_t offset = 0;
  while (true) {
    wire::Envelope request;
    wire::ArtifactFetch* fetch = request.mutable_artifact_fetch();
    fetch->set_path(input.path);
    fetch->set_offset(offset);
    fetch->set_max_bytes(chunk_bytes());
    fetch->set_task_id(task.task_id);
    fetch->set_attempt(task.attempt);
    auto accept = [offset](const wire::Envelope& reply) {
      return reply.has_artifact_chunk() &&
             (reply.artifact_chunk().has_error() || reply.artifact_chunk().offset() == offset);
    };
    ASSIGN_OR_RETURN(wire::Envelope reply,
                     Exchange(request, registration.waiter(), accept, control, what));
    const wire::ArtifactChunk& chunk = reply.artifact_chunk();
    if (chunk.has_error()) return FromWireError(chunk.error()).WithContext(what);
    if (chunk.total_size() != input.size) {
      return DataLossError(what + ": the coordinator's copy has " +
                           std::to_string(chunk.total_size()) + " bytes, the task expects " +
                           std::to_string(input.size));
    }
    if (!writer) {
      ASSIGN_OR_RETURN(ChunkedWriter started, store.BeginChunkedWrite(input.path, input.size));
      writer.emplace(std::move(started));
    }
    RETURN_IF_ERROR(writer->Append(offset, chunk.data()).WithContext(what));
    offset += chunk.data().size();
    if (chunk.last()) {
      if (chunk.sha256() != input.sha256) {
        return DataLossError(what + ": the coordinator's copy has sha256 " + chunk.sha256() +
                             ", the task expects " + input.sha256);
      }
      return writer->Commit(input.sha256).status().WithContext(what);
    }
    if (chunk.data().empty()) {
      return UnavailableError(what + ": the coordinator sent an empty chunk before the end");
    }
  }
}

Status ArtifactTransfer::Push(const TaskSpec& task, const OutputArtifact& output,
                              const ArtifactStore& store, const LeaseControl& control) {
  const std::string what = "the upload of output '" + output.name + "' (" + output.path + ")";
  WaiterRegistration registration(mailbox_, output.path);
  uint64_t offset = 0;
  int stalls = 0;
  while (true) {
    ASSIGN_OR_RETURN(ArtifactChunkData piece, store.ReadChunk(output.path, offset, chunk_bytes()));
    wire::Envelope request;
    wire::ArtifactPut* put = request.mutable_artifact_put();
    put->set_path(output.path);
    put->set_offset(offset);
    put->set_total_size(piece.total_size);
    put->set_last(piece.last);
    if (piece.last) put->set_sha256(output.sha256);
    put->set_data(std::move(piece.data));
    put->set_task_id(task.task_id);
    put->set_attempt(task.attempt);
    auto accept = [](const wire::Envelope& reply) { return reply.has_artifact_put_ack(); };
    ASSIGN_OR_RETURN(wire::Envelope reply,
                     Exchange(request, registration.waiter(), accept, control, what));
    const wire::ArtifactPutAck& ack = reply.artifact_put_ack();
    if (ack.committed()) return OkStatus();
    const uint64_t next = ack.next_offset();
    if (ack.has_error()) {
      Status error = FromWireError(ack.error()).WithContext(what);
      // FAILED_PRECONDITION with an offset is the coordinator telling where to resume (it lost
      // a partial transfer, e.g. with the old connection); anything else ends the upload.
      if (error.code() != StatusCode::kFailedPrecondition || next > piece.total_size ||
          ++stalls > kMaxStalls) {
        return error;
      }
      offset = next;
      continue;
    }
    if (next > piece.total_size) {
      return InternalError(what + ": the coordinator expects offset " + std::to_string(next) +
                           " past the end (" + std::to_string(piece.total_size) + " bytes)");
    }
    if (next <= offset || piece.last) {
      if (++stalls > kMaxStalls) {
        return UnavailableError(what + ": the coordinator did not commit it after " +
                                std::to_string(kMaxStalls) + " tries");
      }
    } else {
      stalls = 0;
    }
    offset = next;
  }
}

}  // namespace clisc::worker
