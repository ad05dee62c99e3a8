#include "coordinator/http_status_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "coordinator/http_get.h"

namespace clisc {

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Connection {
  int fd = -1;
  std::string request;
  std::string response;
  size_t sent = 0;
  bool writing = false;
  SteadyClock::time_point deadline;
};

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string Serialize(const HttpResponse& response, bool include_body,
                      std::string_view extra_headers = "") {
  std::string content_type =
      response.content_type.empty() ? "text/plain; charset=utf-8" : response.content_type;
  std::string out =
      "HTTP/1.1 " + std::to_string(response.status) + " " +
      std::string(ReasonPhrase(response.status)) + "\r\nContent-Type: " + content_type +
      "\r\nContent-Length: " + std::to_string(response.body.size()) +
      "\r\nCache-Control: no-store\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n";
  if (include_body) out += response.body;
  return out;
}

HttpResponse PlainText(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body) + "\n"};
}

// The end of the request header: a blank line (CRLF, or bare LF from hand-typed requests).
bool HeaderComplete(const std::string& request) {
  return request.find("\r\n\r\n") != std::string::npos || request.find("\n\n") != std::string::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty() || s.size() > 16) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// Parses the request line and asks the handler; everything malformed is answered here.
std::string Answer(const std::string& request, const HttpStatusServer::Handler& handler) {
  std::string_view line(request);
  line = line.substr(0, line.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t first = line.find(' ');
  size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos) {
    return Serialize(PlainText(400, "bad request line"), true);
  }
  std::string_view method = line.substr(0, first);
  std::string_view target = line.substr(first + 1, second - first - 1);
  std::string_view version = line.substr(second + 1);
  if (!IsToken(method) || (version != "HTTP/1.1" && version != "HTTP/1.0") || target.empty() ||
      target.front() != '/') {
    return Serialize(PlainText(400, "bad request line"), true);
  }
  if (method != "GET" && method != "HEAD") {
    return Serialize(PlainText(405, "only GET and HEAD are served"), true, "Allow: GET, HEAD\r\n");
  }
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  HttpResponse response = handler(method, path);
  return Serialize(response, method == "GET");
}

