// The coordinator process: one ROUTER socket facing the workers, the scheduler over the SQLite
// ledger, and the artifact relay, driven by one loop on one thread.
//
// Each turn of the loop reads every message already waiting (up to a bound), records the results
// in one ledger transaction, leases ready tasks to every worker with free slots in another, and
// only then sends: batching is what lets a durable ledger keep up with thousands of tasks a
// second. Timers (heartbeats out, dead workers, backoff, status) run between turns.
//
// Hostile input never stops the loop: a frame that fails framing or validation is counted by
// reason and dropped; a message from a connection that has not said hello is dropped; a result
// for a stale or unknown lease is refused by the ledger's fencing and counted.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/artifact_store.h"
#include "common/status.h"
#include "common/wire/curve_auth.h"
#include "common/wire/frame_error.h"
#include "common/wire/frame_limits.h"
#include "common/wire/zmq_socket.h"
#include "coordinator/artifact_relay.h"
#include "coordinator/clock.h"
#include "coordinator/latency_recorder.h"
#include "coordinator/ledger.h"
#include "coordinator/scheduler.h"
#include "schemas/clisc.pb.h"

namespace clisc {

// What a restarted coordinator checks about the artifacts of finished tasks before serving.
enum class ResumeArtifactCheck { kNone, kSize, kChecksum };

struct CoordinatorOptions {
  std::string ledger_path;
  std::string run_name;
  std::string bind = "tcp://127.0.0.1:5555";
  std::optional<std::filesystem::path> plan_path;  // a task graph to (re)plan at start-up
  // Open tasks of the run that the plan no longer names are superseded (a changed config gave
  // them new keys); finished ones stay, so returning to an earlier config reuses them.
  bool replace_plan = false;
  // Failed and blocked tasks of the plan get a fresh retry budget.
  bool retry_failed = false;
  std::optional<std::filesystem::path> artifact_root;
  std::string config_yaml;  // recorded with the run
  std::string config_fingerprint;
  int default_max_attempts = 3;
  ResumeArtifactCheck resume_check = ResumeArtifactCheck::kChecksum;
  SchedulerOptions scheduler;
  LedgerOptions ledger;
  FrameLimits limits;
  // Stop serving once the run has ended (telling the workers to leave) instead of idling.
  bool exit_when_done = false;
  std::optional<std::filesystem::path> summary_path;
  // CurveZMQ: the coordinator's key file and the allow-list of worker public keys. Both or none.
  std::optional<std::filesystem::path> curve_key;
  std::optional<std::filesystem::path> curve_allow;
  std::string coordinator_id;  // default: <hostname>-<pid>
  int64_t status_interval_ms = 1000;
  // Most messages handled per turn before results are recorded and work is handed out.
  size_t max_messages_per_turn = 20'000;
};

// Counters of what arrived and what was refused, for logs, status and /metrics.
struct CoordinatorCounters {
  uint64_t frames_received = 0;
  uint64_t hellos = 0;
  uint64_t refused_version = 0;
  uint64_t unknown_session = 0;  // a message before hello (or after being declared dead)
  uint64_t tasks_assigned = 0;
  uint64_t results_ok = 0;
  uint64_t results_failed = 0;
  uint64_t results_refused = 0;  // stale attempt, duplicate, unknown task
  uint64_t results_bad_artifacts = 0;
  uint64_t progress_reports = 0;
  uint64_t send_failures = 0;
  uint64_t artifact_chunks_served = 0;
  uint64_t artifact_puts = 0;
  uint64_t invalidated_on_resume = 0;
};

// The latest progress report of a running task.
struct TaskProgress {
  int attempt = 0;
  double fraction = 0;
  std::string message;
  int64_t updated_ms = 0;
};

class Coordinator {
 public:
  static StatusOr<std::unique_ptr<Coordinator>> Create(CoordinatorOptions options,
                                                       const Clock* clock);
  ~Coordinator();

  // Serves until the run ends (with exit_when_done) or `stop` becomes true. Returns the run's
  // outcome: OK when it succeeded or is still running, an error naming why it failed otherwise.
  Status Serve(const std::atomic<bool>& stop);

