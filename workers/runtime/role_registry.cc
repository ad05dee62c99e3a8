#include "workers/runtime/role_registry.h"

namespace clisc::worker {

Status RoleRegistry::Register(std::string name, Factory factory) {
  if (name.empty()) return InvalidArgumentError("a role needs a name");
  if (!factory) return InvalidArgumentError("role '" + name + "' has no factory");
  if (factories_.count(name) > 0) {
    return AlreadyExistsError("role '" + name + "' is registered twice");
  }
  factories_.emplace(std::move(name), std::move(factory));
  return OkStatus();
}

StatusOr<std::unique_ptr<Role>> RoleRegistry::Create(std::string_view name) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    return NotFoundError("unknown role '" + std::string(name) +
                         "' (this worker knows: " + JoinNames(Names()) + ")");
  }
  std::unique_ptr<Role> role = it->second();
  if (role == nullptr) return InternalError("the factory of role '" + it->first + "' made nothing");
  return role;
}

std::vector<std::string> RoleRegistry::Names() const {
  std::vector<std::string> names;
  names.reserve(factories_.size());
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

}  // namespace clisc::worker
