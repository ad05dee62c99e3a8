#include "cli/run_command.h"

#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "cli/run_supervisor.h"
#include "cli/run_workdir.h"
#include "common/atomic_file.h"
#include "common/config.h"
#include "coordinator/method_plan.h"
#include "coordinator/task_identity.h"
#include "report/results_table.h"
#include "report/run_report.h"

namespace clisc::cli {
namespace {

std::atomic<bool> g_stop{false};

void OnStopSignal(int) { g_stop.store(true); }

void PrintError(const Status& status) {
  std::istringstream lines(status.message());
  for (std::string line; std::getline(lines, line);) std::cerr << "error: " << line << "\n";
}

// One device per local worker: "cuda" numbers the GPUs (worker i gets cuda:i), a comma list is
// dealt out in turn, anything else is shared.
std::vector<std::string> WorkerDevices(const std::string& device, int workers) {
  std::vector<std::string> listed;
  std::stringstream items(device);
  for (std::string item; std::getline(items, item, ',');) {
    if (!item.empty()) listed.push_back(item);
  }
  std::vector<std::string> devices;
  for (int i = 0; i < workers; ++i) {
    if (device == "cuda") {
      devices.push_back("cuda:" + std::to_string(i));
    } else if (listed.empty()) {
      devices.push_back("");
    } else {
      devices.push_back(listed[static_cast<size_t>(i) % listed.size()]);
    }
  }
  return devices;
}

StatusOr<std::filesystem::path> SelfBinary() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return UnavailableError("cannot find the clisc executable: " + ec.message());
  return self;
}

// Plans the dataset with identity keys and writes the plan and the effective config.
StatusOr<MethodPlan> PlanRun(const Config& config, const std::filesystem::path& data,
                             const RunWorkdir& workdir) {
  ASSIGN_OR_RETURN(MethodPlan plan, PlanFromDataset(config, data));
  std::map<std::string, std::string> stamps;
  for (const PlannedCase& c : plan.cases) {
    ASSIGN_OR_RETURN(std::string stamp, StampFolderFiles(c.dir));
    stamps.emplace(c.id, std::move(stamp));
  }
  ASSIGN_OR_RETURN(plan.tasks, WithIdentityKeys(plan.tasks, stamps));
  RETURN_IF_ERROR(WriteFileAtomically(workdir.config(), config.ToYaml()));
  RETURN_IF_ERROR(WriteFileAtomically(workdir.plan(), TaskPlanJson(plan.tasks)));
  return plan;
}

void PrintPlanSummary(const MethodPlan& plan) {
  std::cout << "data " << plan.data_dir.string() << ": " << plan.cases.size()
            << " cases planned (train " << plan.splits.train.size() << ", valid "
            << plan.splits.valid.size() << ", test " << plan.splits.test.size() << "), "
            << plan.rejected.size() << " rejected\n";
  for (const RejectedCase& r : plan.rejected) {
    std::cout << "  rejected " << r.id << ": " << r.reason << "\n";
  }
  for (const std::string& w : plan.warnings) std::cout << "  warning: " << w << "\n";
  std::cout << "plan: " << plan.tasks.size() << " tasks in " << TaskCountsByStage(plan.tasks).size()
            << " stages\n";
}

// The report and the results table, for a failed run too: they show how far it got.
void WriteReportAndTable(const RunWorkdir& workdir) {
  report::RunReportOptions options;
  options.workdir = workdir.root();
  if (Status s = report::WriteRunReport(options); !s.ok()) {
    std::cerr << "warning: the report was not written: " << s.ToString() << "\n";
    return;
  }
  StatusOr<report::RunReportData> data = report::LoadRunReportData(workdir.root());
  if (data.ok()) {
    std::cout << "\n" << report::FormatResultsTable(report::BuildResultsTable(*data));
  }
  std::cout << "\nreport: " << (workdir.report() / "index.html").string() << "\n"
            << "        " << (workdir.report() / "metrics.csv").string() << ", "
            << (workdir.report() / "summary.json").string() << "\n";
}

}  // namespace

const std::atomic<bool>& InstallRunStopHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  return g_stop;
}

