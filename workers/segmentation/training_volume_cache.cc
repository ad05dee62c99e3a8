#include "workers/segmentation/training_volume_cache.h"

#include <string>
#include <utility>

#include "common/volume_io.h"

namespace clisc::segmentation {
namespace {

std::string SizeText(const Dims& size) {
  return std::to_string(size.x) + "x" + std::to_string(size.y) + "x" + std::to_string(size.z);
}

template <typename T>
StatusOr<Volume<T>> ReadCaseVolume(const roles::UNetCaseFiles& files,
                                   const std::filesystem::path& path) {
  StatusOr<Volume<T>> volume = ReadVolume<T>(path);
  if (!volume.ok()) {
    return DataLossError("case " + files.id + ": cannot read " + path.string() + " (" +
                         volume.status().ToString() + ")");
  }
  return volume;
}

// DATA_LOSS unless `volume` lies on the grid of `reference` (the case's first channel).
template <typename T>
Status CheckSameGrid(const roles::UNetCaseFiles& files, const std::filesystem::path& path,
                     const Volume<T>& volume, const FloatVolume& reference) {
  if (volume.size() != reference.size() || !volume.geometry().NearlyEquals(reference.geometry())) {
    return DataLossError("case " + files.id + ": " + path.string() + " (" +
                         SizeText(volume.size()) + ") is not on the grid of " +
                         files.channels.front().string() + " (" + SizeText(reference.size()) + ")");
  }
  return OkStatus();
}

}  // namespace

StatusOr<TrainingCase> ReadTrainingCase(const roles::UNetCaseFiles& files) {
  if (files.channels.empty()) {
    return InvalidArgumentError("case " + files.id + " names no channel volumes");
  }
  TrainingCase out;
  for (const std::filesystem::path& path : files.channels) {
    ASSIGN_OR_RETURN(FloatVolume channel, ReadCaseVolume<float>(files, path));
    if (!out.channels.empty()) {
      RETURN_IF_ERROR(CheckSameGrid(files, path, channel, out.channels.front()));
    }
    out.channels.push_back(std::move(channel));
  }
  ASSIGN_OR_RETURN(out.label, ReadCaseVolume<uint8_t>(files, files.label));
  RETURN_IF_ERROR(CheckSameGrid(files, files.label, out.label, out.channels.front()));
  for (uint8_t& voxel : out.label.voxels()) voxel = voxel != 0 ? 1 : 0;
  ComputeChannelMinima(out);
  return out;
}

TrainingVolumeCache::TrainingVolumeCache(std::vector<roles::UNetCaseFiles> cases,
                                         int64_t byte_budget)
    : cases_(std::move(cases)), byte_budget_(byte_budget) {}

StatusOr<TrainingVolumeCache::CasePtr> TrainingVolumeCache::Get(size_t index) {
  if (index >= cases_.size()) {
    return InvalidArgumentError("training case " + std::to_string(index) + " of " +
                                std::to_string(cases_.size()));
  }
  std::promise<StatusOr<CasePtr>> promise;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (auto it = entries_.find(index); it != entries_.end()) {
      ++hits_;
      recency_.splice(recency_.begin(), recency_, it->second.recency);
      return it->second.value;
    }
    if (auto it = loading_.find(index); it != loading_.end()) {
      ++hits_;  // another thread reads it; wait for that read instead of repeating it
      Loaded pending = it->second;
      lock.unlock();
      return pending.get();
    }
    ++misses_;
    loading_.emplace(index, promise.get_future().share());
  }
  StatusOr<TrainingCase> read = ReadTrainingCase(cases_[index]);
  StatusOr<CasePtr> result =
      read.ok() ? StatusOr<CasePtr>(std::make_shared<const TrainingCase>(std::move(read).value()))
                : StatusOr<CasePtr>(read.status());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    loading_.erase(index);
    if (result.ok()) InsertLocked(index, *result);
  }
  promise.set_value(result);
  return result;
}

void TrainingVolumeCache::InsertLocked(size_t index, const CasePtr& value) {
  const int64_t bytes = value->bytes();
  if (bytes > byte_budget_) return;  // served, not kept
  while (cached_bytes_ + bytes > byte_budget_ && !recency_.empty()) {
    const size_t oldest = recency_.back();
    recency_.pop_back();
    cached_bytes_ -= entries_[oldest].bytes;
    entries_.erase(oldest);
  }
  recency_.push_front(index);
  entries_[index] = Entry{value, bytes, recency_.begin()};
  cached_bytes_ += bytes;
}

int64_t TrainingVolumeCache::hits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hits_;
}

int64_t TrainingVolumeCache::misses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return misses_;
}

int64_t TrainingVolumeCache::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_bytes_;
}

size_t TrainingVolumeCache::cached_cases() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace clisc::segmentation
