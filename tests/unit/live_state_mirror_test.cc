#include "coordinator/live_state_mirror.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/live_state_keys.h"
#include "coordinator/redis_client.h"
#include "coordinator/redis_status_reader.h"
#include "tests/support/redis_server.h"
#include "tests/unit/ledger_fixture.h"

namespace clisc {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testutil::RedisServer;

using StreamEntry = std::map<std::string, std::string>;

class LiveStateMirrorTest : public testutil::LedgerTest {
 protected:
  void SetUp() override {
    testutil::LedgerTest::SetUp();
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    redis_ = std::move(server).value();
  }
  void TearDown() override {
    mirror_.reset();
    redis_.reset();
    testutil::LedgerTest::TearDown();
  }

  LiveStateMirrorOptions Options() {
    LiveStateMirrorOptions o;
    o.redis_url = redis_->url();
    o.run_name = "run";
    o.ledger_path = path_;
    o.flush_interval_ms = 20;
    o.reconnect_max_backoff_ms = 100;
    o.io_timeout_ms = 500;
    return o;
  }

  void StartMirror(LiveStateMirrorOptions options) {
    auto mirror = LiveStateMirror::Start(std::move(options));
    ASSERT_TRUE(mirror.ok()) << mirror.status().ToString();
    mirror_ = std::move(mirror).value();
  }

  // A fresh connection per call: the server may have been restarted in between.
  StatusOr<RedisReply> Redis(const std::vector<std::string>& argv) {
    ASSIGN_OR_RETURN(RedisEndpoint endpoint, ParseRedisUrl(redis_->url()));
    ASSIGN_OR_RETURN(auto client, RedisClient::Connect(endpoint, milliseconds(1000)));
    return client->Command(argv);
  }

  std::string Get(const std::string& key) {
    auto reply = Redis({"GET", key});
    return reply.ok() ? reply->str : "<" + reply.status().ToString() + ">";
  }

  std::vector<StreamEntry> Stream() {
    std::vector<StreamEntry> entries;
    auto reply = Redis({"XRANGE", keys_.events(), "-", "+"});
    if (!reply.ok()) return entries;
    for (const RedisReply& item : reply->elements) {
      StreamEntry entry;
      const std::vector<RedisReply>& fields = item.elements[1].elements;
      for (size_t i = 0; i + 1 < fields.size(); i += 2) entry[fields[i].str] = fields[i + 1].str;
      entries.push_back(std::move(entry));
    }
    return entries;
  }

  std::map<std::string, std::string> Workers() {
    std::map<std::string, std::string> workers;
    auto reply = Redis({"HGETALL", keys_.workers()});
    if (!reply.ok()) return workers;
    for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
      workers[reply->elements[i].str] = reply->elements[i + 1].str;
    }
    return workers;
  }

  // The ledger events the run's stream must hold: the run's own and those of no run.
  std::vector<EventRecord> ExpectedEvents() {
    auto events = ledger_->ListEvents(0, 1'000'000);
    EXPECT_TRUE(events.ok());
    std::vector<EventRecord> out;
    for (const EventRecord& e : *events) {
      if (!e.run_id || *e.run_id == run_) out.push_back(e);
    }
    return out;
  }

  int64_t LastLedgerSeq() {
    auto events = ledger_->ListEvents(0, 1'000'000);
    return events.ok() && !events->empty() ? events->back().seq : 0;
  }

  static bool WaitFor(const std::function<bool()>& done,
                      milliseconds timeout = milliseconds(5000)) {
    auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return done();
  }

  // Redis confirms `seq`, and so do the mirror's stats (updated just after the write).
  bool WaitForEventsSeq(int64_t seq) {
    std::string want = std::to_string(seq);
    return WaitFor(
        [&] { return Get(keys_.events_seq()) == want && mirror_->stats().last_event_seq == seq; });
  }

  // Every expected event in the stream once, in seq order, with its fields.
  void ExpectStreamMatchesLedger() {
    std::vector<EventRecord> expected = ExpectedEvents();
    std::vector<StreamEntry> stream = Stream();
    ASSERT_EQ(stream.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const EventRecord& e = expected[i];
      EXPECT_EQ(stream[i]["seq"], std::to_string(e.seq)) << "entry " << i;
      EXPECT_EQ(stream[i]["time_ms"], std::to_string(e.time_ms));
      EXPECT_EQ(stream[i]["kind"], e.kind);
      EXPECT_EQ(stream[i]["task_id"], e.task_id ? std::to_string(*e.task_id) : "");
      EXPECT_EQ(stream[i]["worker_id"], e.worker_id.value_or(""));
      EXPECT_EQ(stream[i]["payload"], e.payload_json);
    }
  }