int ExecuteRun(const RunRequest& request, const std::atomic<bool>& stop) {
  StatusOr<Config> config = LoadConfigFile(request.config_path, request.overrides);
  if (!config.ok()) {
    PrintError(config.status());
    return kExitUsage;
  }
  StatusOr<RunWorkdir> workdir = RunWorkdir::Open(request.workdir, request.must_resume);
  if (!workdir.ok()) {
    PrintError(workdir.status());
    return kExitUsage;
  }
  std::string data = request.data;
  if (data.empty()) data = workdir->recorded_data().string();
  if (data.empty()) data = config->GetOptionalString("data.root").value_or("");
  if (data.empty()) {
    std::cerr << "error: no dataset: give --data DIR or set data.root\n";
    return kExitUsage;
  }
  std::error_code ec;
  const std::filesystem::path data_dir = std::filesystem::absolute(data, ec);

  std::cout << "clisc run: workdir " << workdir->root().string()
            << (workdir->resuming() ? " (resuming the run there)" : " (new run)") << "\n";
  if (Status s = workdir->RecordSession(data_dir, config->source(),
                                        request.coordinator_only ? "cluster" : "local");
      !s.ok()) {
    PrintError(s);
    return kExitUsage;
  }
  StatusOr<MethodPlan> plan = PlanRun(*config, data_dir, *workdir);
  if (!plan.ok()) {
    PrintError(plan.status());
    const StatusCode code = plan.status().code();
    return code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument ? kExitUsage
                                                                                 : kExitFailure;
  }
  PrintPlanSummary(*plan);
  if (Status s = workdir->RecordSplits(plan->splits.train, plan->splits.valid, plan->splits.test);
      !s.ok()) {
    PrintError(s);
    return kExitFailure;
  }

  StatusOr<std::filesystem::path> binary = SelfBinary();
  if (!binary.ok()) {
    PrintError(binary.status());
    return kExitFailure;
  }
  SupervisorOptions options;
  options.binary = *binary;
  options.retry_failed = request.retry_failed;
  options.redis_url = request.redis;
  options.curve_key = request.curve_key;
  options.curve_allow = request.curve_allow;
  if (request.coordinator_only) {
    options.bind = request.bind.empty() ? "tcp://0.0.0.0:5555" : request.bind;
    options.http = request.http.empty() ? "0.0.0.0:8470" : request.http;
  } else {
    StatusOr<int> port = request.bind.empty() ? PickFreeLoopbackPort() : StatusOr<int>(0);
    StatusOr<int> http_port = request.http.empty() ? PickFreeLoopbackPort() : StatusOr<int>(0);
    for (const Status& s : {port.status(), http_port.status()}) {
      if (!s.ok()) {
        PrintError(s);
        return kExitFailure;
      }
    }
    options.bind = request.bind.empty() ? "tcp://127.0.0.1:" + std::to_string(*port) : request.bind;
    options.http = request.http.empty() ? "127.0.0.1:" + std::to_string(*http_port) : request.http;
    // Workers on this host reach a wildcard bind through the loopback address.
    options.connect = options.bind;
    const std::string wildcard = "tcp://0.0.0.0:";
    if (options.connect.rfind(wildcard, 0) == 0) {
      options.connect = "tcp://127.0.0.1:" + options.connect.substr(wildcard.size());
    }
    const std::string device =
        request.device.empty() ? config->GetOptionalString("device").value_or("") : request.device;
    options.worker_devices = WorkerDevices(device, request.workers);
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (request.workers > 1) options.threads_per_worker = std::max(1, cores / request.workers);
  }
  if (options.http == "off") options.http.clear();

  std::cout << "coordinator " << options.bind;
  if (!options.http.empty()) std::cout << ", status http://" << options.http << "/api/status";
  if (request.coordinator_only) {
    std::cout << "\nwaiting for workers; start them on the cluster nodes with\n"
              << "  clisc worker --connect tcp://<this host>:<port> --roles " << options.roles
              << " --device cuda:0 --artifact-root " << workdir->root().string() << "\n";
  } else {
    std::cout << ", " << request.workers << " local worker" << (request.workers == 1 ? "" : "s")
              << "\n";
  }
  std::cout << "logs in " << workdir->logs().string() << "\n" << std::flush;

  StatusOr<SupervisedOutcome> outcome = SuperviseRun(*workdir, options, stop, std::cout);
  if (!outcome.ok()) {
    PrintError(outcome.status());
    (void)workdir->RecordSessionEnd("error: " + outcome.status().ToString());
    return kExitFailure;
  }
  (void)workdir->RecordSessionEnd(outcome->description);
  std::cout << (outcome->succeeded ? "" : "clisc run: ") << outcome->description << "\n";
  if (request.write_report && !outcome->interrupted) {
    WriteReportAndTable(*workdir);
  }
  return outcome->succeeded ? kExitOk : kExitFailure;
}

}  // namespace clisc::cli
