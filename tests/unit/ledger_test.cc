#include "coordinator/ledger.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "coordinator/ledger_schema.h"
#include "coordinator/sqlite_db.h"
#include "coordinator/task_key.h"
#include "tests/unit/ledger_fixture.h"

namespace clisc {
namespace {

using testutil::kSha;
using testutil::LedgerTest;

TEST_F(LedgerTest, MigrationsApplyOnceAndReopenIsIdempotent) {
  auto blocks = ParseMigrations(EmbeddedLedgerSql());
  ASSERT_TRUE(blocks.ok()) << blocks.status().ToString();
  EXPECT_EQ(ledger_->schema_version(), blocks->back().version);
  Reopen();
  Reopen();
  EXPECT_EQ(ledger_->schema_version(), blocks->back().version);
  auto run = ledger_->FindRun("run");
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->value_or(0), run_);
  // The connection runs in WAL mode.
  auto db = sqlite::Database::Open(path_, false);
  ASSERT_TRUE(db.ok());
  auto stmt = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(stmt.ok());
  ASSERT_TRUE((*stmt)->Step().ok());
  EXPECT_EQ((*stmt)->Text(0), "wal");
}

TEST_F(LedgerTest, NewMigrationBlocksApplyOnTopExactlyOnce) {
  std::string path = (dir_ / "custom.db").string();
  std::string v1 = "-- header comment\n-- migration 1: a table\nCREATE TABLE a (x INTEGER);\n";
  std::string v2 = v1 + "-- migration 2: seed\nINSERT INTO a VALUES (7);\n";
  for (const std::string& text : {v1, v2, v2, v2}) {
    LedgerOptions options;
    options.migrations_sql = text;
    auto ledger = Ledger::Open(path, &clock_, options);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  }
  auto db = sqlite::Database::Open(path, false);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->QueryInt("SELECT COUNT(*) FROM a"), 1);
  EXPECT_EQ(*(*db)->QueryInt("PRAGMA user_version"), 2);

  // A file from a newer binary is refused rather than misread.
  LedgerOptions old;
  old.migrations_sql = v1;
  auto refused = Ledger::Open(path, &clock_, old);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(LedgerTest, MalformedMigrationTextIsRejected) {
  EXPECT_FALSE(ParseMigrations("CREATE TABLE x (a);\n-- migration 1: x\n").ok());
  EXPECT_FALSE(ParseMigrations("-- migration 1: a\nSELECT 1;\n-- migration 3: gap\n").ok());
  EXPECT_FALSE(ParseMigrations("-- only comments\n").ok());
  auto ok = ParseMigrations("-- migration 1: a\nSELECT 1;\n-- migration 2: b\nSELECT 2;\n");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[1].summary, "b");
}

TEST_F(LedgerTest, UpsertIsIdempotentByKey) {
  std::vector<TaskSpec> plan = {Spec("a/c1", "c1"), Spec("b/c1", "c1", {"a/c1"}),
                                Spec("g/-", std::nullopt, {"b/c1"})};
  auto first = ledger_->UpsertTasks(run_, plan);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->inserted, 3);
  RunToSuccess(first->task_ids[0]);
  auto second = ledger_->UpsertTasks(run_, plan);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->inserted, 0);
  EXPECT_EQ(second->reused, 3);
  EXPECT_EQ(second->task_ids, first->task_ids);
  EXPECT_EQ(StateOf(first->task_ids[0]), TaskState::kSucceeded);
  auto cases = ledger_->ListCases(run_);
  ASSERT_TRUE(cases.ok());
  ASSERT_EQ(cases->size(), 1u);
}

