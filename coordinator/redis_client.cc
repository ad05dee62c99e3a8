#include "coordinator/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <utility>

namespace clisc {
namespace {

using std::chrono::milliseconds;

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

StatusOr<int> ParseNumber(std::string_view digits, int min, int max) {
  int value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value < min ||
      value > max) {
    return InvalidArgumentError("'" + std::string(digits) + "' is not a number in [" +
                                std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return value;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The caller names the part in its error: the text may be a password and is never quoted.
StatusOr<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    int hi = i + 2 < text.size() ? HexDigit(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? HexDigit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) return InvalidArgumentError("bad percent-encoding");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Status ParseUserinfo(std::string_view userinfo, const std::string& redacted, RedisEndpoint* out) {
  size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError("redis URL " + redacted +
                                ": credentials must be written [username]:password@");
  }
  StatusOr<std::string> username = PercentDecode(userinfo.substr(0, colon));
  if (!username.ok()) {
    return InvalidArgumentError("redis URL " + redacted + ": bad percent-encoding in the username");
  }
  StatusOr<std::string> password = PercentDecode(userinfo.substr(colon + 1));
  if (!password.ok()) {
    return InvalidArgumentError("redis URL " + redacted + ": bad percent-encoding in the password");
  }
  if (password->empty() && !username->empty()) {
    return InvalidArgumentError("redis URL " + redacted + ": username without a password");
  }
  out->username = std::move(username).value();
  out->password = std::move(password).value();
  return OkStatus();
}

Status ParseTcpLocation(std::string_view location, const std::string& redacted,
                        RedisEndpoint* out) {
  size_t slash = location.find('/');
  std::string_view authority = location.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : location.substr(slash);
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError("redis URL " + redacted + ": unterminated '[' in the host");
    }
    out->host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      return InvalidArgumentError("redis URL " + redacted + ": unexpected text after ']'");
    }
    if (!after.empty()) port_text = after.substr(1);
    if (after == ":") port_text = ":";  // an empty port is an error below
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return InvalidArgumentError("redis URL " + redacted + ": an IPv6 host needs brackets");
    }
    std::string_view host = authority.substr(0, colon);
    if (!host.empty()) out->host = std::string(host);
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    if (colon != std::string_view::npos && port_text.empty()) port_text = ":";
  }
  if (out->host.empty()) out->host = "localhost";
  if (!port_text.empty()) {
    StatusOr<int> port = ParseNumber(port_text, 1, 65535);
    if (!port.ok()) {
      return InvalidArgumentError("redis URL " + redacted +
                                  ": bad port: " + port.status().message());
    }
    out->port = *port;
  }
  if (path.size() > 1) {
    StatusOr<int> db = ParseNumber(path.substr(1), 0, 1 << 30);
    if (!db.ok()) {
      return InvalidArgumentError("redis URL " + redacted +
                                  ": the path must be a database number: " + db.status().message());
    }
    out->db = *db;
  }
  return OkStatus();
}

Status ParseUnixLocation(std::string_view location, const std::string& redacted,
                         RedisEndpoint* out) {
  size_t question = location.find('?');
  std::string_view path = location.substr(0, question);
  std::string_view query = question == std::string_view::npos ? "" : location.substr(question + 1);
  if (path.empty() || path.front() != '/') {
    return InvalidArgumentError("redis URL " + redacted +
                                ": expected unix:///absolute/path/to/socket");
  }
  StatusOr<std::string> decoded = PercentDecode(path);
  if (!decoded.ok()) {
    return InvalidArgumentError("redis URL " + redacted + ": bad percent-encoding in the path");
  }
  out->socket_path = std::move(decoded).value();
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    size_t eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    if (name != "db" || eq == std::string_view::npos) {
      return InvalidArgumentError("redis URL " + redacted + ": unknown parameter '" +
                                  std::string(name) + "' (only db=N)");
    }
    StatusOr<int> db = ParseNumber(param.substr(eq + 1), 0, 1 << 30);
    if (!db.ok()) {
      return InvalidArgumentError("redis URL " + redacted + ": bad db: " + db.status().message());
    }
    out->db = *db;
  }
  return OkStatus();
}

