// Maps role names ("sleep", "cam", ...) to factories. The worker command fills one registry at
// start-up and checks --roles against it; the runtime creates one Role per task attempt.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "workers/runtime/role.h"

namespace clisc::worker {

class RoleRegistry {
 public:
  using Factory = std::function<std::unique_ptr<Role>()>;

  // ALREADY_EXISTS when the name is taken, INVALID_ARGUMENT for an empty name or factory.
  Status Register(std::string name, Factory factory);
  // NOT_FOUND naming the registered roles when `name` is unknown.
  StatusOr<std::unique_ptr<Role>> Create(std::string_view name) const;
  bool Has(std::string_view name) const { return factories_.count(name) > 0; }
  // Sorted.
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, Factory, std::less<>> factories_;
};

// "a, b, c" for error messages.
std::string JoinNames(const std::vector<std::string>& names);

}  // namespace clisc::worker
