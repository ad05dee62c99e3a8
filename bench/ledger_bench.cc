// Ledger throughput: how many no-op tasks per second the ledger (and the scheduler over it) can
// move through pending -> leased -> succeeded, one transaction per transition versus grouped
// transitions (LeaseBatch / CompleteBatch, one commit per batch).
//
//   ledger_bench [--tasks N] [--batch B] [--workers W] [--slots S] [--dir DIR] [--sync-full]
//                [--only single|batched|scheduler]
//
// Prints one line per mode and a JSON summary line. The ledger file goes in DIR (default: the
// system temp dir); put it on the disk the coordinator will use, since fsync costs differ.
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/logging.h"
#include "coordinator/ledger.h"
#include "coordinator/scheduler.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;

struct Args {
  int tasks = 20'000;
  int batch = 256;
  int workers = 16;
  int slots = 16;
  std::string dir = fs::temp_directory_path().string();
  bool sync_full = false;
  std::string only;  // run one mode: single, batched or scheduler
};

// Wall time and this process's CPU time. On a loaded machine (shared build hosts) the CPU-time
// rate is the one that says what the code costs; on a quiet one the two agree.
struct Timer {
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  double cpu = CpuSeconds();

  static double CpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  double WallSeconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count();
  }
  double CpuSecondsSince() const { return CpuSeconds() - cpu; }
};

struct Rate {
  double per_wall_s = 0;
  double per_cpu_s = 0;
};

Rate RateOf(double count, const Timer& t) {
  return {count / t.WallSeconds(), count / t.CpuSecondsSince()};
}

void Check(const Status& status, const char* what) {
  if (status.ok()) return;
  std::cerr << what << ": " << status.ToString() << "\n";
  std::exit(1);
}

template <typename T>
T Check(StatusOr<T> value, const char* what) {
  Check(value.status(), what);
  return std::move(value).value();
}

// A fresh ledger holding `n` independent no-op tasks.
struct Fixture {
  std::string path;
  RealClock clock;
  std::unique_ptr<Ledger> ledger;
  RunId run = 0;
  std::vector<TaskId> ids;
  double plan_seconds = 0;

  Fixture(const Args& args, const std::string& name) {
    path = (fs::path(args.dir) /
            ("clisc_ledger_bench_" + std::to_string(::getpid()) + "_" + name + ".db"))
               .string();
    Remove();
    LedgerOptions options;
    options.sync_full = args.sync_full;
    ledger = Check(Ledger::Open(path, &clock, options), "open");
    run = Check(ledger->OpenRun(name, "", "bench"), "run");
    std::vector<TaskSpec> specs(static_cast<size_t>(args.tasks));
    for (int i = 0; i < args.tasks; ++i) {
      specs[i].task_key = "noop/" + std::to_string(i);
      specs[i].stage = "noop";
      specs[i].role = "sleep";
    }
    Timer timer;
    ids = Check(ledger->UpsertTasks(run, specs), "plan").task_ids;
    plan_seconds = timer.WallSeconds();
  }
  ~Fixture() {
    ledger.reset();
    Remove();
  }
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
  }
};

// One transaction per transition.
Rate SingleTransitions(const Args& args) {
  Fixture f(args, "single");
  Timer timer;
  for (TaskId id : f.ids) {
    LeaseGrant grant = Check(f.ledger->Lease({id, "w", std::nullopt}), "lease");
    Check(f.ledger->Complete({id, grant.attempt, "w", "{}", {}}), "complete");
  }
  return RateOf(2.0 * static_cast<double>(f.ids.size()), timer);
}

// `batch` transitions per transaction.
Rate BatchedTransitions(const Args& args) {
  Fixture f(args, "batched");
  Timer timer;
  for (size_t first = 0; first < f.ids.size(); first += static_cast<size_t>(args.batch)) {
    size_t last = std::min(f.ids.size(), first + static_cast<size_t>(args.batch));
    std::vector<LeaseRequest> leases;
    for (size_t i = first; i < last; ++i) leases.push_back({f.ids[i], "w", std::nullopt});
    auto grants = Check(f.ledger->LeaseBatch(leases), "lease batch");
    std::vector<Completion> done;
    for (const auto& g : grants) done.push_back({Check(g, "lease").task_id, 1, "w", "{}", {}});
    for (const Status& s : Check(f.ledger->CompleteBatch(done), "complete batch")) {
      Check(s, "complete");
    }
  }
  return RateOf(2.0 * static_cast<double>(f.ids.size()), timer);
}

