#include "cli/run_progress.h"

#include <cstdio>
#include <vector>

namespace clisc::cli {
namespace {

int64_t Count(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string Str(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

RunProgressPrinter::RunProgressPrinter(std::ostream& out,
                                       std::chrono::steady_clock::time_point start, bool resuming,
                                       std::chrono::milliseconds min_interval)
    : out_(out), start_(start), min_interval_(min_interval), seed_silently_(resuming) {}

std::string RunProgressPrinter::Elapsed() const {
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start_)
          .count();
  char text[32];
  std::snprintf(text, sizeof(text), "[%2lld:%02lld:%02lld]", static_cast<long long>(seconds / 3600),
                static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60));
  return text;
}

void RunProgressPrinter::Update(const nlohmann::json& status) {
  if (!status.is_object()) return;
  const nlohmann::json& stages = status.value("stages", nlohmann::json::array());
  for (const nlohmann::json& stage : stages) {
    const std::string name = Str(stage, "stage");
    const int64_t total = Count(stage, "total");
    const bool done = total > 0 && Count(stage, "pending") == 0 && Count(stage, "leased") == 0;
    bool& was_done = stage_done_[name];
    if (done && !was_done && !seed_silently_) {
      out_ << Elapsed() << " stage " << name << " done: " << Count(stage, "succeeded") << "/"
           << total << " succeeded";
      const int64_t failed = Count(stage, "failed") + Count(stage, "blocked");
      if (failed > 0) out_ << ", " << failed << " failed or blocked";
      out_ << "\n";
    }
    was_done = done;
  }

  seed_silently_ = false;

  // What runs now: each worker's tasks with their progress messages.
  std::vector<std::string> running;
  for (const nlohmann::json& worker : status.value("workers", nlohmann::json::array())) {
    for (const nlohmann::json& task : worker.value("running", nlohmann::json::array())) {
      std::string item = Str(task, "stage");
      const std::string case_id = Str(task, "case_id");
      if (!case_id.empty()) item += " " + case_id;
      const std::string message = Str(task, "message");
      if (!message.empty()) item += " (" + message + ")";
      running.push_back(item);
    }
  }
  const nlohmann::json& totals = status.value("totals", nlohmann::json::object());
  const int64_t total = Count(totals, "total");
  const int64_t finished = Count(totals, "succeeded");
  std::string activity = std::to_string(finished) + "/" + std::to_string(total) + " tasks done";
  const int64_t failed = Count(totals, "failed") + Count(totals, "blocked");
  if (failed > 0) activity += ", " + std::to_string(failed) + " failed or blocked";
  if (!running.empty()) {
    activity += " | running:";
    for (size_t i = 0; i < running.size() && i < 3; ++i) activity += " " + running[i] + ";";
    if (running.size() > 3) activity += " +" + std::to_string(running.size() - 3) + " more";
    if (activity.back() == ';') activity.pop_back();
  }
  const auto now = std::chrono::steady_clock::now();
  if (activity != last_activity_ && now - last_line_ >= min_interval_) {
    out_ << Elapsed() << " " << activity << "\n";
    last_activity_ = activity;
    last_line_ = now;
  }
  out_.flush();
}

}  // namespace clisc::cli
