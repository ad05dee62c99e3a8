// The status HTTP server and client over real sockets: answers, refusals, and clients that
// misbehave without holding up the others.
#include "coordinator/http_status_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "coordinator/http_get.h"

namespace clisc {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

HttpStatusServer::Handler TestHandler(std::atomic<int>* calls = nullptr) {
  return [calls](std::string_view method, std::string_view path) {
    if (calls != nullptr) ++*calls;
    if (path == "/api/status") {
      return HttpResponse{200, "application/json", R"({"schema":1})"};
    }
    if (path == "/healthz") return HttpResponse{200, "", "ok"};
    return HttpResponse{404, "", "no such page: " + std::string(path)};
  };
}

std::unique_ptr<HttpStatusServer> StartServer(const std::string& bind = "127.0.0.1:0",
                                              std::atomic<int>* calls = nullptr) {
  auto server = HttpStatusServer::Start(bind, TestHandler(calls));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

// A raw client socket connected to 127.0.0.1:port.
int Connect(int port, const char* host = "127.0.0.1") {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host, &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` and reads until the server closes (or `timeout`).
std::string Exchange(int port, const std::string& request,
                     milliseconds timeout = milliseconds(3000)) {
  int fd = Connect(port);
  EXPECT_GE(fd, 0);
  if (fd < 0) return "";
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string answer;
  auto deadline = SteadyClock::now() + timeout;
  char buf[4096];
  while (SteadyClock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return answer;
}

// True when the server closed `fd` within `timeout`.
bool ClosedWithin(int fd, milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  char buf[256];
  while (SteadyClock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return false;
}

TEST(HttpStatusServerTest, ServesTheHandlersBody) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->endpoint(), "127.0.0.1:" + std::to_string(server->port()));
  auto body = HttpGet(server->endpoint(), "/api/status", milliseconds(2000));
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, R"({"schema":1})");
  auto health = HttpGet(server->endpoint(), "/healthz?verbose=1", milliseconds(2000));
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(*health, "ok");

  std::string raw = Exchange(server->port(), "GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw;
  EXPECT_NE(raw.find("Content-Type: application/json\r\n"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Content-Length: 12\r\n"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Connection: close\r\n"), std::string::npos) << raw;
}

TEST(HttpStatusServerTest, HeadHasHeadersOnly) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string raw = Exchange(server->port(), "HEAD /api/status HTTP/1.1\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw;
  EXPECT_NE(raw.find("Content-Length: 12\r\n"), std::string::npos) << raw;
  EXPECT_EQ(raw.substr(raw.size() - 4), "\r\n\r\n") << raw;
}

TEST(HttpStatusServerTest, RefusesWhatItDoesNotServe) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto missing = HttpGet(server->endpoint(), "/nope", milliseconds(2000));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("HTTP/1.1 404 Not Found"), std::string::npos)
      << missing.status().message();

  std::string post = Exchange(server->port(), "POST /api/status HTTP/1.1\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos) << post;

  std::string garbage = Exchange(server->port(), "\x16\x03\x01 hello there\r\n\r\n");
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400 ", 0), 0u) << garbage;
  EXPECT_NE(garbage.find("text/plain"), std::string::npos) << garbage;

  std::string huge = "GET /api/status HTTP/1.1\r\nX-Pad: " + std::string(10000, 'a');
  std::string too_large = Exchange(server->port(), huge);
  EXPECT_EQ(too_large.rfind("HTTP/1.1 400 ", 0), 0u) << too_large.substr(0, 200);
  EXPECT_NE(too_large.find("8192"), std::string::npos) << too_large.substr(0, 200);
}

TEST(HttpStatusServerTest, SilentAndGarbageClientsDoNotDelayOthers) {
  std::atomic<int> calls{0};
  auto server = StartServer("127.0.0.1:0", &calls);
  ASSERT_NE(server, nullptr);
  int silent = Connect(server->port());
  ASSERT_GE(silent, 0);
  int partial = Connect(server->port());
  ASSERT_GE(partial, 0);
  std::string half = "GET /api/sta";
  ASSERT_EQ(::send(partial, half.data(), half.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(half.size()));

  auto started = SteadyClock::now();
  auto body = HttpGet(server->endpoint(), "/api/status", milliseconds(3000));
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_LT(SteadyClock::now() - started, milliseconds(1000));

  // Both stalled clients are dropped after the I/O timeout, without an answer.
  EXPECT_TRUE(ClosedWithin(silent, milliseconds(3500)));
  EXPECT_TRUE(ClosedWithin(partial, milliseconds(1000)));
  auto dropped_after = SteadyClock::now() - started;
  EXPECT_GE(dropped_after, milliseconds(1500));
  ::close(silent);
  ::close(partial);
  EXPECT_EQ(calls.load(), 1);
}

TEST(HttpStatusServerTest, BindsOnlyTheGivenHost) {
  auto server = StartServer("127.0.0.1:0");
  ASSERT_NE(server, nullptr);
  // Another address of this machine must not reach a server bound to loopback.
  ifaddrs* addresses = nullptr;
  ASSERT_EQ(::getifaddrs(&addresses), 0);
  std::string other;
  for (ifaddrs* a = addresses; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    if (std::string(text).rfind("127.", 0) != 0) {
      other = text;
      break;
    }
  }
  ::freeifaddrs(addresses);
  if (other.empty()) GTEST_SKIP() << "no non-loopback IPv4 address to try";
  int fd = Connect(server->port(), other.c_str());
  EXPECT_LT(fd, 0) << "reachable through " << other;
  if (fd >= 0) ::close(fd);
  auto via_other =
      HttpGet(other + ":" + std::to_string(server->port()), "/healthz", milliseconds(1000));
  EXPECT_FALSE(via_other.ok());
}

TEST(HttpStatusServerTest, RefusesGarbageBindAddresses) {
  for (const char* bind : {"", "8470", "nonsense", "example.com:8470", "127.0.0.1:99999",
                           "127.0.0.1:", ":8470", "127.0.0.1:84x0", "::1:8470", "1.2.3:80"}) {
    auto server = HttpStatusServer::Start(bind, TestHandler());
    ASSERT_FALSE(server.ok()) << bind;
    EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument) << bind;
  }
  auto localhost = HttpStatusServer::Start("localhost:0", TestHandler());
  ASSERT_TRUE(localhost.ok()) << localhost.status().ToString();
  EXPECT_EQ((*localhost)->endpoint().rfind("127.0.0.1:", 0), 0u);
}

TEST(HttpStatusServerTest, StopClosesThePort) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string endpoint = server->endpoint();
  ASSERT_TRUE(HttpGet(endpoint, "/healthz", milliseconds(2000)).ok());
  server->Stop();
  server->Stop();
  auto after = HttpGet(endpoint, "/healthz", milliseconds(1000));
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable) << after.status().ToString();
  EXPECT_NE(after.status().message().find(endpoint), std::string::npos);
}

TEST(HttpGetTest, TimesOutOnAServerThatNeverAnswers) {
  // A listening socket nobody accepts on: the connection completes, the answer never comes.
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string endpoint = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto started = SteadyClock::now();
  auto body = HttpGet(endpoint, "/api/status", milliseconds(300));
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), StatusCode::kDeadlineExceeded) << body.status().ToString();
  EXPECT_LT(SteadyClock::now() - started, milliseconds(1500));
  ::close(listener);
}

TEST(HttpGetTest, SplitsHostAndPort) {
  auto v4 = SplitHostPort("10.0.0.5:8470");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "10.0.0.5");
  EXPECT_EQ(v4->port, 8470);
  auto v6 = SplitHostPort("[::1]:80");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 80);
  auto name = SplitHostPort("coordinator.internal:8470");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "coordinator.internal");
  for (const char* bad : {"", "host", "host:", ":1", "host:65536", "host:-1", "[::1]", "a:b:1"}) {
    EXPECT_FALSE(SplitHostPort(bad).ok()) << bad;
  }
  auto bad_path = HttpGet("127.0.0.1:1", "api", milliseconds(100));
  EXPECT_EQ(bad_path.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clisc