timeval ToTimeval(milliseconds timeout) {
  int64_t ms = std::max<int64_t>(1, timeout.count());
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

RedisReply CopyReply(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = r.type == REDIS_REPLY_STRING   ? RedisReply::Type::kString
                 : r.type == REDIS_REPLY_STATUS ? RedisReply::Type::kStatus
                                                : RedisReply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) out.elements.push_back(CopyReply(*r.element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

struct ReplyDeleter {
  void operator()(void* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<void, ReplyDeleter>;

// Redis does not echo passwords, but an error text is about to be logged: make sure.
std::string Scrub(std::string text, const RedisEndpoint& endpoint) {
  const std::string& secret = endpoint.password;
  if (secret.size() < 3) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

}  // namespace

StatusOr<RedisEndpoint> ParseRedisUrl(std::string_view url) {
  RedisEndpoint endpoint;
  endpoint.redacted_url = RedactRedisUrl(url);
  const std::string& redacted = endpoint.redacted_url;
  std::string_view rest;
  if (StartsWithNoCase(url, "redis://")) {
    rest = url.substr(8);
  } else if (StartsWithNoCase(url, "unix://")) {
    endpoint.transport = RedisEndpoint::Transport::kUnix;
    rest = url.substr(7);
  } else if (StartsWithNoCase(url, "rediss://")) {
    return InvalidArgumentError("redis URL " + redacted +
                                ": TLS (rediss://) is not supported; use redis:// or unix://");
  } else {
    return InvalidArgumentError("redis URL '" + redacted + "' must start with redis:// or unix://");
  }
  if (rest.find_first_of("#") != std::string_view::npos) {
    return InvalidArgumentError("redis URL " + redacted + ": unexpected '#'");
  }
  std::string_view location = rest;
  if (endpoint.transport == RedisEndpoint::Transport::kTcp) {
    if (rest.find('?') != std::string_view::npos) {
      return InvalidArgumentError("redis URL " + redacted +
                                  ": query parameters are not supported (give the db as /N)");
    }
    size_t at = rest.rfind('@');
    if (at != std::string_view::npos) {
      RETURN_IF_ERROR(ParseUserinfo(rest.substr(0, at), redacted, &endpoint));
      location = rest.substr(at + 1);
    }
    RETURN_IF_ERROR(ParseTcpLocation(location, redacted, &endpoint));
  } else {
    // A socket path starts with '/', so text before the first '/' can only be credentials.
    size_t at = rest.find('@');
    if (!rest.empty() && rest.front() != '/' && at != std::string_view::npos) {
      RETURN_IF_ERROR(ParseUserinfo(rest.substr(0, at), redacted, &endpoint));
      location = rest.substr(at + 1);
    }
    RETURN_IF_ERROR(ParseUnixLocation(location, redacted, &endpoint));
  }
  return endpoint;
}

std::string RedactRedisUrl(std::string_view url) {
  size_t scheme_end = url.find("://");
  size_t start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  // The last '@' before any query: hiding too much of a strange URL is safe, too little is not.
  size_t query = url.find('?', start);
  std::string_view head = url.substr(0, query);
  size_t at = head.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  std::string_view userinfo = url.substr(start, at - start);
  size_t colon = userinfo.find(':');
  size_t secret_begin = colon == std::string_view::npos ? start : start + colon + 1;
  if (secret_begin == at) return std::string(url);  // "redis://@host", "redis://user:@host"
  return std::string(url.substr(0, secret_begin)) + "***" + std::string(url.substr(at));
}

std::string RedisReply::Describe() const {
  switch (type) {
    case Type::kNil:
      return "nil";
    case Type::kInteger:
      return "integer " + std::to_string(integer);
    case Type::kString:
      return "string \"" + (str.size() > 40 ? str.substr(0, 40) + "..." : str) + "\"";
    case Type::kStatus:
      return "status " + str;
    case Type::kError:
      return "error " + str;
    case Type::kArray:
      return "array[" + std::to_string(elements.size()) + "]";
  }
  return "?";
}

Status RedisErrorReplyStatus(const RedisReply& reply, std::string_view what,
                             const RedisEndpoint& endpoint) {
  std::string text = Scrub(reply.is_error() ? reply.str : reply.Describe(), endpoint);
  std::string where = "redis at " + endpoint.redacted_url + ": ";
  std::string_view code = std::string_view(text).substr(0, text.find(' '));
  if (code == "NOAUTH") {
    return PermissionDeniedError(where + "the server requires a password and the URL gives none (" +
                                 text + "); write it as redis://[username]:password@host");
  }
  if (code == "WRONGPASS") {
    return PermissionDeniedError(where + "authentication failed: wrong username or password (" +
                                 text + ")");
  }
  if (code == "NOPERM") {
    return PermissionDeniedError(where + std::string(what) + " is not permitted for this user (" +
                                 text + ")");
  }
  return FailedPreconditionError(where + std::string(what) + " failed: " + text);
}

RedisClient::RedisClient(redisContext* context, RedisEndpoint endpoint)
    : context_(context), endpoint_(std::move(endpoint)) {}

RedisClient::~RedisClient() { redisFree(context_); }

StatusOr<std::unique_ptr<RedisClient>> RedisClient::Connect(const RedisEndpoint& endpoint,
                                                            milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto remaining = [&] {
    return std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(
                                         deadline - std::chrono::steady_clock::now()));
  };
  timeval tv = ToTimeval(timeout);
  redisContext* context = endpoint.transport == RedisEndpoint::Transport::kTcp
                              ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv)
                              : redisConnectUnixWithTimeout(endpoint.socket_path.c_str(), tv);
  if (context == nullptr) {
    return UnavailableError("redis at " + endpoint.redacted_url + ": cannot allocate a connection");
  }
  if (context->err != 0) {
    std::string reason = context->errstr;
    redisFree(context);
    return UnavailableError("redis at " + endpoint.redacted_url + ": cannot connect: " + reason);
  }
  std::unique_ptr<RedisClient> client(new RedisClient(context, endpoint));
  if (endpoint.transport == RedisEndpoint::Transport::kTcp) redisEnableKeepAlive(context);

  std::vector<std::vector<std::string>> handshake;
  std::vector<std::string> names;
  if (!endpoint.password.empty()) {
    handshake.push_back(
        endpoint.username.empty()
            ? std::vector<std::string>{"AUTH", endpoint.password}
            : std::vector<std::string>{"AUTH", endpoint.username, endpoint.password});
    names.push_back("AUTH");
  }
  if (endpoint.db != 0) {
    handshake.push_back({"SELECT", std::to_string(endpoint.db)});
    names.push_back("SELECT " + std::to_string(endpoint.db));
  }
  // PING proves the server answers (and tells NOAUTH apart when the URL has no password).
  handshake.push_back({"PING"});
  names.push_back("PING");
  RETURN_IF_ERROR(client->SetTimeout(remaining()));
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, client->Pipeline(handshake));
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].is_error()) return RedisErrorReplyStatus(replies[i], names[i], endpoint);
  }
  RETURN_IF_ERROR(client->SetTimeout(timeout));
  return client;
}

