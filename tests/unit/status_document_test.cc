// The status document built over a real ledger, with and without the coordinator's live view.
#include "coordinator/status_document.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/unit/ledger_fixture.h"

namespace clisc {
namespace {

using nlohmann::json;
using testutil::LedgerTest;

const json* FindByKey(const json& list, const std::string& key, const std::string& value) {
  for (const json& item : list) {
    if (item.value(key, std::string()) == value) return &item;
  }
  return nullptr;
}

// Three stages over four cases: prep per case, seg per case after prep, and a global reduce
// after every seg. prep/c1 and prep/c2 succeed 10 s apart, prep/c3 fails for good (its case is
// excluded and seg/c3 blocked), prep/c4 is still pending, seg/c1 runs on w1.
class StatusDocumentTest : public LedgerTest {
 protected:
  void SetUp() override {
    LedgerTest::SetUp();
    ids_ = Plan({Spec("prep/c1", "c1"), Spec("prep/c2", "c2"), Spec("prep/c3", "c3"),
                 Spec("prep/c4", "c4"), Spec("seg/c1", "c1", {"prep/c1"}),
                 Spec("seg/c2", "c2", {"prep/c2"}), Spec("seg/c3", "c3", {"prep/c3"}),
                 Spec("seg/c4", "c4", {"prep/c4"}),
                 Spec("reduce/-", std::nullopt, {"seg/c1", "seg/c2", "seg/c3", "seg/c4"})});
    WorkerRecord worker;
    worker.id = "w1";
    worker.roles = {"clip"};
    worker.device = "cuda:0";
    worker.slots = 2;
    worker.hostname = "gpu-node-1";
    ASSERT_TRUE(ledger_->UpsertWorker(worker).ok());

    RunToSuccess(ids_["prep/c1"]);
    clock_.AdvanceMs(10'000);
    RunToSuccess(ids_["prep/c2"]);
    auto grant = ledger_->Lease({ids_["prep/c3"], "w1", std::nullopt});
    ASSERT_TRUE(grant.ok()) << grant.status().ToString();
    auto failed = ledger_->Fail({ids_["prep/c3"], grant->attempt, "w1",
                                 InvalidArgumentError("corrupt NIfTI header"), false, 0});
    ASSERT_TRUE(failed.ok()) << failed.status().ToString();
    auto seg = ledger_->Lease({ids_["seg/c1"], "w1", std::nullopt});
    ASSERT_TRUE(seg.ok()) << seg.status().ToString();
    seg_attempt_ = seg->attempt;
    clock_.AdvanceMs(1'000);
  }

  json Build(const LiveView* live) {
    auto doc = BuildStatusDocument(*ledger_, run_, live, clock_.NowMs());
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return doc.ok() ? *doc : json();
  }

  std::map<std::string, TaskId> ids_;
  int seg_attempt_ = 0;
};

TEST_F(StatusDocumentTest, StageTimingsFollowPlanOrder) {
  auto timings = ledger_->StageTimings(run_);
  ASSERT_TRUE(timings.ok()) << timings.status().ToString();
  ASSERT_EQ(timings->size(), 3u);
  EXPECT_EQ((*timings)[0].stage, "prep");
  EXPECT_EQ((*timings)[0].succeeded, 2);
  EXPECT_EQ((*timings)[0].first_finished_ms, FakeClock::kDefaultStartMs);
  EXPECT_EQ((*timings)[0].last_finished_ms, FakeClock::kDefaultStartMs + 10'000);
  EXPECT_EQ((*timings)[1].stage, "seg");
  EXPECT_EQ((*timings)[1].succeeded, 0);
  EXPECT_FALSE((*timings)[1].first_finished_ms.has_value());
  EXPECT_EQ((*timings)[2].stage, "reduce");
}

TEST_F(StatusDocumentTest, LedgerOnlyCountsFailuresAndEta) {
  json doc = Build(nullptr);
  EXPECT_EQ(doc["schema"], 1);
  EXPECT_EQ(doc["source"], "ledger");
  EXPECT_EQ(doc["generated_ms"], clock_.NowMs());
  EXPECT_EQ(doc["run"]["name"], "run");
  EXPECT_EQ(doc["run"]["state"], "running");
  EXPECT_EQ(doc["run"]["config_fingerprint"], "fp1");
  EXPECT_FALSE(doc.contains("coordinator"));

  EXPECT_EQ(doc["totals"]["total"], 9);
  EXPECT_EQ(doc["totals"]["succeeded"], 2);
  EXPECT_EQ(doc["totals"]["failed"], 1);
  EXPECT_EQ(doc["totals"]["blocked"], 1);
  EXPECT_EQ(doc["totals"]["leased"], 1);
  EXPECT_EQ(doc["totals"]["pending"], 4);
  EXPECT_EQ(doc["totals"]["cancelled"], 0);

  ASSERT_EQ(doc["stages"].size(), 3u);
  const json& prep = doc["stages"][0];
  EXPECT_EQ(prep["stage"], "prep");
  EXPECT_EQ(prep["total"], 4);
  EXPECT_EQ(prep["succeeded"], 2);
  EXPECT_EQ(prep["failed"], 1);
  EXPECT_EQ(prep["pending"], 1);
  EXPECT_EQ(prep["leased"], 0);
  EXPECT_DOUBLE_EQ(prep["done_fraction"].get<double>(), 0.75);
  // Two successes 10 s apart: 0.2 tasks/s, so the one open task needs 5 s.
  EXPECT_DOUBLE_EQ(prep["rate_per_s"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(prep["eta_s"].get<double>(), 5.0);

  const json& seg = doc["stages"][1];
  EXPECT_EQ(seg["stage"], "seg");
  EXPECT_EQ(seg["total"], 4);
  EXPECT_EQ(seg["leased"], 1);
  EXPECT_EQ(seg["pending"], 2);
  EXPECT_EQ(seg["blocked"], 1);
  EXPECT_TRUE(seg["rate_per_s"].is_null());
  EXPECT_TRUE(seg["eta_s"].is_null());

  const json& reduce = doc["stages"][2];
  EXPECT_EQ(reduce["stage"], "reduce");
  EXPECT_EQ(reduce["total"], 1);
  EXPECT_EQ(reduce["pending"], 1);
  EXPECT_TRUE(reduce["eta_s"].is_null());

  EXPECT_EQ(doc["cases"]["active"], 3);
  EXPECT_EQ(doc["cases"]["excluded"], 1);

  EXPECT_EQ(doc["failures_total"], 2);
  ASSERT_EQ(doc["failures"].size(), 2u);
  const json* failed = FindByKey(doc["failures"], "task_key", "prep/c3");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ((*failed)["state"], "failed");
  EXPECT_EQ((*failed)["stage"], "prep");
  EXPECT_EQ((*failed)["case_id"], "c3");
  EXPECT_EQ((*failed)["error_code"], "INVALID_ARGUMENT");
  EXPECT_EQ((*failed)["error_message"], "corrupt NIfTI header");
  const json* blocked = FindByKey(doc["failures"], "task_key", "seg/c3");
  ASSERT_NE(blocked, nullptr);
  EXPECT_EQ((*blocked)["state"], "blocked");
  EXPECT_FALSE((*blocked)["error_message"].get<std::string>().empty());

  ASSERT_EQ(doc["workers"].size(), 1u);
  const json& w1 = doc["workers"][0];
  EXPECT_EQ(w1["id"], "w1");
  EXPECT_EQ(w1["device"], "cuda:0");
  EXPECT_EQ(w1["hostname"], "gpu-node-1");
  EXPECT_EQ(w1["slots"], 2);
  EXPECT_EQ(w1["state"], "alive");
  EXPECT_EQ(w1["alive"], true);
  EXPECT_EQ(w1["last_heartbeat_ms"], FakeClock::kDefaultStartMs);
  EXPECT_EQ(w1["age_ms"], 11'000);
  ASSERT_EQ(w1["running"].size(), 1u);
  EXPECT_EQ(w1["running"][0]["task_key"], "seg/c1");
  EXPECT_EQ(w1["running"][0]["task_id"], ids_["seg/c1"]);
  EXPECT_EQ(w1["running"][0]["attempt"], seg_attempt_);
  EXPECT_TRUE(w1["running"][0]["fraction"].is_null());
}

TEST_F(StatusDocumentTest, LiveViewAddsProgressAndCoordinator) {
  LiveView live;
  live.scheduler.open_tasks = 5;
  live.scheduler.leased = 1;
  live.scheduler.workers_alive = 1;
  WorkerView w1;
  w1.id = "w1";
  w1.roles = {"clip", "sam"};
  w1.slots = 2;
  w1.alive = true;
  w1.last_heartbeat_ms = clock_.NowMs() - 400;
  w1.leases = {ids_["seg/c1"]};
  WorkerView w2;
  w2.id = "w2";
  w2.roles = {"train"};
  w2.slots = 1;
  w2.alive = false;
  w2.last_heartbeat_ms = clock_.NowMs() - 30'000;
  live.workers = {w1, w2};
  live.progress[ids_["seg/c1"]] = {ids_["seg/c1"], seg_attempt_, 0.45, "slice 70/155",
                                   clock_.NowMs() - 200};
  live.coordinator.coordinator_id = "coord-1";
  live.coordinator.pid = 4242;
  live.coordinator.started_ms = clock_.NowMs() - 60'000;
  live.coordinator.endpoint = "tcp://0.0.0.0:8471";
  live.coordinator.http_endpoint = "127.0.0.1:8470";
  live.coordinator.redis_state = "connected";
  live.coordinator.frames_dropped = {{"bad_envelope", 3}, {"too_large", 1}};
  live.coordinator.counters = {{"frames_received", 1200}, {"results_stale", 2}};
  live.coordinator.gauges = {{"roundtrip_p99_ms", 4.5}};

  json doc = Build(&live);
  EXPECT_EQ(doc["source"], "coordinator");
  // The counts come from the ledger either way.
  EXPECT_EQ(doc["stages"][0]["succeeded"], 2);
  EXPECT_EQ(doc["failures_total"], 2);

  ASSERT_EQ(doc["workers"].size(), 2u);
  const json& first = doc["workers"][0];
  EXPECT_EQ(first["id"], "w1");
  EXPECT_EQ(first["roles"], json({"clip", "sam"}));
  EXPECT_EQ(first["device"], "cuda:0");
  EXPECT_EQ(first["alive"], true);
  EXPECT_EQ(first["age_ms"], 400);
  ASSERT_EQ(first["running"].size(), 1u);
  EXPECT_EQ(first["running"][0]["task_key"], "seg/c1");
  EXPECT_EQ(first["running"][0]["stage"], "seg");
  EXPECT_EQ(first["running"][0]["case_id"], "c1");
  EXPECT_DOUBLE_EQ(first["running"][0]["fraction"].get<double>(), 0.45);
  EXPECT_EQ(first["running"][0]["message"], "slice 70/155");
  const json& second = doc["workers"][1];
  EXPECT_EQ(second["id"], "w2");
  EXPECT_EQ(second["alive"], false);
  EXPECT_EQ(second["state"], "dead");
  EXPECT_EQ(second["device"], "");  // never registered in the ledger
  EXPECT_TRUE(second["running"].empty());

  EXPECT_EQ(doc["scheduler"]["open_tasks"], 5);
  const json& coordinator = doc["coordinator"];
  EXPECT_EQ(coordinator["coordinator_id"], "coord-1");
  EXPECT_EQ(coordinator["pid"], 4242);
  EXPECT_EQ(coordinator["uptime_ms"], 60'000);
  EXPECT_EQ(coordinator["redis_state"], "connected");
  EXPECT_EQ(coordinator["frames_dropped"]["bad_envelope"], 3);
  EXPECT_EQ(coordinator["counters"]["frames_received"], 1200);
  EXPECT_DOUBLE_EQ(coordinator["gauges"]["roundtrip_p99_ms"].get<double>(), 4.5);
}

TEST_F(StatusDocumentTest, ProgressOfAnEarlierAttemptIsIgnored) {
  LiveView live;
  WorkerView w1;
  w1.id = "w1";
  w1.alive = true;
  w1.last_heartbeat_ms = clock_.NowMs();
  w1.leases = {ids_["seg/c1"]};
  live.workers = {w1};
  live.progress[ids_["seg/c1"]] = {ids_["seg/c1"], seg_attempt_ - 1, 0.9, "old", 0};
  json doc = Build(&live);
  EXPECT_TRUE(doc["workers"][0]["running"][0]["fraction"].is_null());
}

TEST_F(StatusDocumentTest, FinishedStageHasZeroEta) {
  RunToSuccess(ids_["prep/c4"]);
  json doc = Build(nullptr);
  EXPECT_DOUBLE_EQ(doc["stages"][0]["done_fraction"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(doc["stages"][0]["eta_s"].get<double>(), 0.0);
}

TEST_F(LedgerTest, StatusDocumentListsAtMostFiftyFailures) {
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 60; ++i) specs.push_back(Spec("x/c" + std::to_string(i), std::nullopt));
  auto ids = Plan(specs);
  for (const auto& [key, id] : ids) {
    auto grant = ledger_->Lease({id, "w1", std::nullopt});
    ASSERT_TRUE(grant.ok());
    ASSERT_TRUE(ledger_->Fail({id, grant->attempt, "w1", InternalError("boom"), false, 0}).ok());
  }
  auto doc = BuildStatusDocument(*ledger_, run_, nullptr, clock_.NowMs());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["failures_total"], 60);
  EXPECT_EQ((*doc)["failures"].size(), kMaxListedFailures);
  EXPECT_EQ((*doc)["stages"][0]["failed"], 60);
  EXPECT_DOUBLE_EQ((*doc)["stages"][0]["eta_s"].get<double>(), 0.0);
}

TEST_F(LedgerTest, StatusDocumentSerializesMessagesThatAreNotUtf8) {
  auto ids = Plan({Spec("x/c1", "c1")});
  auto grant = ledger_->Lease({ids["x/c1"], "w1", std::nullopt});
  ASSERT_TRUE(grant.ok());
  LiveView live;
  WorkerView w1;
  w1.id = "w1";
  w1.alive = true;
  w1.leases = {ids["x/c1"]};
  live.workers = {w1};
  live.progress[ids["x/c1"]] = {ids["x/c1"], grant->attempt, 0.5,
                                "reading /data/caf\xe9/t1.nii \xF0\x9F\x98\x80 \xC0\xAF", 0};
  auto doc = BuildStatusDocument(*ledger_, run_, &live, clock_.NowMs());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  std::string text = doc->dump();  // nlohmann::json throws on invalid UTF-8
  // Invalid bytes (and overlong forms) become U+FFFD; valid multi-byte characters stay.
  EXPECT_EQ((*doc)["workers"][0]["running"][0]["message"].get<std::string>(),
            "reading /data/caf\xEF\xBF\xBD/t1.nii \xF0\x9F\x98\x80 "
            "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(LedgerTest, StatusDocumentOfAnEmptyRun) {
  auto doc = BuildStatusDocument(*ledger_, run_, nullptr, clock_.NowMs());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_TRUE((*doc)["stages"].empty());
  EXPECT_EQ((*doc)["totals"]["total"], 0);
  EXPECT_EQ((*doc)["failures_total"], 0);
  auto missing = BuildStatusDocument(*ledger_, run_ + 100, nullptr, clock_.NowMs());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace clisc
