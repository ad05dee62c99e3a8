// The U-Net loader's in-memory store of decoded cases: a BraTS case is four float volumes of a few
// million voxels, and reading them back from NIfTI for every patch would dominate a step. Cases
// are kept least-recently-used within a byte budget; several threads may ask at once, and a case
// that one thread is reading is not read again by another (they wait for it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "workers/roles/unet_engine.h"
#include "workers/segmentation/patch_sampling.h"

namespace clisc::segmentation {

// Reads one case: every channel as float, the label as 0/1 (nonzero -> 1), all on one grid
// (same size, Geometry::NearlyEquals), channel minima filled. DATA_LOSS naming the case and the
// file for a volume that cannot be read or that lies on another grid; INVALID_ARGUMENT for a case
// without channels.
StatusOr<TrainingCase> ReadTrainingCase(const roles::UNetCaseFiles& files);

class TrainingVolumeCache {
 public:
  using CasePtr = std::shared_ptr<const TrainingCase>;

  // `byte_budget` bounds the cached cases' voxel bytes; a case larger than the whole budget is
  // still served, just not kept.
  TrainingVolumeCache(std::vector<roles::UNetCaseFiles> cases, int64_t byte_budget);
  TrainingVolumeCache(const TrainingVolumeCache&) = delete;
  TrainingVolumeCache& operator=(const TrainingVolumeCache&) = delete;

  size_t case_count() const { return cases_.size(); }
  const roles::UNetCaseFiles& files(size_t index) const { return cases_[index]; }

  // The case at `index` (< case_count()), from memory or read now. Thread-safe. Errors as
  // ReadTrainingCase's; a failed read is not remembered (the next Get reads again).
  StatusOr<CasePtr> Get(size_t index);

  int64_t hits() const;
  int64_t misses() const;  // reads from disk
  int64_t cached_bytes() const;
  size_t cached_cases() const;

 private:
  using Loaded = std::shared_future<StatusOr<CasePtr>>;
  struct Entry {
    CasePtr value;
    int64_t bytes = 0;
    std::list<size_t>::iterator recency;  // position in recency_, most recent first
  };
  void InsertLocked(size_t index, const CasePtr& value);

  const std::vector<roles::UNetCaseFiles> cases_;
  const int64_t byte_budget_;
  mutable std::mutex mutex_;
  std::map<size_t, Entry> entries_;
  std::map<size_t, Loaded> loading_;
  std::list<size_t> recency_;
  int64_t cached_bytes_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace clisc::segmentation
