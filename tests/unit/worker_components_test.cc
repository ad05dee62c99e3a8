// The worker runtime's parts on their own: test roles, registry, result memory, backoff,
// progress throttle, lease table and slot pool.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/sha256.h"
#include "tests/unit/worker_coordinator_fixture.h"
#include "workers/runtime/lease_table.h"
#include "workers/runtime/progress_throttle.h"
#include "workers/runtime/recent_results.h"
#include "workers/runtime/reconnect_backoff.h"
#include "workers/runtime/role_registry.h"
#include "workers/runtime/slot_pool.h"
#include "workers/runtime/test_roles.h"

namespace clisc::worker {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class TestRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RegisterTestRoles(registry_).ok());
    auto store = ArtifactStore::Open(temp_.path() / "store");
    ASSERT_TRUE(store.ok());
    store_.emplace(std::move(*store));
  }

  StatusOr<TaskOutput> RunRole(const std::string& role, const std::string& params,
                               uint32_t attempt = 1, std::vector<TaskInput> inputs = {},
                               std::vector<ExpectedOutput> outputs = {},
                               std::shared_ptr<LeaseControl> control = nullptr) {
    TaskSpec spec;
    spec.task_id = "t";
    spec.attempt = attempt;
    spec.role = role;
    spec.params_json = params;
    spec.inputs = std::move(inputs);
    spec.expected_outputs = std::move(outputs);
    if (!control) control = std::make_shared<LeaseControl>();
    TaskContext context(spec, &*store_, "cpu", control,
                        [this](double fraction, std::string, std::map<std::string, double>) {
                          fractions_.push_back(fraction);
                        });
    auto instance = registry_.Create(role);
    if (!instance.ok()) return instance.status();
    return (*instance)->Run(context);
  }

  worker_test::TempDir temp_;
  RoleRegistry registry_;
  std::optional<ArtifactStore> store_;
  std::vector<double> fractions_;
};

TEST_F(TestRolesTest, RegistryKnowsTheTestRoles) {
  EXPECT_EQ(registry_.Names(),
            (std::vector<std::string>{"crash", "fail", "noop", "sleep", "write_artifact"}));
  auto unknown = registry_.Create("clip");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("write_artifact"), std::string::npos);
  EXPECT_EQ(registry_.Register("noop", [] { return std::unique_ptr<Role>(); }).code(),
            StatusCode::kAlreadyExists);
}

TEST_F(TestRolesTest, SleepReportsProgressAndStopsWhenCancelled) {
  auto done = RunRole("sleep", R"({"ms": 60})");
  ASSERT_TRUE(done.ok());
  ASSERT_FALSE(fractions_.empty());
  EXPECT_DOUBLE_EQ(fractions_.back(), 1.0);

  auto control = std::make_shared<LeaseControl>();
  std::thread canceller([control] {
    std::this_thread::sleep_for(milliseconds(50));
    control->Cancel();
  });
  const auto start = Clock::now();
  auto cancelled = RunRole("sleep", R"({"ms": 10000})", 1, {}, {}, control);
  canceller.join();
  EXPECT_EQ(cancelled.status().code(), StatusCode::kCancelled);
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
}

