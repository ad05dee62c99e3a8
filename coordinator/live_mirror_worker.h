// The mirror thread of LiveStateMirror and the state it owns: the Redis connection, the ledger
// read connection and what it has confirmed written. Only Update(), stats() and RequestStop() are
// called from other threads; they touch nothing but the members guarded by mu_.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/clock.h"
#include "coordinator/ledger.h"
#include "coordinator/live_flush.h"
#include "coordinator/live_state_keys.h"
#include "coordinator/live_state_mirror.h"
#include "coordinator/redis_client.h"

namespace clisc {

class LiveMirrorWorker {
 public:
  LiveMirrorWorker(LiveStateMirrorOptions options, RedisEndpoint endpoint);

  void Update(LiveSnapshot snapshot);
  MirrorStats stats() const;
  void RequestStop();
  // The thread body: flushes every flush_interval_ms until RequestStop(), then flushes once more.
  void Run();

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;

  // New ledger events of the run after `after_seq`; available is false while the ledger (or the
  // run in it) cannot be read, and then nothing about events is written.
  struct EventBatch {
    bool available = false;
    std::vector<EventRecord> events;
    int64_t last_seq = 0;  // the last seq examined, events of other runs included
    bool more = false;     // the batch hit max_events_per_flush
  };

  // One round: connects when due, then flushes. True when more events are waiting already.
  bool Tick();
  bool Connect(std::chrono::milliseconds timeout);
  // Reads events_seq back: where the stream is complete up to.
  Status ReadConfirmedSeq();
  // Writes whatever changed since the last confirmed flush; true when more events are waiting.
  StatusOr<bool> Flush();
  EventBatch ReadEvents(int64_t after_seq);
  Ledger* OpenLedger();
  // A confirmed seq the ledger does not have means the stream came from another ledger file.
  void CheckConfirmedSeqAgainstLedger();
  void HandleFailure(const Status& status);
  void FinalFlush();
  void LogLedgerProblemOnce(const Status& status);
  void SetConnected(bool connected, const std::string& error);

  const LiveStateMirrorOptions options_;
  const RedisEndpoint endpoint_;
  const LiveStateKeys keys_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::shared_ptr<const LiveSnapshot> latest_;  // guarded by mu_
  uint64_t latest_version_ = 0;                 // guarded by mu_
  bool stop_ = false;                           // guarded by mu_
  MirrorStats stats_;                           // guarded by mu_

  // Mirror thread only.
  RealClock clock_;
  std::unique_ptr<Ledger> ledger_;
  std::optional<RunId> run_id_;
  std::string last_ledger_problem_;
  std::unique_ptr<RedisClient> client_;
  std::optional<int64_t> confirmed_seq_;  // nullopt: unknown until read back from Redis
  bool check_seq_against_ledger_ = false;
  bool reset_events_ = false;
  bool full_resync_ = true;  // rewrite the status and replace the workers hash
  uint64_t written_version_ = 0;
  WorkerEntries written_workers_;
  bool in_outage_ = false;
  bool log_resync_ = false;
  int64_t outage_started_ms_ = 0;
  std::string last_flush_problem_;
  std::chrono::milliseconds backoff_;
  SteadyTime next_connect_{};
  SteadyTime last_flush_{};
};

}  // namespace clisc
