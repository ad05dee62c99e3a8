#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/live_flush.h"

namespace clisc {
namespace {

using Commands = std::vector<std::vector<std::string>>;

RedisReply StatusReply(std::string text) {
  RedisReply r;
  r.type = RedisReply::Type::kStatus;
  r.str = std::move(text);
  return r;
}

RedisReply Error(std::string text) {
  RedisReply r;
  r.type = RedisReply::Type::kError;
  r.str = std::move(text);
  return r;
}

RedisReply Integer(int64_t value) {
  RedisReply r;
  r.type = RedisReply::Type::kInteger;
  r.integer = value;
  return r;
}

// The replies Redis gives to a flush whose every command succeeded.
std::vector<RedisReply> Success(const Commands& commands) {
  std::vector<RedisReply> replies = {StatusReply("OK")};
  RedisReply exec;
  exec.type = RedisReply::Type::kArray;
  for (size_t i = 1; i + 2 < commands.size(); ++i) {
    replies.push_back(StatusReply("QUEUED"));
    exec.elements.push_back(Integer(1));
  }
  replies.push_back(exec);
  replies.push_back(Integer(0));
  return replies;
}

TEST(LiveFlushTest, DiffWorkersFindsChangesAndDepartures) {
  WorkerEntries written = {{"w1", "{}"}, {"w2", R"({"a":1})"}, {"w3", "{}"}};
  WorkerEntries next = {{"w1", "{}"}, {"w2", R"({"a":2})"}, {"w4", "{}"}};
  WorkerEntries changed;
  std::vector<std::string> removed;
  DiffWorkers(written, next, &changed, &removed);
  EXPECT_EQ(changed, (WorkerEntries{{"w2", R"({"a":2})"}, {"w4", "{}"}}));
  EXPECT_EQ(removed, (std::vector<std::string>{"w3"}));
}

TEST(LiveFlushTest, EventsAndTheirSeqShareOneTransaction) {
  LiveStateKeys keys("p", "r");
  LiveFlushContent content;
  content.run_name = "r";
  content.status_json = R"({"s":1})";
  content.mirrored_ms = 99;
  content.removed_workers = {"w3"};
  content.set_workers = {{"w1", "{}"}};
  content.worker_ttl_ms = 30000;
  EventRecord e;
  e.seq = 7;
  e.time_ms = 5;
  e.kind = "task_leased";
  e.task_id = 3;
  e.worker_id = "w1";
  e.payload_json = R"({"attempt":1})";
  content.events = {e};
  content.events_seq = 8;
  content.stream_max_len = 1000;
  Commands commands = BuildFlushCommands(keys, content);
  Commands expected = {
      {"MULTI"},
      {"SET", "p:current_run", "r"},
      {"SADD", "p:runs", "r"},
      {"SET", "p:run:r:status", R"({"s":1})"},
      {"SET", "p:run:r:status_ms", "99"},
      {"HDEL", "p:run:r:workers", "w3"},
      {"HSET", "p:run:r:workers", "w1", "{}"},
      {"PEXPIRE", "p:run:r:workers", "30000"},
      {"XADD", "p:run:r:events", "MAXLEN", "~", "1000", "*", "seq", "7", "time_ms", "5", "kind",
       "task_leased", "task_id", "3", "worker_id", "w1", "payload", R"({"attempt":1})"},
      {"SET", "p:run:r:events_seq", "8"},
      {"EXEC"},
  };
  ASSERT_EQ(commands.size(), expected.size() + 1);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(commands[i], expected[i]) << i;
  EXPECT_EQ(commands.back()[0], "PUBLISH");
  EXPECT_EQ(commands.back()[1], "p:run:r:notify");
  EXPECT_NE(commands.back()[2].find(R"("events_seq":8)"), std::string::npos);
}

TEST(LiveFlushTest, ResyncReplacesWorkersAndMayResetTheStream) {
  LiveStateKeys keys("p", "r");
  LiveFlushContent content;
  content.run_name = "r";
  content.replace_workers = true;
  content.set_workers = {{"w1", "{}"}};
  content.reset_events = true;
  content.events_seq = 0;
  Commands commands = BuildFlushCommands(keys, content);
  EXPECT_EQ(commands[3], (std::vector<std::string>{"DEL", "p:run:r:workers"}));
  EXPECT_EQ(commands[4][0], "HSET");
  EXPECT_EQ(commands[5], (std::vector<std::string>{"DEL", "p:run:r:events"}));
  EXPECT_EQ(commands[6], (std::vector<std::string>{"SET", "p:run:r:events_seq", "0"}));
}

TEST(LiveFlushTest, CheckFlushRepliesNamesTheFailingCommand) {
  RedisEndpoint endpoint;
  endpoint.redacted_url = "redis://h:1";
  LiveStateKeys keys("p", "r");
  LiveFlushContent content;
  content.run_name = "r";
  content.status_json = "{}";
  Commands commands = BuildFlushCommands(keys, content);
  EXPECT_TRUE(CheckFlushReplies(commands, Success(commands), endpoint).ok());

  // A runtime error inside EXEC (the status key holds a hash).
  std::vector<RedisReply> wrong_type = Success(commands);
  wrong_type[commands.size() - 2].elements[2] = Error("WRONGTYPE Operation against a key");
  Status failed = CheckFlushReplies(commands, wrong_type, endpoint);
  EXPECT_EQ(failed.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(failed.message().find("SET p:run:r:status"), std::string::npos) << failed.message();

  // Refused while queueing: EXEC aborts.
  std::vector<RedisReply> aborted = Success(commands);
  aborted[1] = Error("NOPERM this user has no permissions to run the 'set' command");
  aborted[commands.size() - 2] = Error("EXECABORT Transaction discarded");
  EXPECT_EQ(CheckFlushReplies(commands, aborted, endpoint).code(), StatusCode::kPermissionDenied);

  EXPECT_FALSE(CheckFlushReplies(commands, {StatusReply("OK")}, endpoint).ok());
}

}  // namespace
}  // namespace clisc
