#include "coordinator/redis_status_reader.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "coordinator/live_state_keys.h"
#include "coordinator/redis_client.h"
#include "tests/support/redis_server.h"

namespace clisc {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testutil::RedisServer;

class RedisStatusReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start({.password = "reader-pw"});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    redis_ = std::move(server).value();
  }

  void Write(const std::vector<std::vector<std::string>>& commands) {
    auto endpoint = ParseRedisUrl(redis_->url());
    ASSERT_TRUE(endpoint.ok());
    auto client = RedisClient::Connect(*endpoint, milliseconds(1000));
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    auto replies = (*client)->Pipeline(commands);
    ASSERT_TRUE(replies.ok()) << replies.status().ToString();
    for (const RedisReply& reply : *replies) ASSERT_FALSE(reply.is_error()) << reply.str;
  }

  // What LiveStateMirror leaves behind for a run.
  void Mirror(const std::string& prefix, const std::string& run, const std::string& status,
              int64_t ms) {
    LiveStateKeys keys(prefix, run);
    Write({{"SET", keys.current_run(), run},
           {"SADD", keys.runs(), run},
           {"SET", keys.status(), status},
           {"SET", keys.status_ms(), std::to_string(ms)}});
  }

  std::unique_ptr<RedisServer> redis_;
};

TEST_F(RedisStatusReaderTest, ReadsWhatWasMirrored) {
  Mirror("clisc", "older", R"({"run":"older"})", 100);
  Mirror("clisc", "night", R"({"run":"night","tasks":7})", 1'700'000'000'123);

  auto named = ReadMirroredStatus(redis_->url(), "older");
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->run_name, "older");
  EXPECT_EQ(named->status_json, R"({"run":"older"})");
  EXPECT_EQ(named->mirrored_ms, 100);

  auto current = ReadMirroredStatus(redis_->url(), "");
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  EXPECT_EQ(current->run_name, "night");
  EXPECT_EQ(current->status_json, R"({"run":"night","tasks":7})");
  EXPECT_EQ(current->mirrored_ms, 1'700'000'000'123);

  auto runs = ListMirroredRuns(redis_->url());
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  EXPECT_EQ(*runs, (std::vector<std::string>{"night", "older"}));
}

TEST_F(RedisStatusReaderTest, PrefixesKeepDeploymentsApart) {
  Mirror("lab-a", "r1", "{}", 1);
  EXPECT_TRUE(ReadMirroredStatus(redis_->url(), "r1", "lab-a").ok());
  EXPECT_EQ(ReadMirroredStatus(redis_->url(), "r1").status().code(), StatusCode::kNotFound);
  auto runs = ListMirroredRuns(redis_->url(), "lab-b");
  ASSERT_TRUE(runs.ok());
  EXPECT_TRUE(runs->empty());
}

TEST_F(RedisStatusReaderTest, UnknownRunIsNotFound) {
  auto none = ReadMirroredStatus(redis_->url(), "");
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("clisc:current_run"), std::string::npos)
      << none.status().message();

  Mirror("clisc", "night", "{}", 1);
  auto unknown = ReadMirroredStatus(redis_->url(), "day");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("'day'"), std::string::npos);
}

TEST_F(RedisStatusReaderTest, WrongPasswordIsPermissionDenied) {
  std::string url = "redis://:nope-nope@127.0.0.1:" + std::to_string(redis_->port());
  auto denied = ReadMirroredStatus(url, "");
  EXPECT_EQ(denied.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.status().message().find("nope-nope"), std::string::npos);
}

TEST_F(RedisStatusReaderTest, RedisDownIsUnavailableAndFast) {
  redis_->Kill();
  auto start = steady_clock::now();
  auto down = ReadMirroredStatus(redis_->url(), "", "clisc", milliseconds(500));
  EXPECT_LT(steady_clock::now() - start, milliseconds(500));
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(down.status().message().find("reader-pw"), std::string::npos);
  EXPECT_NE(down.status().message().find(":***@"), std::string::npos) << down.status().message();
  EXPECT_EQ(ListMirroredRuns(redis_->url()).status().code(), StatusCode::kUnavailable);
}

TEST_F(RedisStatusReaderTest, SilentServerIsUnavailableWithinTheTimeout) {
  testutil::SilentServer silent_server;
  ASSERT_TRUE(silent_server.ok());
  std::string url = silent_server.url();

  auto start = steady_clock::now();
  auto silent = ReadMirroredStatus(url, "", "clisc", milliseconds(300));
  auto elapsed = steady_clock::now() - start;
  EXPECT_EQ(silent.status().code(), StatusCode::kUnavailable) << silent.status().ToString();
  EXPECT_GE(elapsed, milliseconds(250));
  EXPECT_LT(elapsed, milliseconds(800));
}

TEST_F(RedisStatusReaderTest, BadUrlIsInvalidArgument) {
  EXPECT_EQ(ReadMirroredStatus("http://host", "").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clisc
