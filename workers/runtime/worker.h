// The worker process's session with the coordinator, run on one IO thread (the caller of
// Run()): connect a DEALER socket, Hello / HelloAck, heartbeats both ways, task assignment into
// slots, results, reconnects with backoff, and drains. Tasks run on their own threads (see
// TaskRunner); only this thread touches the socket.
//
// Session rules (the coordinator implements the other side):
// - A Hello unanswered for liveness x interval, or a session silent that long, means the
//   coordinator is gone: the socket is closed and a new one says Hello again, listing the leases
//   still running here, after an exponential backoff with jitter.
// - There is no result acknowledgement: results sent in the last minute go out again after every
//   HelloAck, and the coordinator ignores duplicates.
// - A refusal ends the process: exit 1 for a protocol version mismatch, a key or id that is not
//   allowed, or a duplicate id; exit 0 when the coordinator is shutting down.
// - Drain (a signal, or Disconnect{draining} from the coordinator): no new tasks, running ones
//   finish and report, then Disconnect and exit 0. Past the drain timeout, or on a second signal,
//   unfinished tasks are handed back as failed (UNAVAILABLE, retryable).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/artifact_store.h"
#include "common/status.h"
#include "common/wire/frame_error.h"
#include "common/wire/zmq_socket.h"
#include "schemas/clisc.pb.h"
#include "workers/runtime/artifact_transfer.h"
#include "workers/runtime/lease_table.h"
#include "workers/runtime/outbox.h"
#include "workers/runtime/progress_throttle.h"
#include "workers/runtime/recent_results.h"
#include "workers/runtime/reconnect_backoff.h"
#include "workers/runtime/reply_mailbox.h"
#include "workers/runtime/role_registry.h"
#include "workers/runtime/session_state.h"
#include "workers/runtime/slot_pool.h"
#include "workers/runtime/task_runner.h"
#include "workers/runtime/worker_options.h"

namespace clisc::worker {

struct WorkerSummary {
  int exit_code = 0;
  std::string reason;            // why the worker stopped
  uint64_t tasks_run = 0;        // leases admitted into a slot
  uint64_t tasks_succeeded = 0;  // reported ok
  uint64_t tasks_failed = 0;     // reported failed, hand-backs included
  uint64_t tasks_cancelled = 0;  // cancelled by the coordinator (no result sent)
  uint64_t tasks_refused = 0;    // answered at once: no free slot, unknown role, draining
  uint64_t sessions = 0;         // HelloAcks received
  uint64_t frames_dropped = 0;   // incoming frames that failed framing or validation
};

class Worker {
 public:
  // Checks the options (roles registered, a Hello that would pass validation), opens the
  // scratch store. `registry` must outlive the worker.
  static StatusOr<std::unique_ptr<Worker>> Create(WorkerOptions options,
                                                  const RoleRegistry& registry);
  // Cancels what still runs and waits for the task threads; removes an owned scratch directory.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves until the worker should exit; the summary carries the exit code. Call once.
  WorkerSummary Run();
  // Same as a SIGTERM: the first request drains, the second hands tasks back. Thread-safe.
  void RequestDrain(int signal_number);
  // After Run(): cancels every task and waits up to `grace` for the roles to return. False when
  // some role ignores cancellation (the process should then exit without waiting for it).
  bool StopTasks(std::chrono::milliseconds grace);

  const std::string& id() const { return options_.worker_id; }
  // The store roles read and write (shared root or scratch directory).
  const ArtifactStore& store() const { return *store_; }

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kIdle, kAwaitingAck, kInSession };

  Worker(WorkerOptions options, const RoleRegistry& registry);
  Status Init();

  // Session.
  void OpenSession(Clock::time_point now);
  void CloseSocket();
  void ScheduleReconnect(Clock::time_point now);
  void LoseSession(Clock::time_point now, const std::string& why);
  void OnHelloTimeout(Clock::time_point now);
  void RunTimers(Clock::time_point now);
  std::chrono::milliseconds Liveness() const { return interval_ * liveness_; }
  void PollOnce(Clock::time_point now);

  // Incoming.
  void ReadMessages();
  void HandleFrames(const std::vector<std::string>& frames);
  void HandleForeignVersion(std::string_view payload);
  void Dispatch(const wire::Envelope& envelope);
  void OnHelloAck(const wire::HelloAck& ack);
  void OnRefused(const wire::Refused& refused, uint32_t envelope_version);
  void OnDisconnect(const wire::Disconnect& disconnect);
  void OnAssign(const wire::TaskAssign& assign);
  void OnCancel(const wire::TaskCancel& cancel);
  void DropFrame(FrameError reason, const Status& why);

  // Outgoing.
  wire::Envelope MakeHello() const;
  void Send(wire::Envelope& envelope);
  void SendHeartbeat();
  void SendDisconnect(const std::string& reason, bool draining);
  void SendResult(wire::TaskResult result);
  void Refuse(const wire::TaskAssign& assign, const Status& why);
  void ProcessOutbox();
  void OnTaskFinished(wire::TaskResult& result);
  void SendDueProgress();

  // Shutdown.
  void CheckStopRequests(Clock::time_point now);
  void BeginDrain(const std::string& reason, Clock::time_point now, bool coordinator_asked);
  void HandBackAndExit(const std::string& reason);
  void CheckDrainDone();
  void Exit(int code, std::string reason);
  void FlushAndClose();

  WorkerOptions options_;
  const RoleRegistry& registry_;
  std::set<std::string, std::less<>> roles_;

  std::shared_ptr<ZmqContext> context_;
  std::unique_ptr<Outbox> outbox_;
  ReplyMailbox mailbox_;
  SessionState session_state_;
  ProgressThrottle throttle_;
  std::optional<ArtifactStore> store_;
  std::filesystem::path owned_scratch_;
  std::unique_ptr<ArtifactTransfer> transfer_;
  std::unique_ptr<TaskRunner> runner_;

  LeaseTable leases_;
  RecentResults recent_;
  ReconnectBackoff backoff_;
  StopRequests own_stop_requests_;
  StopRequests* stop_requests_;
  FrameDropCounters drops_;

  Phase phase_ = Phase::kIdle;
  std::optional<ZmqSocket> socket_;
  uint64_t seq_ = 0;
  std::chrono::milliseconds interval_;
  uint32_t liveness_;
  Clock::time_point next_connect_;
  Clock::time_point hello_sent_;
  Clock::time_point last_heard_;
  Clock::time_point next_heartbeat_;
  std::optional<Clock::time_point> outage_started_;
  Clock::time_point last_retry_log_;
  Clock::time_point last_drop_log_;
  Clock::time_point last_send_error_log_;
  bool hint_logged_ = false;
  bool ever_connected_ = false;
  std::string coordinator_id_;
  std::string run_id_;

  int stop_requests_seen_ = 0;
  bool draining_ = false;
  std::string drain_reason_;
  Clock::time_point drain_deadline_;
  std::optional<int> exit_code_;
  WorkerSummary summary_;

  // Last: destroyed first, so task threads finish while everything they use still exists.
  std::unique_ptr<SlotPool> pool_;
};

}  // namespace clisc::worker
