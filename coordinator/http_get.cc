#include "coordinator/http_get.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <utility>

namespace clisc {

namespace {

using Clock = std::chrono::steady_clock;

// A response larger than this is not a status document; stop reading instead of filling memory.
constexpr size_t kMaxResponseBytes = 64u << 20;

class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// Waits for `events` on fd until the deadline: true when ready, false on timeout.
StatusOr<bool> WaitFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, RemainingMs(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return UnavailableError(std::string("poll: ") + std::strerror(errno));
  }
}

// Connects to one address without blocking past the deadline: UNAVAILABLE when refused or
// unreachable (the next address may do), DEADLINE_EXCEEDED when time is up.
StatusOr<int> ConnectOne(const addrinfo& ai, Clock::time_point deadline) {
  ScopedFd fd(
      ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol));
  if (fd.get() < 0) return UnavailableError(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd.get(), ai.ai_addr, ai.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return UnavailableError(std::strerror(errno));
    ASSIGN_OR_RETURN(bool ready, WaitFor(fd.get(), POLLOUT, deadline));
    if (!ready) return DeadlineExceededError("connect timed out");
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) return UnavailableError(std::strerror(so_error));
  }
  return fd.release();
}

StatusOr<int> Connect(const HostPort& target, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = std::to_string(target.port);
  int rc = ::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return UnavailableError("cannot resolve " + target.host + ": " + ::gai_strerror(rc));
  }
  Status last = UnavailableError("no address");
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    StatusOr<int> fd = ConnectOne(*ai, deadline);
    if (fd.ok()) {
      ::freeaddrinfo(found);
      return fd;
    }
    last = fd.status();
    if (last.code() != StatusCode::kUnavailable) break;
  }
  ::freeaddrinfo(found);
  return last.WithContext("cannot connect");
}

Status SendAll(int fd, const std::string& data, Clock::time_point deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ASSIGN_OR_RETURN(bool ready, WaitFor(fd, POLLOUT, deadline));
      if (!ready) return DeadlineExceededError("sending the request timed out");
      continue;
    }
    return UnavailableError(std::string("sending the request: ") + std::strerror(errno));
  }
  return OkStatus();
}

// Reads until the server closes the connection (we ask for Connection: close).
StatusOr<std::string> ReceiveAll(int fd, Clock::time_point deadline) {
  std::string data;
  char buf[16384];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      data.append(buf, static_cast<size_t>(n));
      if (data.size() > kMaxResponseBytes) {
        return ResourceExhaustedError("response larger than " + std::to_string(kMaxResponseBytes) +
                                      " bytes");
      }
      continue;
    }
    if (n == 0) return data;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      ASSIGN_OR_RETURN(bool ready, WaitFor(fd, POLLIN, deadline));
      if (!ready) return DeadlineExceededError("the answer did not complete in time");
      continue;
    }
    return UnavailableError(std::string("reading the answer: ") + std::strerror(errno));
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

StatusOr<std::string> DecodeChunked(std::string_view body) {
  std::string out;
  while (true) {
    size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return DataLossError("truncated chunked body");
    std::string_view size_text = body.substr(0, eol);
    size_text = size_text.substr(0, size_text.find(';'));
    size_t size = 0;
    auto [ptr, ec] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc() || ptr == size_text.data()) {
      return DataLossError("bad chunk size in chunked body");
    }
    body.remove_prefix(eol + 2);
    if (size == 0) return out;
    if (body.size() < size + 2) return DataLossError("truncated chunked body");
    out.append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
}

StatusCode CodeForHttpStatus(int status) {
  if (status == 404) return StatusCode::kNotFound;
  if (status >= 500) return StatusCode::kUnavailable;
  return StatusCode::kFailedPrecondition;
}

// Splits the raw answer into status and body; only 200 yields the body.
StatusOr<std::string> ParseResponse(const std::string& raw) {
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return DataLossError("no complete HTTP header in answer");
  std::string_view head(raw.data(), header_end);
  size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    return DataLossError("not an HTTP answer: '" + std::string(status_line.substr(0, 80)) + "'");
  }
  int status = 0;
  auto [ptr, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
  if (ec != std::errc() || ptr != status_line.data() + 12) {
    return DataLossError("bad HTTP status line '" + std::string(status_line) + "'");
  }
  if (status != 200) return Status(CodeForHttpStatus(status), std::string(status_line));

  std::optional<size_t> content_length;
  bool chunked = false;
  std::string_view headers =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!headers.empty()) {
    size_t eol = headers.find("\r\n");
    std::string_view line = headers.substr(0, eol);
    headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = Lower(line.substr(0, colon));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "content-length") {
      size_t n = 0;
      auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (error != std::errc()) return DataLossError("bad Content-Length in answer");
      content_length = n;
    } else if (name == "transfer-encoding" && Lower(value).find("chunked") != std::string::npos) {
      chunked = true;
    }
  }
  std::string_view body(raw.data() + header_end + 4, raw.size() - header_end - 4);
  if (chunked) return DecodeChunked(body);
  if (content_length.has_value()) {
    if (body.size() < *content_length) {
      return DataLossError("answer truncated: " + std::to_string(body.size()) + " of " +
                           std::to_string(*content_length) + " bytes");
    }
    body = body.substr(0, *content_length);
  }
  return std::string(body);
}

}  // namespace

StatusOr<HostPort> SplitHostPort(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("address '" + std::string(text) + "': " + why +
                                " (expected HOST:PORT, e.g. 127.0.0.1:8470)");
  };
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("unclosed '['");
    out.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("no port");
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad("an IPv6 host needs [brackets]");
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  for (char c : out.host) {
    if (c <= ' ' || c == '/' || c == '[' || c == ']' || c == '@') return bad("bad host");
  }
  int port = -1;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || port_text.size() > 5 || ec != std::errc() ||
      ptr != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  out.port = port;
  return out;
}

StatusOr<std::string> HttpGet(const std::string& host_port, const std::string& path,
                              std::chrono::milliseconds timeout) {
  std::string url = "http://" + host_port + path;
  auto fail = [&](const Status& s) { return s.WithContext("GET " + url); };
  StatusOr<HostPort> target = SplitHostPort(host_port);
  if (!target.ok()) return target.status();
  if (path.empty() || path.front() != '/') {
    return InvalidArgumentError("GET " + url + ": the path must start with '/'");
  }
  Clock::time_point deadline = Clock::now() + timeout;
  StatusOr<int> connected = Connect(*target, deadline);
  if (!connected.ok()) return fail(connected.status());
  ScopedFd fd(*connected);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_port +
                        "\r\nUser-Agent: clisc\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  if (Status sent = SendAll(fd.get(), request, deadline); !sent.ok()) return fail(sent);
  StatusOr<std::string> raw = ReceiveAll(fd.get(), deadline);
  if (!raw.ok()) return fail(raw.status());
  StatusOr<std::string> body = ParseResponse(*raw);
  if (!body.ok()) return fail(body.status());
  return body;
}

}  // namespace clisc
