#include "workers/runtime/test_roles.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/sha256.h"

namespace clisc::worker {
namespace {

constexpr uint64_t kMaxSleepMs = uint64_t{24} * 3600 * 1000;
constexpr uint64_t kMaxArtifactBytes = uint64_t{1} << 30;

// Typed access to a role's JSON parameters without exceptions: every mistake becomes an
// INVALID_ARGUMENT naming the role and the key.
class Params {
 public:
  static StatusOr<Params> Parse(std::string_view role, std::string_view text) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      return Params(std::string(role), nlohmann::json::object());
    }
    nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      return InvalidArgumentError("role " + std::string(role) + ": params are not valid JSON");
    }
    if (json.is_null()) json = nlohmann::json::object();
    if (!json.is_object()) {
      return InvalidArgumentError("role " + std::string(role) + ": params must be a JSON object");
    }
    return Params(std::string(role), std::move(json));
  }

  StatusOr<uint64_t> Uint(const std::string& key, uint64_t fallback, uint64_t max) const {
    auto it = json_.find(key);
    if (it == json_.end() || it->is_null()) return fallback;
    // nlohmann parses every non-negative integer literal as unsigned.
    if (!it->is_number_unsigned()) return Invalid(key, "must be a non-negative integer");
    const uint64_t value = it->get<uint64_t>();
    if (value > max) return Invalid(key, "must be at most " + std::to_string(max));
    return value;
  }

  StatusOr<std::string> String(const std::string& key, std::string fallback) const {
    auto it = json_.find(key);
    if (it == json_.end() || it->is_null()) return fallback;
    if (!it->is_string()) return Invalid(key, "must be a string");
    return it->get<std::string>();
  }

 private:
  Params(std::string role, nlohmann::json json) : role_(std::move(role)), json_(std::move(json)) {}
  Status Invalid(const std::string& key, const std::string& what) const {
    return InvalidArgumentError("role " + role_ + ": params." + key + " " + what);
  }

  std::string role_;
  nlohmann::json json_;
};

std::optional<StatusCode> ParseStatusCode(std::string_view name) {
  for (int code = 1; code <= static_cast<int>(StatusCode::kDataLoss); ++code) {
    if (StatusCodeName(static_cast<StatusCode>(code)) == name) {
      return static_cast<StatusCode>(code);
    }
  }
  return std::nullopt;
}

Status Cancelled(const TaskContext& context) {
  return CancelledError("task " + context.task_id() + " was cancelled");
}

class NoopRole : public Role {
 public:
  StatusOr<TaskOutput> Run(TaskContext&) override { return TaskOutput{}; }
};

class SleepRole : public Role {
 public:
  StatusOr<TaskOutput> Run(TaskContext& context) override {
    ASSIGN_OR_RETURN(Params params, Params::Parse("sleep", context.params_json()));
    ASSIGN_OR_RETURN(uint64_t ms, params.Uint("ms", 100, kMaxSleepMs));
    constexpr uint64_t kStepMs = 20;
    for (uint64_t slept = 0; slept < ms;) {
      const uint64_t step = std::min(kStepMs, ms - slept);
      if (!context.SleepFor(std::chrono::milliseconds(step))) return Cancelled(context);
      slept += step;
      context.ReportProgress(
          static_cast<double>(slept) / static_cast<double>(ms),
          "slept " + std::to_string(slept) + " of " + std::to_string(ms) + " ms");
    }
    if (context.cancelled()) return Cancelled(context);
    TaskOutput output;
    output.metrics["slept_ms"] = static_cast<double>(ms);
    return output;
  }
};

