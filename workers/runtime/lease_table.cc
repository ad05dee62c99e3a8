#include "workers/runtime/lease_table.h"

namespace clisc::worker {

bool LeaseTable::Admit(const LeaseKey& key, std::shared_ptr<LeaseControl> control) {
  if (occupied() >= slots_) return false;
  return leases_.emplace(key, Lease{std::move(control), Fate::kReport}).second;
}

bool LeaseTable::Cancel(const LeaseKey& key) {
  auto it = leases_.find(key);
  if (it == leases_.end() || it->second.fate != Fate::kReport) return false;
  it->second.fate = Fate::kCancelled;
  it->second.control->Cancel();
  return true;
}

LeaseTable::Fate LeaseTable::Finish(const LeaseKey& key) {
  auto it = leases_.find(key);
  if (it == leases_.end()) return Fate::kUnknown;
  const Fate fate = it->second.fate;
  leases_.erase(it);
  return fate;
}

std::vector<LeaseKey> LeaseTable::Reportable() const {
  std::vector<LeaseKey> keys;
  for (const auto& [key, lease] : leases_) {
    if (lease.fate == Fate::kReport) keys.push_back(key);
  }
  return keys;
}

std::vector<LeaseKey> LeaseTable::HandBackAll() {
  std::vector<LeaseKey> handed_back;
  for (auto& [key, lease] : leases_) {
    if (lease.fate != Fate::kReport) continue;
    lease.fate = Fate::kHandedBack;
    lease.control->Cancel();
    handed_back.push_back(key);
  }
  return handed_back;
}

void LeaseTable::CancelAll() {
  for (auto& [key, lease] : leases_) {
    if (lease.fate == Fate::kReport) lease.fate = Fate::kCancelled;
    lease.control->Cancel();
  }
}

}  // namespace clisc::worker
