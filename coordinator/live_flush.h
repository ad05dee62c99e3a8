// One flush of the live-state mirror as one Redis pipeline: MULTI, the writes, EXEC, then a
// PUBLISH. MULTI/EXEC makes the stream entries and the events_seq that confirms them land
// together or not at all, which is what lets a reconnecting mirror resume from events_seq
// without gaps or duplicates. Pure functions: no connection, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "coordinator/ledger_types.h"
#include "coordinator/live_state_keys.h"
#include "coordinator/redis_client.h"

namespace clisc {

using WorkerEntries = std::map<std::string, std::string>;  // worker_id -> JSON text

// What a flush writes; anything left empty/nullopt is left as it is in Redis.
struct LiveFlushContent {
  std::string run_name;
  std::optional<std::string> status_json;
  int64_t mirrored_ms = 0;  // stored beside the status (status_ms) and announced
  int64_t snapshot_ms = 0;  // the coordinator's time of the snapshot, announced
  // The workers hash: replaced whole (after a reconnect: Redis may hold anyone's entries), or
  // patched with the entries that changed and those that went away.
  bool replace_workers = false;
  WorkerEntries set_workers;
  std::vector<std::string> removed_workers;
  int64_t worker_ttl_ms = 0;  // > 0: the hash expires unless a later flush refreshes it
  // Drops the stream before adding: the ledger is not the one the stream was mirrored from.
  bool reset_events = false;
  std::vector<EventRecord> events;
  std::optional<int64_t> events_seq;  // the last ledger seq examined (filtered ones included)
  size_t stream_max_len = 0;          // 0: no trimming
};

// The entries of `next` that differ from `written`, and the ids in `written` not in `next`.
void DiffWorkers(const WorkerEntries& written, const WorkerEntries& next, WorkerEntries* changed,
                 std::vector<std::string>* removed);

std::vector<std::vector<std::string>> BuildFlushCommands(const LiveStateKeys& keys,
                                                         const LiveFlushContent& content);

// OK when every command was queued and EXEC ran them all without an error reply; otherwise
// FAILED_PRECONDITION (PERMISSION_DENIED for ACL refusals) naming the first command at fault.
// After such a failure some writes may have been applied: the caller must re-read events_seq.
Status CheckFlushReplies(const std::vector<std::vector<std::string>>& commands,
                         const std::vector<RedisReply>& replies, const RedisEndpoint& endpoint);

}  // namespace clisc
