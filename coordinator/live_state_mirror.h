// LiveStateMirror: the coordinator's one-way copy of its live state into Redis, so that `clisc
// status` on any host (and dashboards) can see a run without touching the coordinator. Redis is a
// view, never a source of truth: the mirror runs on its own thread, Update() only swaps a pointer
// under a mutex, and a Redis outage costs the coordinator nothing. While Redis is away the mirror
// logs once, counts the outage and retries with backoff; when Redis is back it writes everything
// again (status, workers, the ledger events it has not confirmed yet) and logs redis_resynced.
//
// Keys (P = key_prefix, R = run_name):
//   P:current_run        string  the run this coordinator mirrors
//   P:runs               set     every run ever mirrored here
//   P:run:R:status       string  the latest status document, byte for byte as the coordinator
//                                built it (LiveSnapshot::status_json)
//   P:run:R:status_ms    string  wall-clock ms when the mirror wrote that status (staleness)
//   P:run:R:workers      hash    worker_id -> JSON object text; a worker missing from the latest
//                                snapshot is removed; the hash expires worker_ttl_ms after the
//                                last flush, so a dead coordinator leaves no live-looking workers
//   P:run:R:events       stream  one entry per ledger event of the run (or of no run, like worker
//                                registrations), in seq order; fields seq, time_ms, kind, task_id,
//                                worker_id, payload (absent ids are empty strings);
//                                XADD MAXLEN ~ stream_max_len
//   P:run:R:events_seq   string  the last ledger seq the stream is complete up to
//   P:run:R:notify       channel a JSON notice {run, mirrored_ms, snapshot_ms, events_seq}
//                                published after each flush
// Each flush is one pipeline (MULTI ... EXEC, PUBLISH; see live_flush.h). The mirror reads
// events_seq back whenever it (re)connects, so neither an outage nor a restarted coordinator
// duplicates or skips stream entries. If Redis restarted empty, everything is written again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace clisc {

struct LiveStateMirrorOptions {
  std::string redis_url;
  std::string key_prefix = "clisc";
  std::string run_name;
  // The mirror tails this ledger's events table with its own read-only connection. Empty: no
  // events are mirrored (status and workers only).
  std::string ledger_path;
  int64_t flush_interval_ms = 250;
  int64_t reconnect_max_backoff_ms = 2000;
  size_t max_events_per_flush = 5000;
  size_t stream_max_len = 100000;  // XADD MAXLEN ~
  int64_t worker_ttl_ms = 30000;
  // Bounds connecting and each Redis read or write, so Stop() and outages stay prompt.
  int64_t io_timeout_ms = 1000;
};

// What the coordinator knows in memory; the latest one wins.
struct LiveSnapshot {
  // The full status document.
  std::string status_json;
  // worker_id -> JSON object text (heartbeat, current tasks).
  std::vector<std::pair<std::string, std::string>> workers;
  int64_t time_ms = 0;
};

struct MirrorStats {
  bool connected = false;
  uint64_t outages = 0;
  uint64_t flushes = 0;
  uint64_t events_mirrored = 0;
  int64_t last_event_seq = 0;  // the events_seq last confirmed written
  std::string last_error;
};

class LiveMirrorWorker;  // live_mirror_worker.h: the state of the mirror thread

class LiveStateMirror {
 public:
  // INVALID_ARGUMENT for a bad URL or an empty run name or key prefix. Never fails because Redis
  // is down: the mirror keeps trying in the background.
  static StatusOr<std::unique_ptr<LiveStateMirror>> Start(LiveStateMirrorOptions options);
  ~LiveStateMirror();
  LiveStateMirror(const LiveStateMirror&) = delete;
  LiveStateMirror& operator=(const LiveStateMirror&) = delete;

  // Cheap and never blocks on Redis: replaces the snapshot the next flush writes.
  void Update(LiveSnapshot snapshot);
  MirrorStats stats() const;
  // One last flush, then joins the thread. Bounded when Redis is slow or away: a flush in
  // progress ends within io_timeout_ms, the last one within about a second. Idempotent; the
  // destructor calls it.
  void Stop();

 private:
  explicit LiveStateMirror(std::unique_ptr<LiveMirrorWorker> worker);

  std::unique_ptr<LiveMirrorWorker> worker_;
  std::thread thread_;
};

}  // namespace clisc
