// A tiny HTTP/1.1 server for the coordinator's status endpoints (/api/status, /metrics,
// /healthz). It answers GET and HEAD, one request per connection (Connection: close), from one
// thread that polls the listening socket and every open connection together: a client that
// sends garbage, sends nothing, or reads slowly holds only its own connection, which is closed
// after kIoTimeout, and never delays the others. Requests whose header exceeds
// kMaxRequestHeaderBytes are refused.
//
// The handler runs on the server thread, one request at a time; it should return something
// prepared beforehand (the coordinator hands out a cached document) rather than do real work.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"

namespace clisc {

struct HttpResponse {
  int status = 200;
  std::string content_type;  // empty: text/plain; charset=utf-8
  std::string body;
};

class HttpStatusServer {
 public:
  // `path` is the request target without its query string.
  using Handler = std::function<HttpResponse(std::string_view method, std::string_view path)>;

  static constexpr std::chrono::milliseconds kIoTimeout{2000};
  static constexpr size_t kMaxRequestHeaderBytes = 8192;
  static constexpr size_t kMaxConnections = 64;

  // Listens on `bind`: "HOST:PORT" with HOST an IPv4 address, "[IPv6]" or "localhost"
  // (127.0.0.1), and PORT 0 for any free port. It binds exactly that host: "127.0.0.1:8470"
  // is not reachable from other machines, "0.0.0.0:8470" is.
  static StatusOr<std::unique_ptr<HttpStatusServer>> Start(const std::string& bind,
                                                           Handler handler);
  ~HttpStatusServer();
  HttpStatusServer(const HttpStatusServer&) = delete;
  HttpStatusServer& operator=(const HttpStatusServer&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:PORT" (or "[::1]:PORT"): the bound address, with the port actually chosen.
  std::string endpoint() const { return endpoint_; }
  // Stops serving and closes every connection; idempotent, also done by the destructor.
  void Stop();

 private:
  HttpStatusServer(int listen_fd, int stop_read_fd, int stop_write_fd, int port,
                   std::string endpoint, Handler handler);
  void Serve();

  int listen_fd_;
  int stop_read_fd_;
  int stop_write_fd_;
  int port_;
  std::string endpoint_;
  Handler handler_;
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace clisc
