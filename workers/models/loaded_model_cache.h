// Networks loaded from weight files, kept for the life of an engine: a worker that runs hundreds
// of CAM or prediction tasks loads each model once. Keys name the file as it is on disk (path,
// size, modification time) plus whatever shapes the network, so a rewritten file is loaded
// afresh. Each entry has its own mutex: a load, and the passes that switch a module's mode, hold
// it, so other models stay usable meanwhile. The least recently used entry is dropped beyond the
// capacity (a task holding it keeps it alive until done); a failed load is not kept.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

#include "common/status.h"

namespace clisc::models {

template <typename Model>
class LoadedModelCache {
 public:
  struct Entry {
    std::mutex mutex;
    Model model{nullptr};
    uint64_t last_use = 0;
  };

  explicit LoadedModelCache(size_t capacity) : capacity_(capacity) {}

  // "<absolute path>|<size>|<mtime>|" for the key; NOT_FOUND naming `what` when the file is not
  // there.
  static StatusOr<std::string> FileKey(const std::filesystem::path& path, const std::string& what) {
    std::error_code error;
    const auto size = std::filesystem::file_size(path, error);
    if (error) return NotFoundError(what + " " + path.string() + ": " + error.message());
    const auto mtime = std::filesystem::last_write_time(path, error).time_since_epoch().count();
    std::ostringstream key;
    key << std::filesystem::absolute(path).string() << '|' << size << '|' << mtime << '|';
    return key.str();
  }

  // The entry of `key`, calling `load` (under the entry's lock) the first time.
  StatusOr<std::shared_ptr<Entry>> Get(const std::string& key,
                                       const std::function<StatusOr<Model>()>& load) {
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::shared_ptr<Entry>& slot = entries_[key];
      if (!slot) slot = std::make_shared<Entry>();
      slot->last_use = ++uses_;
      entry = slot;
      while (entries_.size() > capacity_) {
        auto oldest = entries_.begin();
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
          if (it->second->last_use < oldest->second->last_use) oldest = it;
        }
        entries_.erase(oldest);
      }
    }
    std::lock_guard<std::mutex> lock(entry->mutex);
    if (entry->model) return entry;
    StatusOr<Model> loaded = load();
    if (!loaded.ok()) {
      std::lock_guard<std::mutex> cache_lock(mutex_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second == entry) entries_.erase(it);
      return loaded.status();
    }
    entry->model = *loaded;
    return entry;
  }

 private:
  const size_t capacity_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  uint64_t uses_ = 0;
};

}  // namespace clisc::models