TEST_F(LedgerTest, BadPlansChangeNothing) {
  int64_t events = EventCount();
  auto forward = ledger_->UpsertTasks(run_, {Spec("b/c1", "c1", {"a/c1"}), Spec("a/c1", "c1")});
  EXPECT_EQ(forward.status().code(), StatusCode::kInvalidArgument);
  auto unknown = ledger_->UpsertTasks(run_, {Spec("b/c1", "c1", {"nope"})});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  auto tasks = ledger_->ListTasks(run_);
  ASSERT_TRUE(tasks.ok());
  EXPECT_TRUE(tasks->empty());
  EXPECT_EQ(EventCount(), events);
}

TEST_F(LedgerTest, LeaseWaitsForDependencies) {
  auto ids = Plan({Spec("a/c1", "c1"), Spec("b/c1", "c1", {"a/c1"})});
  auto early = ledger_->Lease({ids["b/c1"], "w1", std::nullopt});
  EXPECT_EQ(early.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(StateOf(ids["b/c1"]), TaskState::kPending);
  RunToSuccess(ids["a/c1"]);
  auto later = ledger_->Lease({ids["b/c1"], "w1", std::nullopt});
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_EQ(later->attempt, 1);
}

TEST_F(LedgerTest, StaleAttemptIsFencedOffAndChangesNothing) {
  auto ids = Plan({Spec("a/c1", "c1")});
  TaskId a = ids["a/c1"];
  auto first = ledger_->Lease({a, "w1", std::nullopt});
  ASSERT_TRUE(first.ok());
  auto expired = ledger_->ExpireLeases({{a, first->attempt, "w1 died", 0}});
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(*expired->outcomes.front(), TaskState::kPending);
  auto second = ledger_->Lease({a, "w2", std::nullopt});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->attempt, 2);

  int64_t events = EventCount();
  Completion stale{a, first->attempt, "w1", "{}", {{"out", "a/out", 1, kSha}}};
  EXPECT_EQ(ledger_->Complete(stale).code(), StatusCode::kFailedPrecondition);
  Completion wrong_worker{a, second->attempt, "w1", "{}", {}};
  EXPECT_EQ(ledger_->Complete(wrong_worker).code(), StatusCode::kFailedPrecondition);
  auto stale_fail = ledger_->Fail({a, first->attempt, "w1", InternalError("x"), false, 0});
  ASSERT_TRUE(stale_fail.ok());
  EXPECT_EQ(stale_fail->outcomes.front().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(EventCount(), events);
  auto task = ledger_->GetTask(a);
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->state, TaskState::kLeased);
  EXPECT_EQ(task->attempt, 2);
  EXPECT_EQ(task->lease_worker.value_or(""), "w2");
  EXPECT_TRUE(ledger_->ListArtifacts(a)->empty());

  ASSERT_TRUE(ledger_->Complete({a, 2, "w2", "{}", {{"out", "a/out", 1, kSha}}}).ok());
  auto attempts = ledger_->ListAttempts(a);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_EQ((*attempts)[0].outcome, AttemptOutcome::kLost);
  EXPECT_EQ((*attempts)[1].outcome, AttemptOutcome::kSucceeded);
  EXPECT_EQ(ledger_->ListArtifacts(a)->size(), 1u);
}

TEST_F(LedgerTest, RetryableFailureBacksOffThenExhaustsBudget) {
  auto ids = Plan({Spec("a/c1", "c1", {}, /*max_attempts=*/2)});
  TaskId a = ids["a/c1"];
  auto g1 = ledger_->Lease({a, "w1", std::nullopt});
  ASSERT_TRUE(g1.ok());
  auto f1 = ledger_->Fail({a, 1, "w1", UnavailableError("gpu busy"), true, 5000});
  ASSERT_TRUE(f1.ok());
  EXPECT_EQ(*f1->outcomes.front(), TaskState::kPending);
  EXPECT_EQ(ledger_->GetTask(a)->not_before_ms, clock_.NowMs() + 5000);
  EXPECT_EQ(ledger_->Lease({a, "w1", std::nullopt}).status().code(),
            StatusCode::kFailedPrecondition);
  clock_.AdvanceMs(5000);
  auto g2 = ledger_->Lease({a, "w1", std::nullopt});
  ASSERT_TRUE(g2.ok()) << g2.status().ToString();
  EXPECT_EQ(g2->attempt, 2);
  auto f2 = ledger_->Fail({a, 2, "w1", UnavailableError("gpu busy"), true, 5000});
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(*f2->outcomes.front(), TaskState::kFailed);
  auto task = ledger_->GetTask(a);
  EXPECT_EQ(task->error_code.value_or(""), "UNAVAILABLE");
  EXPECT_NE(task->error_message.value_or("").find("gave up after 2 attempts"), std::string::npos);
}

