#include "cli/run_workdir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/atomic_file.h"

namespace clisc::cli {
namespace {

std::string NowIso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string ReadSmallFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

StatusOr<RunWorkdir> RunWorkdir::Open(const std::filesystem::path& root, bool must_resume) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path absolute = fs::absolute(root, ec);
  if (ec) return InvalidArgumentError("bad workdir " + root.string() + ": " + ec.message());
  if (fs::exists(absolute, ec) && !fs::is_directory(absolute, ec)) {
    return InvalidArgumentError("workdir " + absolute.string() + " exists and is not a folder");
  }
  fs::create_directories(absolute / "logs", ec);
  if (ec) {
    return UnavailableError("cannot create workdir " + absolute.string() + ": " + ec.message());
  }
  const fs::path lock_path = absolute / ".lock";
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return UnavailableError("cannot open " + lock_path.string() + ": " + std::strerror(errno));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const std::string holder = ReadSmallFile(lock_path);
    close(fd);
    return FailedPreconditionError(
        "workdir " + absolute.string() + " is in use by another clisc run" +
        (holder.empty() ? "" : " (pid " + holder + ")") + "; wait for it or stop it first");
  }
  const std::string pid = std::to_string(getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only a hint for the message above; the lock itself holds.
  }
  const bool resuming = fs::exists(absolute / "ledger.db", ec);
  if (must_resume && !resuming) {
    close(fd);
    return FailedPreconditionError("--resume: no run to resume in " + absolute.string() +
                                   " (no ledger.db); drop --resume to start one");
  }
  nlohmann::json record = nlohmann::json::object();
  if (fs::exists(absolute / "run.json", ec)) {
    record = nlohmann::json::parse(ReadSmallFile(absolute / "run.json"), nullptr, false);
    if (record.is_discarded() || !record.is_object()) {
      close(fd);
      return DataLossError(
          (absolute / "run.json").string() +
          " is not valid JSON; restore it or remove it (the ledger keeps the run's state)");
    }
  }
  return RunWorkdir(absolute, fd, resuming, std::move(record));
}

RunWorkdir::RunWorkdir(std::filesystem::path root, int lock_fd, bool resuming,
                       nlohmann::json record)
    : root_(std::move(root)), lock_fd_(lock_fd), resuming_(resuming), record_(std::move(record)) {}

RunWorkdir::RunWorkdir(RunWorkdir&& other) noexcept
    : root_(std::move(other.root_)),
      lock_fd_(other.lock_fd_),
      resuming_(other.resuming_),
      record_(std::move(other.record_)) {
  other.lock_fd_ = -1;
}

RunWorkdir::~RunWorkdir() {
  if (lock_fd_ >= 0) close(lock_fd_);  // closing releases the flock
}

std::filesystem::path RunWorkdir::recorded_data() const {
  if (!record_.contains("data") || !record_["data"].is_string()) return {};
  return record_["data"].get<std::string>();
}

Status RunWorkdir::RecordSession(const std::filesystem::path& data,
                                 const std::string& config_source, const std::string& mode) {
  const std::filesystem::path recorded = recorded_data();
  if (!recorded.empty() && recorded != data) {
    return FailedPreconditionError("workdir " + root_.string() + " holds a run on " +
                                   recorded.string() + ", not on " + data.string() +
                                   "; use another --workdir for another dataset");
  }
  if (!record_.contains("format")) {
    record_["format"] = 1;
    record_["run"] = kRunName;
    record_["data"] = data.string();
    record_["created"] = NowIso8601();
    record_["sessions"] = nlohmann::json::array();
  }
  record_["config_source"] = config_source;
  record_["sessions"].push_back({{"started", NowIso8601()},
                                 {"mode", mode},
                                 {"config_source", config_source},
                                 {"pid", getpid()}});
  return WriteRecord();
}

Status RunWorkdir::RecordSplits(const std::vector<std::string>& train,
                                const std::vector<std::string>& valid,
                                const std::vector<std::string>& test) {
  record_["splits"] = {{"train", train}, {"valid", valid}, {"test", test}};
  return WriteRecord();
}

Status RunWorkdir::RecordSessionEnd(const std::string& outcome) {
  if (!record_.contains("sessions") || record_["sessions"].empty()) return OkStatus();
  nlohmann::json& last = record_["sessions"].back();
  last["finished"] = NowIso8601();
  last["outcome"] = outcome;
  return WriteRecord();
}

Status RunWorkdir::WriteRecord() {
  return WriteFileAtomically(root_ / "run.json", record_.dump(2) + "\n");
}

}  // namespace clisc::cli