  static LiveSnapshot Snapshot(std::string status, std::vector<std::string> workers) {
    LiveSnapshot s;
    s.status_json = std::move(status);
    for (const std::string& w : workers) {
      s.workers.push_back({w, R"({"id":")" + w + R"(","tasks":[]})"});
    }
    s.time_ms = 1234;
    return s;
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<LiveStateMirror> mirror_;
  LiveStateKeys keys_{"clisc", "run"};
};

TEST_F(LiveStateMirrorTest, MirrorsEventsStatusAndWorkers) {
  auto ids = Plan(testutil::DiamondPlan());
  RunToSuccess(ids["a/c1"]);
  RunToSuccess(ids["a/c2"], "w2");
  StartMirror(Options());
  mirror_->Update(Snapshot(R"({"state":"running","done":2})", {"w1", "w2"}));

  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ASSERT_TRUE(WaitFor([&] { return Workers().size() == 2; }));
  ExpectStreamMatchesLedger();
  EXPECT_EQ(Get(keys_.current_run()), "run");
  EXPECT_EQ(Get(keys_.status()), R"({"state":"running","done":2})");
  EXPECT_GT(std::stoll(Get(keys_.status_ms())), 0);
  auto members = Redis({"SMEMBERS", keys_.runs()});
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->elements.size(), 1u);
  EXPECT_EQ(members->elements[0].str, "run");
  EXPECT_EQ(Workers()["w2"], R"({"id":"w2","tasks":[]})");
  auto read = ReadMirroredStatus(redis_->url(), "");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->run_name, "run");
  EXPECT_EQ(read->status_json, R"({"state":"running","done":2})");
  EXPECT_EQ(std::to_string(read->mirrored_ms), Get(keys_.status_ms()));
  auto ttl = Redis({"PTTL", keys_.workers()});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 30000);

  // A worker gone from the snapshot leaves the hash; new events follow.
  mirror_->Update(Snapshot(R"({"state":"running","done":3})", {"w1"}));
  RunToSuccess(ids["b/c1"]);
  ASSERT_TRUE(WaitFor([&] { return Workers().size() == 1; }));
  EXPECT_TRUE(Workers().contains("w1"));
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ExpectStreamMatchesLedger();
  EXPECT_TRUE(WaitFor([&] { return Get(keys_.status()) == R"({"state":"running","done":3})"; }));

  MirrorStats stats = mirror_->stats();
  EXPECT_TRUE(stats.connected);
  EXPECT_EQ(stats.outages, 0u);
  EXPECT_GE(stats.flushes, 2u);
  EXPECT_EQ(stats.events_mirrored, ExpectedEvents().size());
  EXPECT_EQ(stats.last_event_seq, LastLedgerSeq());
}

TEST_F(LiveStateMirrorTest, EventsOfOtherRunsStayOut) {
  auto other = ledger_->OpenRun("other", "b: 2\n", "fp2");
  ASSERT_TRUE(other.ok());
  auto result = ledger_->UpsertTasks(*other, {Spec("x/c9", "c9")});
  ASSERT_TRUE(result.ok());
  Plan({Spec("a/c1", "c1")});
  StartMirror(Options());
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ExpectStreamMatchesLedger();
  std::string foreign_task = std::to_string(result->task_ids[0]);
  for (const StreamEntry& entry : Stream()) EXPECT_NE(entry.at("task_id"), foreign_task);
  EXPECT_LT(Stream().size(), static_cast<size_t>(LastLedgerSeq()));
}

TEST_F(LiveStateMirrorTest, LargeBacklogIsMirroredInBoundedFlushes) {
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 60; ++i)
    specs.push_back(Spec("a/c" + std::to_string(i), "c" + std::to_string(i)));
  Plan(specs);
  LiveStateMirrorOptions options = Options();
  options.max_events_per_flush = 7;
  StartMirror(options);
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ExpectStreamMatchesLedger();
  EXPECT_GE(mirror_->stats().flushes, 9u);
}

TEST_F(LiveStateMirrorTest, OutageResyncsEveryEventExactlyOnce) {
  auto ids = Plan(testutil::DiamondPlan());
  RunToSuccess(ids["a/c1"]);
  StartMirror(Options());
  mirror_->Update(Snapshot(R"({"phase":1})", {"w1", "w2"}));
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));

  redis_->Kill();
  RunToSuccess(ids["a/c2"]);
  RunToSuccess(ids["b/c1"]);
  // The coordinator keeps going: Update never waits for Redis.
  milliseconds slowest(0);
  for (int i = 0; i < 50; ++i) {
    auto start = steady_clock::now();
    mirror_->Update(Snapshot(R"({"phase":2,"i":)" + std::to_string(i) + "}", {"w1"}));
    slowest =
        std::max(slowest, std::chrono::duration_cast<milliseconds>(steady_clock::now() - start));
    std::this_thread::sleep_for(milliseconds(2));
  }
  EXPECT_LT(slowest, milliseconds(5));
  ASSERT_TRUE(WaitFor([&] { return mirror_->stats().outages == 1; }));
  EXPECT_FALSE(mirror_->stats().connected);
  EXPECT_NE(mirror_->stats().last_error.find(redis_->url()), std::string::npos)
      << mirror_->stats().last_error;
  // Still down a while later: one outage, however many retries.
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(mirror_->stats().outages, 1u);

  ASSERT_TRUE(redis_->Restart().ok());  // empty: no persistence
  RunToSuccess(ids["b/c2"]);
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ExpectStreamMatchesLedger();
  EXPECT_EQ(Get(keys_.status()), R"({"phase":2,"i":49})");
  EXPECT_EQ(Workers().size(), 1u);
  MirrorStats stats = mirror_->stats();
  EXPECT_EQ(stats.outages, 1u);
  EXPECT_TRUE(stats.connected);
  EXPECT_EQ(stats.last_event_seq, LastLedgerSeq());
}

