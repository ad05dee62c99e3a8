#include "coordinator/ledger_types.h"

#include <array>
#include <utility>

namespace clisc {

namespace {

template <typename E, size_t N>
StatusOr<E> ParseName(const std::array<std::pair<E, std::string_view>, N>& names,
                      std::string_view name, std::string_view what) {
  for (const auto& [value, text] : names) {
    if (text == name) return value;
  }
  return DataLossError("unknown " + std::string(what) + " '" + std::string(name) + "' in ledger");
}

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& names, E value) {
  for (const auto& [v, text] : names) {
    if (v == value) return text;
  }
  return "unknown";
}

constexpr std::array<std::pair<TaskState, std::string_view>, 6> kTaskStates = {{
    {TaskState::kPending, "pending"},
    {TaskState::kLeased, "leased"},
    {TaskState::kSucceeded, "succeeded"},
    {TaskState::kFailed, "failed"},
    {TaskState::kBlocked, "blocked"},
    {TaskState::kCancelled, "cancelled"},
}};
constexpr std::array<std::pair<RunState, std::string_view>, 4> kRunStates = {{
    {RunState::kRunning, "running"},
    {RunState::kSucceeded, "succeeded"},
    {RunState::kFailed, "failed"},
    {RunState::kCancelled, "cancelled"},
}};
constexpr std::array<std::pair<CaseState, std::string_view>, 2> kCaseStates = {{
    {CaseState::kActive, "active"},
    {CaseState::kExcluded, "excluded"},
}};
constexpr std::array<std::pair<AttemptOutcome, std::string_view>, 5> kOutcomes = {{
    {AttemptOutcome::kRunning, "running"},
    {AttemptOutcome::kSucceeded, "succeeded"},
    {AttemptOutcome::kFailed, "failed"},
    {AttemptOutcome::kLost, "lost"},
    {AttemptOutcome::kRevoked, "revoked"},
}};
constexpr std::array<std::pair<WorkerState, std::string_view>, 3> kWorkerStates = {{
    {WorkerState::kAlive, "alive"},
    {WorkerState::kDead, "dead"},
    {WorkerState::kGone, "gone"},
}};

}  // namespace

std::string_view TaskStateName(TaskState state) { return NameOf(kTaskStates, state); }
std::string_view RunStateName(RunState state) { return NameOf(kRunStates, state); }
std::string_view CaseStateName(CaseState state) { return NameOf(kCaseStates, state); }
std::string_view AttemptOutcomeName(AttemptOutcome outcome) { return NameOf(kOutcomes, outcome); }
std::string_view WorkerStateName(WorkerState state) { return NameOf(kWorkerStates, state); }

StatusOr<TaskState> ParseTaskState(std::string_view name) {
  return ParseName(kTaskStates, name, "task state");
}
StatusOr<RunState> ParseRunState(std::string_view name) {
  return ParseName(kRunStates, name, "run state");
}
StatusOr<CaseState> ParseCaseState(std::string_view name) {
  return ParseName(kCaseStates, name, "case state");
}
StatusOr<AttemptOutcome> ParseAttemptOutcome(std::string_view name) {
  return ParseName(kOutcomes, name, "attempt outcome");
}
StatusOr<WorkerState> ParseWorkerState(std::string_view name) {
  return ParseName(kWorkerStates, name, "worker state");
}

StatusCode ParseStatusCodeName(std::string_view name) {
  for (int code = 0; code <= static_cast<int>(StatusCode::kDataLoss); ++code) {
    auto c = static_cast<StatusCode>(code);
    if (StatusCodeName(c) == name) return c;
  }
  return StatusCode::kUnknown;
}

}  // namespace clisc
