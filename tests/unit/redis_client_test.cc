#include "coordinator/redis_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/redis_server.h"

namespace clisc {
namespace {

using std::chrono::milliseconds;
using testutil::RedisServer;

TEST(RedisUrlTest, ParsesTcpUrls) {
  auto plain = ParseRedisUrl("redis://example.org");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->transport, RedisEndpoint::Transport::kTcp);
  EXPECT_EQ(plain->host, "example.org");
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->db, 0);
  EXPECT_TRUE(plain->password.empty());

  auto full = ParseRedisUrl("redis://alice:s3cr%40t%3A%2F@10.0.0.7:6380/3");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->host, "10.0.0.7");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->db, 3);
  EXPECT_EQ(full->username, "alice");
  EXPECT_EQ(full->password, "s3cr@t:/");
  EXPECT_EQ(full->redacted_url, "redis://alice:***@10.0.0.7:6380/3");

  auto password_only = ParseRedisUrl("REDIS://:pw@[::1]:7000/");
  ASSERT_TRUE(password_only.ok()) << password_only.status().ToString();
  EXPECT_EQ(password_only->host, "::1");
  EXPECT_EQ(password_only->port, 7000);
  EXPECT_TRUE(password_only->username.empty());
  EXPECT_EQ(password_only->password, "pw");

  auto defaults = ParseRedisUrl("redis://");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->host, "localhost");
  EXPECT_EQ(defaults->port, 6379);
}

TEST(RedisUrlTest, ParsesUnixUrls) {
  auto socket = ParseRedisUrl("unix:///run/redis/redis.sock?db=2");
  ASSERT_TRUE(socket.ok()) << socket.status().ToString();
  EXPECT_EQ(socket->transport, RedisEndpoint::Transport::kUnix);
  EXPECT_EQ(socket->socket_path, "/run/redis/redis.sock");
  EXPECT_EQ(socket->db, 2);

  auto with_auth = ParseRedisUrl("unix://:hunter2@/tmp/r.sock");
  ASSERT_TRUE(with_auth.ok()) << with_auth.status().ToString();
  EXPECT_EQ(with_auth->socket_path, "/tmp/r.sock");
  EXPECT_EQ(with_auth->password, "hunter2");
  EXPECT_EQ(with_auth->redacted_url, "unix://:***@/tmp/r.sock");
}

TEST(RedisUrlTest, RejectsBadUrlsWithoutQuotingThePassword) {
  const std::vector<std::string> bad = {
      "http://host",
      "rediss://host",
      "redis://host:0",
      "redis://host:70000",
      "redis://host:port",
      "redis://host:",
      "redis://host/notadb",
      "redis://host/-1",
      "redis://host?db=1",
      "redis://::1:6379",
      "redis://[::1",
      "redis://topsecret@host",
      "redis://user:@host",
      "redis://:bad%zzsecret@host",
      "unix://relative/path",
      "unix:///tmp/r.sock?timeout=3",
      "unix:///tmp/r.sock?db=x",
  };
  for (const std::string& url : bad) {
    auto parsed = ParseRedisUrl(url);
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << url;
    EXPECT_EQ(parsed.status().message().find("secret"), std::string::npos)
        << parsed.status().message();
  }
}

TEST(RedisUrlTest, RedactsPasswords) {
  EXPECT_EQ(RedactRedisUrl("redis://host:1/2"), "redis://host:1/2");
  EXPECT_EQ(RedactRedisUrl("redis://:pw@host"), "redis://:***@host");
  EXPECT_EQ(RedactRedisUrl("redis://u:p@w@host"), "redis://u:***@host");
  EXPECT_EQ(RedactRedisUrl("redis://onlysecret@host"), "redis://***@host");
  EXPECT_EQ(RedactRedisUrl("unix://:pw@/tmp/s.sock?db=1"), "unix://:***@/tmp/s.sock?db=1");
  EXPECT_EQ(RedactRedisUrl("garbage:pw@thing"), "garbage:***@thing");
}

