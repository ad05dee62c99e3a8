// The adapter around hiredis: every Redis call of the project goes through RedisClient, and every
// hiredis failure comes back as a Status naming the endpoint. Endpoints appear in messages and
// logs only in redacted form (RedactRedisUrl): a password never leaves this file.
//
// A RedisClient is one blocking connection with a timeout on every read and write, for one
// thread at a time. After a connection error (refused, reset, timed out) hiredis cannot tell
// which commands the server executed, so the client refuses further commands: callers drop it
// and connect again.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct redisContext;

namespace clisc {

// Where a Redis server is and how to log in to it.
struct RedisEndpoint {
  enum class Transport { kTcp, kUnix };
  Transport transport = Transport::kTcp;
  std::string host = "localhost";  // kTcp
  int port = 6379;                 // kTcp
  std::string socket_path;         // kUnix
  std::string username;            // empty: AUTH with the password alone (the default user)
  std::string password;            // empty: no AUTH
  int db = 0;
  std::string redacted_url;  // the URL it was parsed from, password replaced (for messages)
};

// Parses `redis://[[username]:password@]host[:port][/db]` (an IPv6 host in brackets) and
// `unix://[[username]:password@]/path/to/socket[?db=N]`. Username and password are
// percent-decoded, so a password holding ':', '@' or '/' must be written %3A, %40, %2F.
// INVALID_ARGUMENT names the redacted URL and the part at fault.
StatusOr<RedisEndpoint> ParseRedisUrl(std::string_view url);

// The URL with its password (everything between the userinfo's first ':' and its '@', or the
// whole userinfo when it has no ':') replaced by "***". Works on malformed URLs too, so that an
// error about a bad URL can quote it.
std::string RedactRedisUrl(std::string_view url);

// One reply, copied out of hiredis' reply tree. RESP2 types only (hiredis 0.14).
struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;               // kInteger
  std::string str;                   // kString (binary safe), kStatus, kError
  std::vector<RedisReply> elements;  // kArray

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
  // "nil", "integer 3", "string \"...\"" (shortened), "error ERR ...", "array[2]".
  std::string Describe() const;
};

// The Status for an error reply to `what` (e.g. "SELECT 2"): NOAUTH, WRONGPASS and NOPERM are
// PERMISSION_DENIED; anything else is FAILED_PRECONDITION (wrong type, unknown command, ...).
Status RedisErrorReplyStatus(const RedisReply& reply, std::string_view what,
                             const RedisEndpoint& endpoint);

class RedisClient {
 public:
  // Connects, then AUTH (username + password for an ACL user, or password alone), SELECT db and
  // PING, all within `timeout`, which afterwards bounds each read and write of a command.
  // UNAVAILABLE when the server cannot be reached or does not answer in time; PERMISSION_DENIED
  // when it refuses the credentials (or wants some and got none).
  static StatusOr<std::unique_ptr<RedisClient>> Connect(const RedisEndpoint& endpoint,
                                                        std::chrono::milliseconds timeout);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One command, binary safe. An error reply is a reply (type kError), not a failed Status: the
  // Status reports only the connection (UNAVAILABLE).
  StatusOr<RedisReply> Command(const std::vector<std::string>& argv);
  // Sends all commands in one write and reads their replies, in order (one round trip).
  StatusOr<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& commands);

  // Changes the timeout on each read and write from now on.
  Status SetTimeout(std::chrono::milliseconds timeout);
  // False once a connection error has made this client unusable.
  bool healthy() const { return broken_.ok(); }
  const RedisEndpoint& endpoint() const { return endpoint_; }

 private:
  RedisClient(redisContext* context, RedisEndpoint endpoint);
  // UNAVAILABLE from the context's error, remembered so later calls fail the same way.
  Status MarkBroken(std::string_view during);

  redisContext* context_;
  RedisEndpoint endpoint_;
  std::chrono::milliseconds timeout_{0};
  Status broken_;
};

}  // namespace clisc
