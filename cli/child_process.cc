#include "cli/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

extern char** environ;

namespace clisc::cli {

ChildProcess::~ChildProcess() {
  if (Running()) {
    Signal(SIGKILL);
    WaitFor(std::chrono::seconds(5));
  }
}

Status ChildProcess::Start(const std::vector<std::string>& argv, const std::filesystem::path& log,
                           const std::map<std::string, std::string>& extra_env) {
  if (argv.empty()) return InvalidArgumentError("no program to start");
  if (Running()) Stop(std::chrono::seconds(5));
  // Everything the child needs is built before fork(): between fork and exec a child of a
  // multithreaded process may only make async-signal-safe calls.
  std::vector<std::string> args_copy = argv;
  std::vector<char*> args;
  for (std::string& a : args_copy) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_copy;
  std::set<std::string> overridden;
  for (const auto& [name, value] : extra_env) {
    env_copy.push_back(name + "=" + value);
    overridden.insert(name);
  }
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry = *e;
    if (overridden.count(entry.substr(0, entry.find('='))) == 0) env_copy.push_back(entry);
  }
  std::vector<char*> env;
  for (std::string& e : env_copy) env.push_back(e.data());
  env.push_back(nullptr);

  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return UnavailableError("cannot open log " + log.string() + ": " + std::strerror(errno));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    return UnavailableError(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execve(args[0], args.data(), env.data());
    _exit(127);
  }
  close(fd);
  pid_ = pid;
  exit_status_.reset();
  return OkStatus();
}

bool ChildProcess::Running() {
  if (pid_ <= 0 || exit_status_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = status;
    return false;
  }
  return r == 0;
}

void ChildProcess::Signal(int signal) {
  if (Running()) kill(pid_, signal);
}

bool ChildProcess::WaitFor(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (!Running()) return;
  Signal(SIGTERM);
  if (WaitFor(grace)) return;
  Signal(SIGKILL);
  WaitFor(std::chrono::seconds(10));
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "ended (status " + std::to_string(status) + ")";
}

bool ExitedCleanly(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

}  // namespace clisc::cli
