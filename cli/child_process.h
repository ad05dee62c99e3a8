// A child process of `clisc run`: a coordinator or a local worker, with its output appended to a
// log file. The child gets SIGTERM when its parent dies (PR_SET_PDEATHSIG), so a killed `clisc
// run` never leaves workers behind that would hold the machine or talk to a dead coordinator.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace clisc::cli {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Starts argv[0] (a path) with `argv`, the parent's environment plus `extra_env`, and stdout and
  // stderr appended to `log`. A child that is still running is killed first.
  Status Start(const std::vector<std::string>& argv, const std::filesystem::path& log,
               const std::map<std::string, std::string>& extra_env = {});

  // True while the process runs; reaps it (without blocking) once it has ended.
  bool Running();
  // The wait status once it has ended.
  std::optional<int> ExitStatus() const { return exit_status_; }
  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  void Signal(int signal);
  // Waits up to `timeout` for the end; true when it has ended.
  bool WaitFor(std::chrono::milliseconds timeout);
  // SIGTERM, up to `grace` for a clean exit, then SIGKILL.
  void Stop(std::chrono::milliseconds grace);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// "exit 0", "exit 3", "killed by signal 9 (Killed)".
std::string DescribeWaitStatus(int status);

// True when the wait status is a clean exit with code 0.
bool ExitedCleanly(int status);

}  // namespace clisc::cli