Status RedisClient::SetTimeout(milliseconds timeout) {
  RETURN_IF_ERROR(broken_);
  if (redisSetTimeout(context_, ToTimeval(timeout)) != REDIS_OK) return MarkBroken("set timeout");
  timeout_ = timeout;
  return OkStatus();
}

Status RedisClient::MarkBroken(std::string_view during) {
  std::string reason = context_->err != 0 ? context_->errstr : "connection error";
  if (reason.find("temporarily unavailable") != std::string::npos ||
      reason.find("timed out") != std::string::npos) {
    reason = "no answer within " + std::to_string(timeout_.count()) + " ms";
  }
  broken_ = UnavailableError("redis at " + endpoint_.redacted_url + ": " + std::string(during) +
                             " failed: " + Scrub(reason, endpoint_));
  return broken_;
}

StatusOr<RedisReply> RedisClient::Command(const std::vector<std::string>& argv) {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, Pipeline({argv}));
  return std::move(replies.front());
}

StatusOr<std::vector<RedisReply>> RedisClient::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  RETURN_IF_ERROR(broken_);
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const std::vector<std::string>& argv : commands) {
    if (argv.empty()) return InvalidArgumentError("empty redis command");
    args.clear();
    lengths.clear();
    for (const std::string& arg : argv) {
      args.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), args.data(),
                               lengths.data()) != REDIS_OK) {
      return MarkBroken(argv.front());
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (const std::vector<std::string>& argv : commands) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      return MarkBroken(commands.size() == 1 ? argv.front()
                                             : "pipeline of " + std::to_string(commands.size()) +
                                                   " commands (at " + argv.front() + ")");
    }
    ReplyPtr reply(raw);
    replies.push_back(CopyReply(*static_cast<redisReply*>(raw)));
  }
  return replies;
}

}  // namespace clisc
