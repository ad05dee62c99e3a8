#include "coordinator/live_state_mirror.h"

#include <utility>

#include "common/logging.h"
#include "coordinator/live_mirror_worker.h"
#include "coordinator/redis_client.h"

namespace clisc {
namespace {

Status ValidateOptions(const LiveStateMirrorOptions& o) {
  auto bad = [](std::string what) {
    return InvalidArgumentError("live state mirror: " + std::move(what));
  };
  if (o.run_name.empty()) return bad("run_name is empty");
  if (o.key_prefix.empty()) return bad("key_prefix is empty");
  if (o.flush_interval_ms <= 0) return bad("flush_interval_ms must be > 0");
  if (o.reconnect_max_backoff_ms <= 0) return bad("reconnect_max_backoff_ms must be > 0");
  if (o.max_events_per_flush == 0) return bad("max_events_per_flush must be > 0");
  if (o.io_timeout_ms <= 0) return bad("io_timeout_ms must be > 0");
  if (o.worker_ttl_ms < 0) return bad("worker_ttl_ms must be >= 0 (0: no expiry)");
  return OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<LiveStateMirror>> LiveStateMirror::Start(LiveStateMirrorOptions options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  ASSIGN_OR_RETURN(RedisEndpoint endpoint, ParseRedisUrl(options.redis_url));
  LogInfo("redis_mirror_started", {{"url", endpoint.redacted_url},
                                   {"run", options.run_name},
                                   {"prefix", options.key_prefix},
                                   {"ledger", options.ledger_path}});
  auto worker = std::make_unique<LiveMirrorWorker>(std::move(options), std::move(endpoint));
  std::unique_ptr<LiveStateMirror> mirror(new LiveStateMirror(std::move(worker)));
  LiveMirrorWorker* body = mirror->worker_.get();
  mirror->thread_ = std::thread([body] { body->Run(); });
  return mirror;
}

LiveStateMirror::LiveStateMirror(std::unique_ptr<LiveMirrorWorker> worker)
    : worker_(std::move(worker)) {}

LiveStateMirror::~LiveStateMirror() { Stop(); }

void LiveStateMirror::Update(LiveSnapshot snapshot) { worker_->Update(std::move(snapshot)); }

MirrorStats LiveStateMirror::stats() const { return worker_->stats(); }

void LiveStateMirror::Stop() {
  worker_->RequestStop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace clisc