class FailRole : public Role {
 public:
  StatusOr<TaskOutput> Run(TaskContext& context) override {
    ASSIGN_OR_RETURN(Params params, Params::Parse("fail", context.params_json()));
    ASSIGN_OR_RETURN(uint64_t times, params.Uint("times", 1, UINT32_MAX));
    ASSIGN_OR_RETURN(std::string code_name, params.String("code", "UNAVAILABLE"));
    std::optional<StatusCode> code = ParseStatusCode(code_name);
    if (!code) {
      return InvalidArgumentError("role fail: params.code '" + code_name +
                                  "' is not a canonical error code name other than OK "
                                  "(e.g. UNAVAILABLE, INTERNAL)");
    }
    ASSIGN_OR_RETURN(
        std::string message,
        params.String("message", "attempt " + std::to_string(context.attempt()) + " of task " +
                                     context.task_id() + " fails on purpose"));
    if (context.attempt() <= times) return Status(*code, message);
    return TaskOutput{};
  }
};

class CrashRole : public Role {
 public:
  StatusOr<TaskOutput> Run(TaskContext& context) override {
    ASSIGN_OR_RETURN(Params params, Params::Parse("crash", context.params_json()));
    ASSIGN_OR_RETURN(uint64_t times, params.Uint("times", 1, UINT32_MAX));
    ASSIGN_OR_RETURN(uint64_t after_ms, params.Uint("after_ms", 50, kMaxSleepMs));
    if (context.attempt() > times) return TaskOutput{};
    if (!context.SleepFor(std::chrono::milliseconds(after_ms))) return Cancelled(context);
    // The point of this role: the whole worker dies mid-task, as it would on a segfault or OOM.
    std::abort();
  }
};

class WriteArtifactRole : public Role {
 public:
  StatusOr<TaskOutput> Run(TaskContext& context) override {
    ASSIGN_OR_RETURN(Params params, Params::Parse("write_artifact", context.params_json()));
    ASSIGN_OR_RETURN(uint64_t bytes, params.Uint("bytes", 4096, kMaxArtifactBytes));
    ASSIGN_OR_RETURN(uint64_t ms, params.Uint("ms", 0, kMaxSleepMs));
    for (const TaskInput& input : context.inputs()) {
      Status verified = context.store().Verify(ArtifactRef{input.path, input.size, input.sha256});
      if (!verified.ok()) return verified.WithContext("input '" + input.name + "'");
    }
    if (!context.SleepFor(std::chrono::milliseconds(ms))) return Cancelled(context);
    TaskOutput output;
    for (const ExpectedOutput& expected : context.expected_outputs()) {
      ASSIGN_OR_RETURN(
          ArtifactRef ref,
          context.store().PutFile(expected.path, DeterministicArtifactBytes(expected.path, bytes)));
      output.outputs.push_back({expected.name, ref.path, ref.sha256, ref.size});
    }
    output.metrics["bytes_written"] =
        static_cast<double>(bytes * context.expected_outputs().size());
    return output;
  }
};

template <typename R>
RoleRegistry::Factory FactoryOf() {
  return [] { return std::make_unique<R>(); };
}

}  // namespace

Status RegisterTestRoles(RoleRegistry& registry) {
  RETURN_IF_ERROR(registry.Register("noop", FactoryOf<NoopRole>()));
  RETURN_IF_ERROR(registry.Register("sleep", FactoryOf<SleepRole>()));
  RETURN_IF_ERROR(registry.Register("fail", FactoryOf<FailRole>()));
  RETURN_IF_ERROR(registry.Register("crash", FactoryOf<CrashRole>()));
  RETURN_IF_ERROR(registry.Register("write_artifact", FactoryOf<WriteArtifactRole>()));
  return OkStatus();
}

std::string DeterministicArtifactBytes(std::string_view path, uint64_t size) {
  std::string out;
  out.reserve(size);
  Sha256 hasher;
  for (uint64_t counter = 0; out.size() < size; ++counter) {
    hasher.Update(path);
    hasher.Update(":" + std::to_string(counter));
    const Sha256Digest digest = hasher.Finish();
    const size_t take = std::min<uint64_t>(digest.size(), size - out.size());
    out.append(reinterpret_cast<const char*>(digest.data()), take);
  }
  return out;
}

}  // namespace clisc::worker
