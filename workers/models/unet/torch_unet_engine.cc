#include "workers/models/unet/torch_unet_engine.h"

#include <torch/torch.h>

#include <map>
#include <mutex>
#include <sstream>
#include <string>

#include "workers/models/compute_device.h"
#include "workers/models/unet/unet3d.h"
#include "workers/models/unet/unet_inference.h"
#include "workers/models/unet/unet_trainer.h"

namespace clisc::models {
namespace {

constexpr size_t kCachedModels = 4;

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

class TorchUNetEngine final : public roles::UNetEngine {
 public:
  std::string Describe() const override { return "LibTorch 3D U-Net (train + predict)"; }

  StatusOr<roles::UNetTrainingReport> Train(const std::vector<roles::UNetCaseFiles>& train,
                                            const roles::UNetTrainingOptions& options,
                                            const std::filesystem::path& model_out,
                                            const roles::TrainingProgress& progress) override {
    return TrainUNet(train, options, model_out, progress);  // converts LibTorch errors itself
  }

  StatusOr<LabelVolume> Predict(const std::filesystem::path& model,
                                const std::vector<FloatVolume>& channels,
                                const roles::UNetInferenceOptions& options) override {
    try {
      ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(options.device));
      ASSIGN_OR_RETURN(std::shared_ptr<CachedModel> entry, Model(model, options, device));
      // One pass at a time per model: PredictUNetLabels switches the module's mode.
      std::lock_guard<std::mutex> lock(entry->mutex);
      return PredictUNetLabels(entry->model, channels, options);
    } catch (const c10::Error& e) {
      return InternalError("unet prediction: " + FirstLine(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return InternalError(std::string("unet prediction: ") + e.what());
    }
  }

 private:
  struct CachedModel {
    std::mutex mutex;
    UNet3d model{nullptr};
    uint64_t last_use = 0;
  };

  StatusOr<std::shared_ptr<CachedModel>> Model(const std::filesystem::path& path,
                                               const roles::UNetInferenceOptions& options,
                                               const torch::Device& device);

  std::mutex cache_mutex_;
  std::map<std::string, std::shared_ptr<CachedModel>> cache_;
  uint64_t uses_ = 0;
};

StatusOr<std::shared_ptr<TorchUNetEngine::CachedModel>> TorchUNetEngine::Model(
    const std::filesystem::path& path, const roles::UNetInferenceOptions& options,
    const torch::Device& device) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) return NotFoundError("unet weights " + path.string() + ": " + error.message());
  const auto mtime = std::filesystem::last_write_time(path, error).time_since_epoch().count();
  const roles::UNetArchitecture& a = options.architecture;
  std::ostringstream key;
  key << std::filesystem::absolute(path).string() << '|' << size << '|' << mtime << '|'
      << a.in_channels << '|' << a.num_classes << '|' << a.dropout << '|' << device.str();
  for (int64_t c : a.feature_channels) key << ',' << c;

  std::shared_ptr<CachedModel> entry;
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    std::shared_ptr<CachedModel>& slot = cache_[key.str()];
    if (!slot) slot = std::make_shared<CachedModel>();
    slot->last_use = ++uses_;
    entry = slot;
    while (cache_.size() > kCachedModels) {  // drop the least recently used model
      auto oldest = cache_.begin();
      for (auto it = cache_.begin(); it != cache_.end(); ++it) {
        if (it->second->last_use < oldest->second->last_use) oldest = it;
      }
      cache_.erase(oldest);
    }
  }
  // Loaded under the entry's own lock, so other models stay usable meanwhile.
  std::lock_guard<std::mutex> lock(entry->mutex);
  if (entry->model) return entry;
  StatusOr<UNet3d> loaded =
      LoadUNet3d(path, UNet3dOptions{a.in_channels, a.num_classes, a.feature_channels, a.dropout});
  if (!loaded.ok()) {
    std::lock_guard<std::mutex> cache_lock(cache_mutex_);
    auto it = cache_.find(key.str());
    if (it != cache_.end() && it->second == entry) cache_.erase(it);
    return loaded.status();
  }
  (*loaded)->to(device);
  (*loaded)->eval();
  entry->model = *loaded;
  return entry;
}

}  // namespace

std::unique_ptr<roles::UNetEngine> MakeTorchUNetEngine() {
  return std::make_unique<TorchUNetEngine>();
}

}  // namespace clisc::models