TEST_F(LedgerTest, LostLeasesCountAgainstTheBudget) {
  auto ids = Plan({Spec("a/c1", "c1", {}, 2)});
  TaskId a = ids["a/c1"];
  for (int attempt = 1; attempt <= 2; ++attempt) {
    ASSERT_TRUE(ledger_->Lease({a, "w1", std::nullopt}).ok());
    auto r = ledger_->ExpireLeases({{a, attempt, "crashed", 0}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r->outcomes.front(), attempt < 2 ? TaskState::kPending : TaskState::kFailed);
  }
}

TEST_F(LedgerTest, EveryTransitionAppendsAnEvent) {
  auto ids = Plan({Spec("a/c1", "c1")});
  int64_t before = EventCount();
  auto grant = ledger_->Lease({ids["a/c1"], "w1", std::nullopt});
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(EventCount(), before + 1);
  ASSERT_TRUE(ledger_->Complete({ids["a/c1"], 1, "w1", "{}", {}}).ok());
  auto events = ledger_->ListEvents(before, 10);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].kind, "task_leased");
  EXPECT_EQ((*events)[1].kind, "task_succeeded");
  EXPECT_EQ((*events)[1].worker_id.value_or(""), "w1");
  EXPECT_EQ(nlohmann::json::parse((*events)[1].payload_json)["attempt"], 1);
}

TEST_F(LedgerTest, BatchesCheckEachItemAndCommitTogether) {
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 10; ++i) specs.push_back(Spec("n/" + std::to_string(i), std::nullopt));
  auto ids = Plan(specs);
  std::vector<LeaseRequest> requests;
  for (const auto& [key, id] : ids) requests.push_back({id, "w1", std::nullopt});
  requests.push_back({999999, "w1", std::nullopt});
  auto grants = ledger_->LeaseBatch(requests);
  ASSERT_TRUE(grants.ok());
  ASSERT_EQ(grants->size(), 11u);
  EXPECT_EQ(grants->back().status().code(), StatusCode::kNotFound);
  std::vector<Completion> done;
  for (size_t i = 0; i < 10; ++i) done.push_back({(*grants)[i]->task_id, 1, "w1", "{}", {}});
  done.push_back({(*grants)[0]->task_id, 1, "w1", "{}", {}});  // duplicate report
  auto results = ledger_->CompleteBatch(done);
  ASSERT_TRUE(results.ok());
  for (size_t i = 0; i < 10; ++i) EXPECT_TRUE((*results)[i].ok()) << (*results)[i].ToString();
  EXPECT_EQ(results->back().code(), StatusCode::kFailedPrecondition);
  auto counts = ledger_->CountByStageAndState(run_);
  ASSERT_EQ(counts->size(), 1u);
  EXPECT_EQ((*counts)[0].state, TaskState::kSucceeded);
  EXPECT_EQ((*counts)[0].count, 10);
}

