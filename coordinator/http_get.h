// A minimal HTTP/1.1 client for `clisc status`: one GET, one connection, one deadline. Enough to
// read the coordinator's /api/status without pulling in an HTTP library.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace clisc {

struct HostPort {
  std::string host;  // without brackets for IPv6
  int port = 0;
};

// Splits "host:port" or "[ipv6]:port" (port 0-65535). INVALID_ARGUMENT, naming the text, for
// anything else: a missing or non-numeric port, an empty host, a bare IPv6 address.
StatusOr<HostPort> SplitHostPort(std::string_view text);

// GETs http://host_port/path and returns the body of a 200 answer. Every other answer is an
// error carrying the status line (404 -> NOT_FOUND, 5xx -> UNAVAILABLE, others ->
// FAILED_PRECONDITION); no connection is UNAVAILABLE; nothing complete within `timeout` (the
// whole exchange, connect included) is DEADLINE_EXCEEDED.
StatusOr<std::string> HttpGet(const std::string& host_port, const std::string& path,
                              std::chrono::milliseconds timeout);

}  // namespace clisc
