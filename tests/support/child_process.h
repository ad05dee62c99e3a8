// A child process for integration tests: the real `clisc` binary (or any program) with its output
// in a log file, killed with the test (PR_SET_PDEATHSIG) so a failed test leaves nothing behind.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace clisc::testutil {

class ChildProcess {
 public:
  ChildProcess() = default;
  // Starts at once, with a fresh log.
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log_path) {
    Start(argv, log_path, /*append=*/false);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { Kill(SIGKILL); }

  // Starts `argv` with stdout and stderr going to `log_path` (appended, so restarts of one
  // process share a log). False when fork fails.
  bool Start(const std::vector<std::string>& argv, const std::filesystem::path& log_path,
             bool append = true) {
    Kill(SIGKILL);
    log_path_ = log_path;
    // Everything the child needs is prepared before fork(): between fork and exec a child of a
    // multithreaded process may only make async-signal-safe calls.
    std::vector<std::string> args_copy = argv;
    std::vector<char*> args;
    for (std::string& a : args_copy) args.push_back(a.data());
    args.push_back(nullptr);
    const int fd = open(log_path.c_str(),
                        O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      if (fd >= 0) close(fd);
      return false;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      struct rlimit no_core {
        0, 0
      };  // crash tests abort on purpose: no core files
      setrlimit(RLIMIT_CORE, &no_core);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
      execv(args[0], args.data());
      _exit(127);
    }
    if (fd >= 0) close(fd);
    pid_ = pid;
    exit_status_.reset();
    return true;
  }

  bool running() {
    Reap(false);
    return pid_ > 0 && !exit_status_;
  }
  pid_t pid() const { return pid_; }

  void Signal(int sig) {
    if (running()) kill(pid_, sig);
  }
  // Sends `sig` and reaps the process.
  void Kill(int sig) {
    if (pid_ <= 0) return;
    if (!exit_status_) {
      kill(pid_, sig);
      Reap(true);
    }
    pid_ = -1;
  }

  // The wait status once the process has ended within `timeout`, nullopt otherwise.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      Reap(false);
      if (exit_status_ || std::chrono::steady_clock::now() >= deadline) return exit_status_;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::optional<int> exit_status() const { return exit_status_; }

  std::string Log() const {
    std::ifstream in(log_path_);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  void Reap(bool block) {
    if (pid_ <= 0 || exit_status_) return;
    int status = 0;
    pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_) exit_status_ = status;
  }

  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::filesystem::path log_path_;
};

// A loopback TCP port that was free a moment ago (bind to port 0 and read it back).
inline int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace clisc::testutil