// Reads what the client sent so far: false when the connection is over (closed or broken).
bool ReadRequest(Connection& c, const HttpStatusServer::Handler& handler) {
  char buf[4096];
  while (true) {
    // Never read past the cap: a client must not make the server buffer without bound.
    size_t room = HttpStatusServer::kMaxRequestHeaderBytes + 1 - c.request.size();
    ssize_t n = ::recv(c.fd, buf, std::min(sizeof(buf), room), 0);
    if (n > 0) {
      c.request.append(buf, static_cast<size_t>(n));
      if (HeaderComplete(c.request)) {
        c.response = Answer(c.request, handler);
        c.writing = true;
        return true;
      }
      if (c.request.size() > HttpStatusServer::kMaxRequestHeaderBytes) {
        c.response = Serialize(
            PlainText(400, "request header larger than " +
                               std::to_string(HttpStatusServer::kMaxRequestHeaderBytes) + " bytes"),
            true);
        c.writing = true;
        return true;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;  // closed before the request was complete, or broken
  }
}

// Sends what the socket takes now: false when the connection is over (all sent or broken).
bool WriteResponse(Connection& c) {
  while (c.sent < c.response.size()) {
    ssize_t n = ::send(c.fd, c.response.data() + c.sent, c.response.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  ::shutdown(c.fd, SHUT_WR);
  return false;
}

struct BindAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string host;  // as shown in endpoint()
  bool v6 = false;
};

StatusOr<BindAddress> ParseBind(const std::string& bind) {
  ASSIGN_OR_RETURN(HostPort hp, SplitHostPort(bind));
  BindAddress out;
  std::string host = hp.host == "localhost" ? "127.0.0.1" : hp.host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(hp.port));
    out.len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(hp.port));
    out.len = sizeof(sockaddr_in6);
    out.v6 = true;
  } else {
    return InvalidArgumentError("HTTP status address '" + bind +
                                "': the host must be an IP address (127.0.0.1 for this machine "
                                "only, 0.0.0.0 for every interface) or localhost");
  }
  out.host = host;
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<HttpStatusServer>> HttpStatusServer::Start(const std::string& bind,
                                                                    Handler handler) {
  if (!handler) return InvalidArgumentError("HttpStatusServer needs a handler");
  ASSIGN_OR_RETURN(BindAddress address, ParseBind(bind));
  int fd = ::socket(address.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return UnavailableError("HTTP status server: socket: " + std::string(strerror(errno)));
  int one = 1;
  // A restarted coordinator must get its port back while old connections sit in TIME_WAIT.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (address.v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.addr), address.len) != 0 ||
      ::listen(fd, 64) != 0) {
    int error = errno;
    ::close(fd);
    return UnavailableError("HTTP status server: cannot listen on " + bind + ": " +
                            std::strerror(error));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  int port = address.v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    int error = errno;
    ::close(fd);
    return UnavailableError("HTTP status server: pipe: " + std::string(std::strerror(error)));
  }
  std::string endpoint =
      (address.v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(port);
  std::unique_ptr<HttpStatusServer> server(new HttpStatusServer(
      fd, pipe_fds[0], pipe_fds[1], port, std::move(endpoint), std::move(handler)));
  server->thread_ = std::thread([s = server.get()] { s->Serve(); });
  LogInfo("http_status_listening", {{"endpoint", server->endpoint()}});
  return server;
}

HttpStatusServer::HttpStatusServer(int listen_fd, int stop_read_fd, int stop_write_fd, int port,
                                   std::string endpoint, Handler handler)
    : listen_fd_(listen_fd),
      stop_read_fd_(stop_read_fd),
      stop_write_fd_(stop_write_fd),
      port_(port),
      endpoint_(std::move(endpoint)),
      handler_(std::move(handler)) {}

HttpStatusServer::~HttpStatusServer() { Stop(); }

void HttpStatusServer::Stop() {
  if (stopped_.exchange(true)) return;
  char byte = 1;
  while (::write(stop_write_fd_, &byte, 1) < 0 && errno == EINTR) {
  }
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(stop_read_fd_);
  ::close(stop_write_fd_);
}

void HttpStatusServer::Serve() {
  std::vector<Connection> connections;
  std::vector<pollfd> fds;
  // After accept() runs out of descriptors the listening socket stays readable; pausing keeps
  // the loop from spinning until some close.
  SteadyClock::time_point accept_paused_until{};
  while (true) {
    SteadyClock::time_point now = SteadyClock::now();
    bool accepting = connections.size() < kMaxConnections && now >= accept_paused_until;
    fds.clear();
    fds.push_back({stop_read_fd_, POLLIN, 0});
    // poll() ignores negative descriptors: the listener is simply left out while full.
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    SteadyClock::time_point wake = SteadyClock::time_point::max();
    if (!accepting && connections.size() < kMaxConnections) wake = accept_paused_until;
    for (const Connection& c : connections) {
      fds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
      wake = std::min(wake, c.deadline);
    }
    int timeout_ms = -1;
    if (wake != SteadyClock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1;
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
    }
    int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) {
      LogWarn("http_status_poll_failed", {{"error", std::strerror(errno)}});
    }
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) break;
    now = SteadyClock::now();

    std::vector<Connection> open;
    open.reserve(connections.size() + 1);
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& c = connections[i];
      bool keep = true;
      if (ready > 0 && fds[i + 2].revents != 0) {
        bool was_writing = c.writing;
        keep = c.writing ? WriteResponse(c) : ReadRequest(c, handler_);
        if (keep && c.writing && !was_writing) {
          // The request is in: the answer gets its own time to be taken.
          c.deadline = now + kIoTimeout;
          keep = WriteResponse(c);
        }
      }
      if (keep && now >= c.deadline) keep = false;  // too slow: drop without an answer
      if (keep) {
        open.push_back(std::move(c));
      } else {
        ::close(c.fd);
      }
    }
    connections = std::move(open);

    if (ready > 0 && accepting && (fds[1].revents & POLLIN) != 0) {
      while (connections.size() < kMaxConnections) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            LogWarn("http_status_accept_failed", {{"error", std::strerror(errno)}});
            accept_paused_until = now + std::chrono::milliseconds(100);
          }
          break;  // EAGAIN: nothing more waiting; others (ECONNABORTED): next poll
        }
        Connection c;
        c.fd = fd;
        c.deadline = now + kIoTimeout;
        connections.push_back(std::move(c));
      }
    }
  }
  for (const Connection& c : connections) ::close(c.fd);
}

}  // namespace clisc