TEST(RedisClientTest, CommandsArePipelinedAndBinarySafe) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto endpoint = ParseRedisUrl((*server)->url() + "/1");
  ASSERT_TRUE(endpoint.ok());
  auto client = RedisClient::Connect(*endpoint, milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  const std::string binary("a\0b\r\nc", 6);
  auto set = (*client)->Command({"SET", "k", binary});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  EXPECT_EQ(set->str, "OK");

  auto replies = (*client)->Pipeline({{"GET", "k"},
                                      {"GET", "missing"},
                                      {"INCRBY", "n", "5"},
                                      {"RPUSH", "l", "x", "y"},
                                      {"LRANGE", "l", "0", "-1"},
                                      {"HSET", "k", "f", "v"},
                                      {"PING"}});
  ASSERT_TRUE(replies.ok()) << replies.status().ToString();
  ASSERT_EQ(replies->size(), 7u);
  EXPECT_EQ((*replies)[0].str, binary);
  EXPECT_TRUE((*replies)[1].is_nil());
  EXPECT_EQ((*replies)[2].integer, 5);
  ASSERT_EQ((*replies)[4].type, RedisReply::Type::kArray);
  ASSERT_EQ((*replies)[4].elements.size(), 2u);
  EXPECT_EQ((*replies)[4].elements[1].str, "y");
  // An error reply is carried by the reply; the connection stays usable.
  EXPECT_TRUE((*replies)[5].is_error());
  EXPECT_NE((*replies)[5].str.find("WRONGTYPE"), std::string::npos);
  EXPECT_EQ((*replies)[6].str, "PONG");
  EXPECT_TRUE((*client)->healthy());
  EXPECT_EQ(RedisErrorReplyStatus((*replies)[5], "HSET k", (*client)->endpoint()).code(),
            StatusCode::kFailedPrecondition);

  // SELECT took effect: db 0 does not see the key.
  auto db0 = RedisClient::Connect(*ParseRedisUrl((*server)->url()), milliseconds(2000));
  ASSERT_TRUE(db0.ok());
  auto none = (*db0)->Command({"EXISTS", "k"});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->integer, 0);
}

TEST(RedisClientTest, ConnectsOverTheUnixSocket) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto endpoint = ParseRedisUrl("unix://" + (*server)->socket_path() + "?db=2");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().ToString();
  auto client = RedisClient::Connect(*endpoint, milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto pong = (*client)->Command({"PING"});
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(pong->str, "PONG");
}

TEST(RedisClientTest, AuthenticatesWithThePassword) {
  auto server = RedisServer::Start({.password = "correct-horse"});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = RedisClient::Connect(*ParseRedisUrl((*server)->url()), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto set = (*client)->Command({"SET", "a", "1"});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->str, "OK");

  // ACL form: the default user by name.
  std::string acl_url =
      "redis://default:correct-horse@127.0.0.1:" + std::to_string((*server)->port());
  auto acl = RedisClient::Connect(*ParseRedisUrl(acl_url), milliseconds(2000));
  EXPECT_TRUE(acl.ok()) << acl.status().ToString();
}

TEST(RedisClientTest, RefusedCredentialsArePermissionDeniedWithoutThePassword) {
  auto server = RedisServer::Start({.password = "correct-horse"});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::string port = std::to_string((*server)->port());

  auto wrong = RedisClient::Connect(*ParseRedisUrl("redis://:battery-staple@127.0.0.1:" + port),
                                    milliseconds(2000));
  ASSERT_EQ(wrong.status().code(), StatusCode::kPermissionDenied) << wrong.status().ToString();
  const std::string& message = wrong.status().message();
  EXPECT_NE(message.find("wrong username or password"), std::string::npos) << message;
  EXPECT_NE(message.find("redis://:***@127.0.0.1:" + port), std::string::npos) << message;
  EXPECT_EQ(message.find("battery-staple"), std::string::npos) << message;
  EXPECT_EQ(message.find("correct-horse"), std::string::npos) << message;

  auto missing =
      RedisClient::Connect(*ParseRedisUrl("redis://127.0.0.1:" + port), milliseconds(2000));
  ASSERT_EQ(missing.status().code(), StatusCode::kPermissionDenied) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("requires a password"), std::string::npos);
}

TEST(RedisClientTest, UnreachableServerIsUnavailableNamingTheRedactedUrl) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::string port = std::to_string((*server)->port());
  (*server)->Kill();
  auto refused =
      RedisClient::Connect(*ParseRedisUrl("redis://:pssst@127.0.0.1:" + port), milliseconds(500));
  ASSERT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("redis://:***@127.0.0.1:" + port), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(refused.status().message().find("pssst"), std::string::npos);
}

TEST(RedisClientTest, ConnectionLostMidSessionBreaksTheClient) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = RedisClient::Connect(*ParseRedisUrl((*server)->url()), milliseconds(1000));
  ASSERT_TRUE(client.ok());
  (*server)->Kill();
  auto lost = (*client)->Command({"PING"});
  EXPECT_EQ(lost.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE((*client)->healthy());
  // Still refused after the server is back: the caller reconnects.
  ASSERT_TRUE((*server)->Restart().ok());
  EXPECT_EQ((*client)->Command({"PING"}).status().code(), StatusCode::kUnavailable);
}

TEST(RedisClientTest, SilentServerTimesOut) {
  // A listening socket that never answers: connect succeeds (the backlog), PING never returns.
  testutil::SilentServer silent_server;
  ASSERT_TRUE(silent_server.ok());
  std::string url = silent_server.url();

  auto start = std::chrono::steady_clock::now();
  auto client = RedisClient::Connect(*ParseRedisUrl(url), milliseconds(200));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(client.status().code(), StatusCode::kUnavailable) << client.status().ToString();
  EXPECT_NE(client.status().message().find("no answer within"), std::string::npos)
      << client.status().message();
  EXPECT_LT(elapsed, milliseconds(1000));
}

}  // namespace
}  // namespace clisc
