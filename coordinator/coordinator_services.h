// What runs beside the coordinator's loop: the HTTP status endpoint (/api/status, /metrics,
// /healthz) and the Redis mirror of the live view. Both are fed from the loop's status hook once
// per status interval with a freshly built document, and both run on their own threads, so a
// slow HTTP client or a Redis outage never holds up scheduling.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/http_status_server.h"
#include "coordinator/live_state_mirror.h"
#include "coordinator/status_document.h"

namespace clisc {

struct ServiceOptions {
  std::string http_bind;  // "" = no HTTP endpoint
  std::string redis_url;  // "" = no Redis mirror
  std::string redis_key_prefix = "clisc";
};

class CoordinatorServices {
 public:
  // Starts the services and installs the coordinator's status hook. A Redis that cannot be
  // reached is not an error (the mirror keeps trying); a port that cannot be bound is.
  static StatusOr<std::unique_ptr<CoordinatorServices>> Attach(Coordinator& coordinator,
                                                               const ServiceOptions& options);
  ~CoordinatorServices();
  void Stop();

  std::string http_endpoint() const { return http_ ? http_->endpoint() : ""; }

 private:
  CoordinatorServices() = default;
  void Refresh(Coordinator& coordinator);
  HttpResponse Answer(std::string_view method, std::string_view path);
  LiveView CollectLiveView(Coordinator& coordinator) const;

  std::mutex mutex_;  // guards the cached documents, read by the HTTP thread
  std::string status_json_;
  std::string metrics_text_;
  std::unique_ptr<HttpStatusServer> http_;
  std::unique_ptr<LiveStateMirror> mirror_;
};

}  // namespace clisc
