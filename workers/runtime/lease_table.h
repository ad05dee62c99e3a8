// The leases this worker holds, owned by the IO thread: slot admission, what Hello and
// Heartbeat report as running, and whether a finished task's result still goes to the
// coordinator (not after a TaskCancel, nor after the worker handed the lease back).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "workers/runtime/role.h"

namespace clisc::worker {

struct LeaseKey {
  std::string task_id;
  uint32_t attempt = 0;
  auto operator<=>(const LeaseKey&) const = default;
};

class LeaseTable {
 public:
  enum class Fate { kReport, kCancelled, kHandedBack, kUnknown };

  explicit LeaseTable(uint32_t slots) : slots_(slots) {}

  uint32_t slots() const { return slots_; }
  // Tasks occupying a slot, including cancelled ones whose role has not returned yet.
  uint32_t occupied() const { return static_cast<uint32_t>(leases_.size()); }
  uint32_t free_slots() const { return slots_ - occupied(); }
  bool Contains(const LeaseKey& key) const { return leases_.count(key) > 0; }

  // False when every slot is taken.
  bool Admit(const LeaseKey& key, std::shared_ptr<LeaseControl> control);
  // Stops a lease on the coordinator's request; its result will not be sent. False when the
  // lease is unknown or already stopped.
  bool Cancel(const LeaseKey& key);
  // The task's role returned: frees the slot and says what to do with the result.
  Fate Finish(const LeaseKey& key);
  // Leases whose results are still owed to the coordinator, in key order.
  std::vector<LeaseKey> Reportable() const;
  // Shutdown past the drain timeout: stops every reportable lease and returns them; the caller
  // reports each as failed. The roles' own results will be dropped.
  std::vector<LeaseKey> HandBackAll();
  // Stops every lease (the worker is leaving without reporting).
  void CancelAll();

 private:
  struct Lease {
    std::shared_ptr<LeaseControl> control;
    Fate fate = Fate::kReport;
  };

  uint32_t slots_;
  std::map<LeaseKey, Lease> leases_;
};

}  // namespace clisc::worker
