// Artifact transfer through the coordinator for workers without the shared filesystem, run on
// task threads: inputs are pulled chunk by chunk (ArtifactFetch -> ArtifactChunk) into the
// worker's scratch store and verified against the task's checksums; outputs are pushed in order
// (ArtifactPut -> ArtifactPutAck), resuming where the coordinator says, until it commits them.
//
// A request whose reply does not come within a few heartbeat intervals fails the task with
// UNAVAILABLE (retryable); a reconnect in between makes the request go out again, since the old
// connection may have lost it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/artifact_store.h"
#include "common/status.h"
#include "workers/runtime/outbox.h"
#include "workers/runtime/reply_mailbox.h"
#include "workers/runtime/role.h"
#include "workers/runtime/session_state.h"

namespace clisc::worker {

class ArtifactTransfer {
 public:
  struct Options {
    uint64_t chunk_bytes = uint64_t{4} << 20;
    // Heartbeat intervals to wait for a reply.
    uint32_t reply_timeout_heartbeats = 5;
  };

  ArtifactTransfer(Outbox& outbox, ReplyMailbox& mailbox, const SessionState& session,
                   Options options)
      : outbox_(outbox), mailbox_(mailbox), session_(session), options_(options) {}

  // Makes `input` present in `store`: nothing to do when an identical copy is already there
  // (an earlier task fetched it), otherwise fetched and checked (DATA_LOSS on a mismatch).
  Status Fetch(const TaskSpec& task, const TaskInput& input, const ArtifactStore& store,
               const LeaseControl& control);
  // Sends `output` from `store`; OK once the coordinator committed it.
  Status Push(const TaskSpec& task, const OutputArtifact& output, const ArtifactStore& store,
              const LeaseControl& control);

 private:
  using Accept = std::function<bool(const wire::Envelope&)>;
  // Posts `request` and waits for a reply that `accept` takes.
  StatusOr<wire::Envelope> Exchange(const wire::Envelope& request, ReplyMailbox::Waiter& waiter,
                                    const Accept& accept, const LeaseControl& control,
                                    const std::string& what);
  uint64_t chunk_bytes() const;

  Outbox& outbox_;
  ReplyMailbox& mailbox_;
  const SessionState& session_;
  Options options_;
};

}  // namespace clisc::worker