// Tasks per second through the scheduler, driven as the coordinator loop would: each round all
// workers that asked for work are served in one lease transaction (AssignWorkBatch) and all
// results that arrived are reported in one transaction (ReportSuccessBatch).
Rate ThroughScheduler(const Args& args) {
  Fixture f(args, "scheduler");
  auto scheduler = Check(Scheduler::Create(f.ledger.get(), f.run), "scheduler");
  for (int w = 0; w < args.workers; ++w) {
    Check(scheduler->RegisterWorker({"w" + std::to_string(w), {"sleep"}, "cpu", args.slots, "", {}})
              .status(),
          "hello");
  }
  std::vector<std::string> ids;
  for (int w = 0; w < args.workers; ++w) ids.push_back("w" + std::to_string(w));
  Timer timer;
  size_t done = 0;
  while (scheduler->run_state() == RunState::kRunning) {
    std::vector<Completion> results;
    auto assigned = Check(scheduler->AssignWorkBatch(ids), "assign");
    for (size_t w = 0; w < ids.size(); ++w) {
      for (const Assignment& a : Check(std::move(assigned[w]), "assign")) {
        results.push_back({a.task_id, a.attempt, ids[w], "{}", {}});
      }
    }
    if (results.empty()) break;
    for (const Status& s : Check(scheduler->ReportSuccessBatch(results), "report")) {
      Check(s, "result");
    }
    done += results.size();
  }
  if (done != f.ids.size()) {
    std::cerr << "scheduler finished " << done << " of " << f.ids.size() << " tasks\n";
    std::exit(1);
  }
  return RateOf(static_cast<double>(done), timer);
}

Args ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--tasks") {
      args.tasks = std::stoi(next());
    } else if (a == "--batch") {
      args.batch = std::stoi(next());
    } else if (a == "--workers") {
      args.workers = std::stoi(next());
    } else if (a == "--slots") {
      args.slots = std::stoi(next());
    } else if (a == "--dir") {
      args.dir = next();
    } else if (a == "--only") {
      args.only = next();
    } else if (a == "--sync-full") {
      args.sync_full = true;
    } else {
      std::cerr << "usage: ledger_bench [--tasks N] [--batch B] [--workers W] [--slots S] "
                   "[--dir DIR] [--sync-full] [--only single|batched|scheduler]\n";
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  if (args.tasks < 1 || args.batch < 1 || args.workers < 1 || args.slots < 1) {
    std::cerr << "counts must be positive\n";
    std::exit(2);
  }
  return args;
}

}  // namespace
}  // namespace clisc

int main(int argc, char** argv) {
  using namespace clisc;
  InitLogging(LogLevel::kWarn, LogFormat::kText, "ledger_bench");
  Args args = ParseArgs(argc, argv);
  std::cout << "ledger_bench: " << args.tasks
            << " no-op tasks, synchronous=" << (args.sync_full ? "FULL" : "NORMAL")
            << ", dir=" << args.dir << "\n";
  auto show = [](const std::string& what, const Rate& r, const char* unit) {
    std::cout << "  " << what << ": " << static_cast<int64_t>(r.per_wall_s) << " " << unit
              << "/s wall, " << static_cast<int64_t>(r.per_cpu_s) << " " << unit << "/s CPU\n";
  };
  auto wanted = [&](const char* mode) { return args.only.empty() || args.only == mode; };
  Rate single, batched, scheduled;
  if (wanted("single")) {
    single = SingleTransitions(args);
    show("single transitions (1 per transaction)", single, "transitions");
  }
  if (wanted("batched")) {
    batched = BatchedTransitions(args);
    show("batched transitions (" + std::to_string(args.batch) + " per transaction)", batched,
         "transitions");
  }
  if (wanted("scheduler")) {
    scheduled = ThroughScheduler(args);
    show("scheduler (" + std::to_string(args.workers) + " workers x " + std::to_string(args.slots) +
             " slots, batched results)",
         scheduled, "tasks");
  }
  nlohmann::json summary = {{"tasks", args.tasks},
                            {"sync", args.sync_full ? "full" : "normal"},
                            {"batch", args.batch},
                            {"single_transitions_per_s", single.per_wall_s},
                            {"single_transitions_per_cpu_s", single.per_cpu_s},
                            {"batched_transitions_per_s", batched.per_wall_s},
                            {"batched_transitions_per_cpu_s", batched.per_cpu_s},
                            {"scheduler_tasks_per_s", scheduled.per_wall_s},
                            {"scheduler_tasks_per_cpu_s", scheduled.per_cpu_s}};
  std::cout << summary.dump() << "\n";
  return 0;
}
