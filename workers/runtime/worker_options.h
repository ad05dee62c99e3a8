// Configuration of one worker process (`clisc worker` fills it from its flags).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/runtime/artifact_transfer.h"

namespace clisc::worker {

// Stop requests from signal handlers: lock-free atomics only, so that a handler may write them.
struct StopRequests {
  std::atomic<int> count{0};
  std::atomic<int> last_signal{0};
  // Async-signal-safe.
  void Request(int signal) {
    last_signal.store(signal, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_release);
  }
};

struct WorkerOptions {
  std::string connect;  // the coordinator's endpoint, e.g. tcp://10.0.0.5:5555
  std::string worker_id;
  std::vector<std::string> roles;  // each registered in the RoleRegistry
  std::string device = "cpu";
  uint32_t slots = 1;
  std::string hostname;
  uint32_t pid = 0;
  std::string software_version;

  // Shared filesystem: the artifact store root as this node sees it. Unset: artifacts move
  // through the coordinator and live in `scratch_dir` here.
  std::optional<std::filesystem::path> artifact_root;
  // Empty: a fresh directory under $TMPDIR, removed when the worker is destroyed.
  std::filesystem::path scratch_dir;

  // Past this, a drain hands unfinished tasks back to the coordinator.
  std::chrono::milliseconds drain_timeout{60'000};
  // Used until the first HelloAck supplies the coordinator's values: a Hello unanswered for
  // liveness x interval counts as lost.
  std::chrono::milliseconds heartbeat_interval{1'000};
  uint32_t heartbeat_liveness = 3;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5'000};
  // After this much silence from the coordinator, a hint about the likely causes is logged.
  std::chrono::milliseconds silence_hint_after{10'000};
  std::chrono::milliseconds retry_log_interval{10'000};
  std::chrono::milliseconds progress_interval{500};
  // Results kept for re-sending after a reconnect.
  std::chrono::milliseconds result_memory{60'000};
  size_t max_remembered_results = 10'000;
  ArtifactTransfer::Options transfer;
  // How long the last messages get to leave before the socket closes at exit.
  std::chrono::milliseconds exit_flush{100};

  // Runs on every new coordinator socket before it connects (CurveZMQ client keys).
  std::function<Status(void* raw_socket)> configure_socket;
  // Whether configure_socket enables CURVE: only changes the hint logged on silence.
  bool curve = false;
  // Where signal handlers record stop requests; null: only Worker::RequestDrain().
  StopRequests* stop_requests = nullptr;
};

}  // namespace clisc::worker
