// The Redis keys of the live view, shared by the coordinator's mirror (writer) and `clisc status`
// (reader). The layout is described in live_state_mirror.h.
#pragma once

#include <string>
#include <string_view>

namespace clisc {

class LiveStateKeys {
 public:
  LiveStateKeys(std::string_view prefix, std::string_view run)
      : prefix_(prefix), run_base_(std::string(prefix) + ":run:" + std::string(run)) {}

  static std::string CurrentRun(std::string_view prefix) {
    return std::string(prefix) + ":current_run";
  }
  static std::string Runs(std::string_view prefix) { return std::string(prefix) + ":runs"; }

  std::string current_run() const { return CurrentRun(prefix_); }
  std::string runs() const { return Runs(prefix_); }
  std::string status() const { return run_base_ + ":status"; }
  std::string status_ms() const { return run_base_ + ":status_ms"; }
  std::string workers() const { return run_base_ + ":workers"; }
  std::string events() const { return run_base_ + ":events"; }
  std::string events_seq() const { return run_base_ + ":events_seq"; }
  std::string notify() const { return run_base_ + ":notify"; }

 private:
  std::string prefix_;
  std::string run_base_;
};

}  // namespace clisc