TEST_F(LedgerTest, ArtifactsAreValidated) {
  auto ids = Plan({Spec("a/c1", "c1")});
  ASSERT_TRUE(ledger_->Lease({ids["a/c1"], "w1", std::nullopt}).ok());
  EXPECT_EQ(ledger_->Complete({ids["a/c1"], 1, "w1", "{}", {{"m", "x", 1, "ABC"}}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->Complete({ids["a/c1"], 1, "w1", "{}", {{"m", "../x", 1, kSha}}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(StateOf(ids["a/c1"]), TaskState::kLeased);
}

TEST_F(LedgerTest, WorkersAreRecorded) {
  WorkerRecord w;
  w.id = "gpu0";
  w.roles = {"cam", "sam"};
  w.device = "cuda:0";
  w.slots = 2;
  ASSERT_TRUE(ledger_->UpsertWorker(w).ok());
  ASSERT_TRUE(ledger_->SetWorkerState("gpu0", WorkerState::kDead, "silent").ok());
  auto workers = ledger_->ListWorkers();
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ((*workers)[0].roles, (std::vector<std::string>{"cam", "sam"}));
  EXPECT_EQ((*workers)[0].state, WorkerState::kDead);
  ASSERT_TRUE(ledger_->UpsertWorker(w).ok());
  EXPECT_EQ(ledger_->ListWorkers()->front().state, WorkerState::kAlive);
}

TEST_F(LedgerTest, LockedDatabaseIsUnavailable) {
  auto ids = Plan({Spec("a/c1", "c1")});
  LedgerOptions impatient;
  impatient.busy_timeout_ms = 20;
  Reopen(impatient);
  auto other = sqlite::Database::Open(path_, false);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Exec("BEGIN IMMEDIATE").ok());
  auto grant = ledger_->Lease({ids["a/c1"], "w1", std::nullopt});
  EXPECT_EQ(grant.status().code(), StatusCode::kUnavailable) << grant.status().ToString();
  EXPECT_TRUE(grant.status().IsRetryable());
  ASSERT_TRUE((*other)->Exec("ROLLBACK").ok());
  EXPECT_TRUE(ledger_->Lease({ids["a/c1"], "w1", std::nullopt}).ok());
}

TEST_F(LedgerTest, FullSyncIsAnOption) {
  LedgerOptions full;
  full.sync_full = true;
  Reopen(full);
  auto ids = Plan({Spec("a/c1", "c1")});
  EXPECT_EQ(RunToSuccess(ids["a/c1"]), 1);
}

TEST_F(LedgerTest, ReopeningARunWithANewConfigRecordsIt) {
  auto again = ledger_->OpenRun("run", "a: 2\n", "fp2");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, run_);
  auto run = ledger_->GetRun(run_);
  EXPECT_EQ(run->config_fingerprint, "fp2");
  EXPECT_EQ(run->config_yaml, "a: 2\n");
}

TEST(TaskKeyTest, KeysAreStableReadableAndSensitiveToEveryPart) {
  TaskKeyParts p{"cam", "BraTS20_001", 1, "k: 3", {"abc", "def"}};
  std::string key = MakeTaskKey(p);
  EXPECT_EQ(key, MakeTaskKey(p));
  EXPECT_EQ(key.rfind("cam/BraTS20_001/r1/", 0), 0u);
  EXPECT_EQ(key.size(), std::string("cam/BraTS20_001/r1/").size() + 32);
  auto changed = [&](auto mutate) {
    TaskKeyParts q = p;
    mutate(q);
    return MakeTaskKey(q) != key;
  };
  EXPECT_TRUE(changed([](TaskKeyParts& q) { q.stage_config = "k: 4"; }));
  EXPECT_TRUE(changed([](TaskKeyParts& q) { q.inputs = {"abcd", "ef"}; }));
  EXPECT_TRUE(changed([](TaskKeyParts& q) { q.inputs = {"def", "abc"}; }));
  EXPECT_TRUE(changed([](TaskKeyParts& q) { q.round = 2; }));
  EXPECT_TRUE(changed([](TaskKeyParts& q) { q.case_id.reset(); }));
  EXPECT_EQ(MakeTaskKey({"g", std::nullopt, 0, "", {}}).rfind("g/-/r0/", 0), 0u);
}

}  // namespace
}  // namespace clisc