TEST_F(TestRolesTest, BadParamsAreInvalidArgument) {
  for (const char* params :
       {"[1, 2]", "{not json", R"({"ms": -5})", R"({"ms": "long"})", R"({"ms": 1.5})"}) {
    auto result = RunRole("sleep", params);
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << params;
  }
  EXPECT_EQ(RunRole("fail", R"({"code": "OK"})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RunRole("fail", R"({"code": "NOPE"})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(RunRole("noop", "").ok());
  EXPECT_TRUE(RunRole("sleep", R"({"ms": 0})").ok());
}

TEST_F(TestRolesTest, FailUsesTheCodeUntilTimesAttempts) {
  auto first = RunRole("fail", R"({"times": 2, "code": "ABORTED", "message": "nope"})", 1);
  EXPECT_EQ(first.status().code(), StatusCode::kAborted);
  EXPECT_EQ(first.status().message(), "nope");
  EXPECT_TRUE(first.status().IsRetryable());
  EXPECT_EQ(RunRole("fail", R"({"times": 2, "code": "ABORTED"})", 2).status().code(),
            StatusCode::kAborted);
  EXPECT_TRUE(RunRole("fail", R"({"times": 2, "code": "ABORTED"})", 3).ok());
  EXPECT_EQ(RunRole("fail", "{}", 1).status().code(), StatusCode::kUnavailable);
}

TEST_F(TestRolesTest, CrashSucceedsPastTimes) {
  EXPECT_TRUE(RunRole("crash", R"({"times": 1})", 2).ok());
  EXPECT_TRUE(RunRole("crash", R"({"times": 0})", 1).ok());
}

TEST_F(TestRolesTest, WriteArtifactWritesDeterministicOutputsAndChecksInputs) {
  auto input = store_->PutFile("in/a.bin", "input bytes");
  ASSERT_TRUE(input.ok());
  std::vector<TaskInput> inputs{{"a", input->path, input->sha256, input->size}};
  std::vector<ExpectedOutput> outputs{{"x", "out/x.bin"}, {"y", "out/y.bin"}};
  auto first = RunRole("write_artifact", R"({"bytes": 100})", 1, inputs, outputs);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->outputs.size(), 2u);
  EXPECT_EQ(first->outputs[0].name, "x");
  EXPECT_EQ(first->outputs[0].size, 100u);
  EXPECT_EQ(first->outputs[0].sha256, Sha256Hex(DeterministicArtifactBytes("out/x.bin", 100)));
  EXPECT_NE(first->outputs[0].sha256, first->outputs[1].sha256);
  auto rerun = RunRole("write_artifact", R"({"bytes": 100})", 2, inputs, outputs);
  ASSERT_TRUE(rerun.ok());
  EXPECT_EQ(rerun->outputs[0].sha256, first->outputs[0].sha256);

  ASSERT_TRUE(store_->PutFile("in/a.bin", "input bytez").ok());  // same size, other bytes
  auto corrupt = RunRole("write_artifact", "{}", 1, inputs, outputs);
  EXPECT_EQ(corrupt.status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(corrupt.status().IsRetryable());
  EXPECT_NE(corrupt.status().message().find("in/a.bin"), std::string::npos);
}

TEST(DeterministicArtifactBytesTest, DependsOnPathAndSizeOnly) {
  EXPECT_EQ(DeterministicArtifactBytes("a", 0), "");
  EXPECT_EQ(DeterministicArtifactBytes("a", 100).size(), 100u);
  EXPECT_EQ(DeterministicArtifactBytes("a", 100), DeterministicArtifactBytes("a", 100));
  EXPECT_EQ(DeterministicArtifactBytes("a", 100).substr(0, 40),
            DeterministicArtifactBytes("a", 40));
  EXPECT_NE(DeterministicArtifactBytes("a", 100), DeterministicArtifactBytes("b", 100));
}

TEST(RecentResultsTest, KeepsResultsForAWhileAndBounded) {
  RecentResults recent(milliseconds(1000), 3);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 5; ++i) {
    wire::TaskResult result;
    result.set_task_id(std::to_string(i));
    recent.Add(result, t0 + milliseconds(i * 100));
  }
  auto current = recent.Current(t0 + milliseconds(500));
  ASSERT_EQ(current.size(), 3u);
  EXPECT_EQ(current[0].task_id(), "2");
  EXPECT_EQ(current[2].task_id(), "4");
  EXPECT_EQ(recent.Current(t0 + milliseconds(1350)).size(), 1u);
  EXPECT_EQ(recent.Current(t0 + milliseconds(2000)).size(), 0u);
}

TEST(RecentResultsTest, ListsTheLeasesOfKeptResultsNewestFirst) {
  RecentResults recent(milliseconds(1000), 10);
  const Clock::time_point t0 = Clock::now();
  for (int i = 1; i <= 4; ++i) {
    wire::TaskResult result;
    result.set_task_id(std::to_string(i));
    result.set_attempt(static_cast<uint32_t>(i + 1));
    recent.Add(result, t0 + milliseconds(i * 300));
  }
  // At 1.5 s the first result (added at 0.3 s) is past keep_for; at most 2 are asked for.
  auto leases = recent.Leases(t0 + milliseconds(1500), 2);
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0], std::make_pair(std::string("4"), uint32_t{5}));
  EXPECT_EQ(leases[1], std::make_pair(std::string("3"), uint32_t{4}));
  EXPECT_EQ(recent.Leases(t0 + milliseconds(1500), 10).size(), 3u);
}

