#include "coordinator/coordinator_services.h"

#include <unistd.h>

#include "common/logging.h"
#include "coordinator/status_render.h"

namespace clisc {

StatusOr<std::unique_ptr<CoordinatorServices>> CoordinatorServices::Attach(
    Coordinator& coordinator, const ServiceOptions& options) {
  std::unique_ptr<CoordinatorServices> services(new CoordinatorServices());
  if (!options.http_bind.empty()) {
    CoordinatorServices* self = services.get();
    StatusOr<std::unique_ptr<HttpStatusServer>> http = HttpStatusServer::Start(
        options.http_bind,
        [self](std::string_view method, std::string_view path) {
          return self->Answer(method, path);
        });
    if (!http.ok()) return http.status().WithContext("status endpoint " + options.http_bind);
    services->http_ = std::move(*http);
    LogInfo("status_endpoint", {{"http", services->http_->endpoint()}});
  }
  if (!options.redis_url.empty()) {
    LiveStateMirrorOptions mirror;
    mirror.redis_url = options.redis_url;
    mirror.key_prefix = options.redis_key_prefix;
    mirror.run_name = coordinator.options().run_name;
    mirror.ledger_path = coordinator.options().ledger_path;
    mirror.flush_interval_ms = std::min<int64_t>(coordinator.options().status_interval_ms, 500);
    ASSIGN_OR_RETURN(services->mirror_, LiveStateMirror::Start(std::move(mirror)));
  }
  coordinator.set_status_hook([self = services.get()](Coordinator& c) { self->Refresh(c); });
  services->Refresh(coordinator);
  return services;
}

CoordinatorServices::~CoordinatorServices() { Stop(); }

void CoordinatorServices::Stop() {
  if (http_) http_->Stop();
  if (mirror_) mirror_->Stop();
}

LiveView CoordinatorServices::CollectLiveView(Coordinator& coordinator) const {
  LiveView live;
  live.scheduler = coordinator.scheduler().Snapshot();
  live.workers = coordinator.scheduler().Workers();
  for (const auto& [task, progress] : coordinator.progress()) {
    live.progress[task] = {task, progress.attempt, progress.fraction, progress.message,
                           progress.updated_ms};
  }
  LiveCoordinatorInfo& info = live.coordinator;
  info.coordinator_id = coordinator.options().coordinator_id;
  info.pid = getpid();
  info.started_ms = coordinator.started_ms();
  info.endpoint = coordinator.endpoint();
  info.http_endpoint = http_ ? http_->endpoint() : "";
  if (!mirror_) {
    info.redis_state = "off";
  } else {
    info.redis_state = mirror_->stats().connected ? "connected" : "down";
  }
  for (const auto& [reason, count] : coordinator.drops().NonZero()) {
    info.frames_dropped.emplace_back(std::string(reason), count);
  }
  const CoordinatorCounters& c = coordinator.counters();
  info.counters = {{"frames_received", c.frames_received},
                   {"hellos", c.hellos},
                   {"refused_protocol_version", c.refused_version},
                   {"messages_without_session", c.unknown_session},
                   {"tasks_assigned", c.tasks_assigned},
                   {"results_ok", c.results_ok},
                   {"results_failed", c.results_failed},
                   {"results_refused", c.results_refused},
                   {"results_bad_artifacts", c.results_bad_artifacts},
                   {"progress_reports", c.progress_reports},
                   {"send_failures", c.send_failures},
                   {"artifact_chunks_served", c.artifact_chunks_served},
                   {"artifact_puts", c.artifact_puts},
                   {"invalidated_on_resume", c.invalidated_on_resume}};
  const LatencyRecorder& latency = coordinator.latency();
  info.gauges = {{"roundtrip_p50_ms", latency.QuantileMs(0.5)},
                 {"roundtrip_p99_ms", latency.QuantileMs(0.99)},
                 {"roundtrip_mean_ms", latency.MeanMs()}};
  return live;
}

void CoordinatorServices::Refresh(Coordinator& coordinator) {
  const LiveView live = CollectLiveView(coordinator);
  const int64_t now = coordinator.ledger().clock().NowMs();
  StatusOr<nlohmann::json> doc =
      BuildStatusDocument(coordinator.ledger(), coordinator.run(), &live, now);
  if (!doc.ok()) {
    LogWarn("status_document_failed", {{"error", doc.status().message()}});
    return;
  }
  std::string json = doc->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string metrics = RenderPrometheus(*doc);
  coordinator.set_status_json(json);
  if (mirror_) {
    LiveSnapshot snapshot;
    snapshot.status_json = json;
    snapshot.time_ms = now;
    if (doc->contains("workers") && (*doc)["workers"].is_array()) {
      for (const nlohmann::json& worker : (*doc)["workers"]) {
        snapshot.workers.emplace_back(worker.value("id", std::string()), worker.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    }
    mirror_->Update(std::move(snapshot));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  status_json_ = std::move(json);
  metrics_text_ = std::move(metrics);
}

HttpResponse CoordinatorServices::Answer(std::string_view method, std::string_view path) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (path == "/api/status") return {200, "application/json", status_json_};
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text_};
  if (path == "/healthz") return {200, "", "ok\n"};
  return {404, "", "not found; try /api/status, /metrics or /healthz\n"};
}

}  // namespace clisc
