#include "workers/models/unet/torch_unet_engine.h"

#include <torch/torch.h>

#include <map>
#include <mutex>
#include <sstream>
#include <string>

#include "workers/models/compute_device.h"
#include "workers/models/loaded_model_cache.h"
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
      ASSIGN_OR_RETURN(std::shared_ptr<ModelCache::Entry> entry, Model(model, options, device));
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
  using ModelCache = LoadedModelCache<UNet3d>;

  StatusOr<std::shared_ptr<ModelCache::Entry>> Model(const std::filesystem::path& path,
                                                     const roles::UNetInferenceOptions& options,
                                                     const torch::Device& device);

  ModelCache cache_{kCachedModels};
};

StatusOr<std::shared_ptr<TorchUNetEngine::ModelCache::Entry>> TorchUNetEngine::Model(
    const std::filesystem::path& path, const roles::UNetInferenceOptions& options,
    const torch::Device& device) {
  ASSIGN_OR_RETURN(std::string file_key, ModelCache::FileKey(path, "unet weights"));
  const roles::UNetArchitecture& a = options.architecture;
  std::ostringstream key;
  key << file_key << a.in_channels << '|' << a.num_classes << '|' << a.dropout << '|'
      << device.str();
  for (int64_t c : a.feature_channels) key << ',' << c;
  return cache_.Get(key.str(), [&]() -> StatusOr<UNet3d> {
    ASSIGN_OR_RETURN(UNet3d loaded, LoadUNet3d(path, UNet3dOptions{a.in_channels, a.num_classes,
                                                                   a.feature_channels, a.dropout}));
    loaded->to(device);
    loaded->eval();
    return loaded;
  });
}

}  // namespace

std::unique_ptr<roles::UNetEngine> MakeTorchUNetEngine() {
  return std::make_unique<TorchUNetEngine>();
}

}  // namespace clisc::models