TEST(ReconnectBackoffTest, DoublesWithJitterUpToTheCap) {
  ReconnectBackoff backoff(milliseconds(100), milliseconds(5000), 42);
  int64_t base = 100;
  for (int i = 0; i < 10; ++i) {
    const int64_t delay = backoff.Next().count();
    EXPECT_GE(delay, base / 2) << i;
    EXPECT_LE(delay, base) << i;
    base = std::min<int64_t>(base * 2, 5000);
  }
  EXPECT_EQ(backoff.failures(), 10u);
  backoff.Reset();
  EXPECT_LE(backoff.Next().count(), 100);
}

TEST(ProgressThrottleTest, HoldsReportsInsideTheWindowAndKeepsTheLast) {
  ProgressThrottle throttle(milliseconds(500));
  const Clock::time_point t0 = Clock::now();
  auto report = [](double fraction) {
    wire::Progress p;
    p.set_task_id("t");
    p.set_attempt(1);
    p.set_fraction(fraction);
    return p;
  };
  EXPECT_TRUE(throttle.Offer(report(0.1), t0));
  EXPECT_FALSE(throttle.Offer(report(0.2), t0 + milliseconds(100)));
  EXPECT_FALSE(throttle.Offer(report(0.3), t0 + milliseconds(200)));
  EXPECT_TRUE(throttle.TakeDue(t0 + milliseconds(300)).empty());
  auto due = throttle.TakeDue(t0 + milliseconds(500));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_DOUBLE_EQ(due[0].fraction(), 0.3);
  EXPECT_FALSE(throttle.Offer(report(0.9), t0 + milliseconds(600)));
  auto last = throttle.Finish("t", 1);
  ASSERT_TRUE(last);
  EXPECT_DOUBLE_EQ(last->fraction(), 0.9);
  EXPECT_FALSE(throttle.Finish("t", 1));
}

TEST(LeaseTableTest, AdmitsUpToTheSlotsAndDecidesWhatIsReported) {
  LeaseTable table(2);
  auto a = std::make_shared<LeaseControl>();
  auto b = std::make_shared<LeaseControl>();
  EXPECT_TRUE(table.Admit({"a", 1}, a));
  EXPECT_TRUE(table.Admit({"b", 1}, b));
  EXPECT_FALSE(table.Admit({"c", 1}, std::make_shared<LeaseControl>()));
  EXPECT_EQ(table.free_slots(), 0u);

  EXPECT_TRUE(table.Cancel({"a", 1}));
  EXPECT_TRUE(a->cancel_requested());
  EXPECT_FALSE(table.Cancel({"zzz", 1}));
  EXPECT_EQ(table.Reportable().size(), 1u);  // a is cancelled but still holds its slot
  EXPECT_EQ(table.occupied(), 2u);
  EXPECT_EQ(table.Finish({"a", 1}), LeaseTable::Fate::kCancelled);

  auto handed_back = table.HandBackAll();
  ASSERT_EQ(handed_back.size(), 1u);
  EXPECT_EQ(handed_back[0].task_id, "b");
  EXPECT_TRUE(b->stopped());
  EXPECT_EQ(table.Finish({"b", 1}), LeaseTable::Fate::kHandedBack);
  EXPECT_EQ(table.Finish({"b", 1}), LeaseTable::Fate::kUnknown);
  EXPECT_EQ(table.free_slots(), 2u);
}

TEST(LeaseControlTest, DeadlineStopsTheLease) {
  LeaseControl control(Clock::now() + milliseconds(30));
  EXPECT_FALSE(control.stopped());
  std::this_thread::sleep_for(milliseconds(40));
  EXPECT_TRUE(control.deadline_passed());
  EXPECT_TRUE(control.stopped());
  EXPECT_FALSE(control.cancel_requested());
}

TEST(SlotPoolTest, RunsJobsInParallelUpToItsThreads) {
  SlotPool pool(4);
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::atomic<int> done{0};
  for (int i = 0; i < 8; ++i) {
    pool.Submit([&] {
      const int now = ++running;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(milliseconds(50));
      --running;
      ++done;
    });
  }
  EXPECT_TRUE(pool.WaitIdle(milliseconds(5000)));
  EXPECT_EQ(done.load(), 8);
  EXPECT_EQ(peak.load(), 4);
  EXPECT_EQ(pool.pending(), 0u);
}

}  // namespace
}  // namespace clisc::worker