TEST_F(LiveStateMirrorTest, DroppedConnectionResumesFromEventsSeq) {
  auto ids = Plan(testutil::DiamondPlan());
  StartMirror(Options());
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  // The data survives; only the mirror's connection dies.
  ASSERT_TRUE(Redis({"CLIENT", "KILL", "TYPE", "normal"}).ok());
  RunToSuccess(ids["a/c1"]);
  RunToSuccess(ids["a/c2"]);
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ExpectStreamMatchesLedger();
}

TEST_F(LiveStateMirrorTest, RestartedMirrorDoesNotDuplicateEvents) {
  auto ids = Plan(testutil::DiamondPlan());
  RunToSuccess(ids["a/c1"]);
  StartMirror(Options());
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  mirror_->Stop();
  mirror_.reset();

  int64_t mirrored_before = LastLedgerSeq();
  RunToSuccess(ids["a/c2"]);
  StartMirror(Options());
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ExpectStreamMatchesLedger();
  EXPECT_EQ(mirror_->stats().events_mirrored,
            static_cast<uint64_t>(LastLedgerSeq() - mirrored_before));
}

TEST_F(LiveStateMirrorTest, FirstSnapshotReplacesWorkersLeftByAnEarlierCoordinator) {
  ASSERT_TRUE(Redis({"HSET", keys_.workers(), "w-old", "{}"}).ok());
  StartMirror(Options());
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));  // flushed before any snapshot came
  mirror_->Update(Snapshot("{}", {"w1"}));
  ASSERT_TRUE(WaitFor([&] { return Workers().size() == 1 && Workers().contains("w1"); }))
      << Workers().size();
}

TEST_F(LiveStateMirrorTest, StreamFromAnotherLedgerIsRebuilt) {
  auto ids = Plan(testutil::DiamondPlan());
  RunToSuccess(ids["a/c1"]);
  RunToSuccess(ids["a/c2"]);
  StartMirror(Options());
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  mirror_.reset();

  // A new ledger file under the same run name: fewer events than the stream confirms.
  ledger_.reset();
  std::filesystem::remove(path_);
  std::filesystem::remove(path_ + "-wal");
  std::filesystem::remove(path_ + "-shm");
  Reopen();
  auto run = ledger_->OpenRun("run", "a: 1\n", "fp1");
  ASSERT_TRUE(run.ok());
  run_ = *run;
  StartMirror(Options());
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ExpectStreamMatchesLedger();
}

TEST_F(LiveStateMirrorTest, StartsWhileRedisIsDownAndCatchesUp) {
  Plan({Spec("a/c1", "c1")});
  redis_->Kill();
  StartMirror(Options());
  mirror_->Update(Snapshot(R"({"early":true})", {}));
  ASSERT_TRUE(WaitFor([&] { return mirror_->stats().outages == 1; }));
  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(WaitForEventsSeq(LastLedgerSeq()));
  ExpectStreamMatchesLedger();
  EXPECT_EQ(Get(keys_.status()), R"({"early":true})");
  EXPECT_EQ(mirror_->stats().outages, 1u);
}

TEST_F(LiveStateMirrorTest, StopIsBoundedWhileRedisIsDown) {
  redis_->Kill();
  StartMirror(Options());
  mirror_->Update(Snapshot("{}", {}));
  ASSERT_TRUE(WaitFor([&] { return mirror_->stats().outages == 1; }));
  auto start = steady_clock::now();
  mirror_->Stop();
  EXPECT_LT(steady_clock::now() - start, milliseconds(1500));
}

TEST_F(LiveStateMirrorTest, StopFlushesTheLastSnapshot) {
  LiveStateMirrorOptions options = Options();
  options.flush_interval_ms = 60'000;  // only the first and the final flush
  StartMirror(options);
  ASSERT_TRUE(WaitFor([&] { return mirror_->stats().flushes >= 1; }));
  mirror_->Update(Snapshot(R"({"final":true})", {"w9"}));
  mirror_->Stop();
  EXPECT_EQ(Get(keys_.status()), R"({"final":true})");
  EXPECT_TRUE(Workers().contains("w9"));
}

TEST_F(LiveStateMirrorTest, BadOptionsAreRejected) {
  LiveStateMirrorOptions no_run = Options();
  no_run.run_name = "";
  EXPECT_EQ(LiveStateMirror::Start(no_run).status().code(), StatusCode::kInvalidArgument);
  LiveStateMirrorOptions bad_url = Options();
  bad_url.redis_url = "http://:secret@host";
  auto refused = LiveStateMirror::Start(bad_url);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message().find("secret"), std::string::npos);
}

}  // namespace
}  // namespace clisc