  const std::string& endpoint() const { return endpoint_; }
  const CoordinatorCounters& counters() const { return counters_; }
  const FrameDropCounters& drops() const { return drops_; }
  Scheduler& scheduler() { return *scheduler_; }
  Ledger& ledger() { return *ledger_; }
  const LatencyRecorder& latency() const { return latency_; }
  RunId run() const { return run_; }
  const CoordinatorOptions& options() const { return options_; }
  // Called after each status refresh with what a status document needs (the status endpoint and
  // the Redis mirror plug in here).
  void set_status_hook(std::function<void(Coordinator&)> hook) { status_hook_ = std::move(hook); }
  // The document StatusRequest messages are answered with (kept current by the status hook).
  void set_status_json(std::string json) { status_json_ = std::move(json); }
  const std::unordered_map<TaskId, TaskProgress>& progress() const { return progress_; }
  int64_t started_ms() const { return started_ms_; }

 private:
  struct Session {
    std::string identity;  // ZeroMQ routing id of the connection
    std::string worker_id;
    bool draining = false;
    bool shared_filesystem = true;
  };
  struct Inbound {
    std::string identity;
    wire::Envelope envelope;
  };

  Coordinator(CoordinatorOptions options, const Clock* clock);
  Status Start();
  Status CheckArtifactsOnResume();

  // One turn: read, record, assign, send.
  Status ReadMessages(size_t* handled);
  void Dispatch(const std::string& identity, wire::Envelope& envelope);
  void HandleHello(const std::string& identity, const wire::Hello& hello);
  void HandleHeartbeat(Session& session, const wire::Heartbeat& heartbeat);
  void HandleResult(Session& session, wire::TaskResult& result);
  void HandleDisconnect(Session& session, const wire::Disconnect& disconnect);
  void HandleCancel(const std::string& identity, const wire::CancelRequest& request);
  void RecordProgress(const wire::Progress& progress);
  void RefuseVersion(const std::string& identity, const std::string& payload);
  Status FlushResults();
  Status AssignWork();
  Status RunTimers(int64_t now);
  void SendHeartbeats();
  void DropSession(const std::string& identity);
  Session* FindSession(const std::string& identity);
  // Checks the outputs a worker reported against the store (exists, size) before the ledger
  // records them; a mismatch turns the success into a retryable DATA_LOSS failure.
  Status CheckReportedOutputs(const wire::TaskResult& result) const;
  StatusOr<wire::TaskAssign> MakeAssign(const Assignment& assignment);

  void Send(const std::string& identity, wire::Envelope& envelope);
  wire::Envelope NewMessage();
  bool RunEnded() const { return scheduler_->run_state() != RunState::kRunning; }
  void SayGoodbye(const std::string& reason);
  Status WriteSummary();
  Status RunOutcome();

  CoordinatorOptions options_;
  const Clock* clock_;
  std::unique_ptr<Ledger> ledger_;
  RunId run_ = 0;
  std::unique_ptr<Scheduler> scheduler_;
  std::shared_ptr<ZmqContext> context_;
  std::unique_ptr<CurveAuthenticator> authenticator_;
  std::optional<ZmqSocket> router_;
  std::string endpoint_;
  std::unique_ptr<ArtifactRelay> relay_;

  std::unordered_map<std::string, Session> sessions_;            // by identity
  std::unordered_map<std::string, std::string> identity_of_;     // worker id -> identity
  std::vector<Completion> pending_completions_;
  std::vector<TaskFailure> pending_failures_;
  bool assign_needed_ = true;

  uint64_t seq_ = 0;
  CoordinatorCounters counters_;
  FrameDropCounters drops_;
  LatencyRecorder latency_;
  std::function<void(Coordinator&)> status_hook_;
  std::string status_json_;
  std::unordered_map<TaskId, TaskProgress> progress_;
  int64_t started_ms_ = 0;
  std::chrono::steady_clock::time_point started_steady_;
  std::optional<std::chrono::steady_clock::time_point> first_assign_;
  std::optional<std::chrono::steady_clock::time_point> last_result_;
  int64_t next_heartbeat_ms_ = 0;
  int64_t next_tick_ms_ = 0;
  int64_t next_status_ms_ = 0;
  int64_t last_drop_log_ms_ = 0;
};

}  // namespace clisc
