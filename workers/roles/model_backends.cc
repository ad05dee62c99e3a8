#include "workers/roles/model_backends.h"

#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "workers/models/cam/torch_classifier_engine.h"
#include "workers/models/clip/clip_config.h"
#include "workers/models/clip/clip_model.h"
#include "workers/models/clip/clip_preprocess.h"
#include "workers/models/clip/clip_slice_scorer.h"
#include "workers/models/compute_device.h"
#include "workers/models/sam/sam_model.h"
#include "workers/models/sam/sam_segmenter.h"
#include "workers/models/unet/torch_unet_engine.h"

namespace clisc::roles {
namespace {

namespace fs = std::filesystem;

std::atomic<int64_t> g_model_loads{0};
std::atomic<int64_t> g_model_hits{0};

// Loaded networks by key. A key's first caller loads while later callers of the same key wait on
// that entry (a worker whose slots all start a sam task at once still loads SAM once); callers of
// other keys are not held up. A failed load is not kept, so a retry after fixing the file works.
template <typename Model>
class ModelCache {
 public:
  StatusOr<Model> GetOrLoad(const std::string& key, const std::function<StatusOr<Model>()>& load) {
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::shared_ptr<Entry>& slot = entries_[key];
      if (!slot) slot = std::make_shared<Entry>();
      entry = slot;
    }
    std::lock_guard<std::mutex> lock(entry->mutex);
    if (entry->model) {
      ++g_model_hits;
      return *entry->model;
    }
    StatusOr<Model> loaded = load();
    if (!loaded.ok()) return loaded.status();
    ++g_model_loads;
    entry->model = *loaded;
    return loaded;
  }

 private:
  struct Entry {
    std::mutex mutex;
    std::optional<Model> model;
  };
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

// Never destroyed: models may hold CUDA memory, which must not be freed after the CUDA runtime
// has shut down at process exit.
template <typename Model>
ModelCache<Model>& CacheOf() {
  static auto* cache = new ModelCache<Model>();
  return *cache;
}

// Path, size and modification time: a replaced checkpoint is loaded again.
std::string FileIdentity(const fs::path& path) {
  std::error_code error;
  const fs::path canonical = fs::weakly_canonical(path, error);
  const auto size = fs::file_size(path, error);
  const auto modified = fs::last_write_time(path, error).time_since_epoch().count();
  return (canonical.empty() ? path : canonical).string() + "#" + std::to_string(size) + "@" +
         std::to_string(modified);
}

// The file a required path key names. NOT_FOUND naming the key when it is unset or missing.
StatusOr<fs::path> RequiredFile(const Config& config, const std::string& key,
                                const std::string& backend_key) {
  const std::optional<std::string> value = config.GetOptionalString(key);
  if (!value || value->empty()) {
    return NotFoundError(key + ": not set; " + backend_key + ": model needs it");
  }
  if (!fs::is_regular_file(*value)) {
    return NotFoundError(key + ": " + *value + " not found (" + backend_key + ": model needs it)");
  }
  return fs::path(*value);
}

// `X.pt` -> `X.config.json`: the hyperparameters of a checkpoint the model name cannot describe.
std::optional<fs::path> SidecarConfig(const fs::path& checkpoint) {
  fs::path sidecar = checkpoint;
  sidecar.replace_extension(".config.json");
  if (fs::is_regular_file(sidecar)) return sidecar;
  return std::nullopt;
}

StatusOr<models::ComputeDevice> ComputeFor(const Config& config, const std::string& device) {
  // A worker given several devices (`--device cuda:0,cuda:1`) spreads only U-Net training over
  // them; the other networks run on the first.
  std::string where = device.empty() ? config.GetString("device") : device;
  where = where.substr(0, where.find(','));
  StatusOr<models::ComputeDevice> compute =
      models::ParseComputeDevice(where, config.GetString("precision"));
  if (!compute.ok()) return compute.status().WithContext("device " + where);
  return compute;
}

StatusOr<std::unique_ptr<backends::SliceScorer>> MakeClipScorer(const Config& config,
                                                                const std::string& device) {
  ASSIGN_OR_RETURN(const models::ComputeDevice compute, ComputeFor(config, device));
  ASSIGN_OR_RETURN(const fs::path checkpoint,
                   RequiredFile(config, "clip.checkpoint", "clip.backend"));
  ASSIGN_OR_RETURN(const fs::path vocab, RequiredFile(config, "clip.vocab", "clip.backend"));
  StatusOr<models::ClipInputMode> input_mode =
      models::ParseClipInputMode(config.GetString("clip.input"));
  if (!input_mode.ok()) return input_mode.status().WithContext("clip.input");

  models::ClipScorerOptions options;
  options.checkpoint = checkpoint;
  options.vocab = vocab;
  options.prompts = config.GetStringList("clip.prompts");
  options.input_mode = *input_mode;
  options.batch_size = static_cast<int>(config.GetInt("clip.batch_size"));
  options.compute = compute;

  const std::string model_name = config.GetString("clip.model");
  std::string model_key = model_name;
  if (const std::optional<fs::path> sidecar = SidecarConfig(checkpoint)) {
    StatusOr<models::ClipConfig> custom = models::ClipConfig::FromJsonFile(*sidecar);
    if (!custom.ok()) return custom.status().WithContext("clip.checkpoint");
    options.config = *custom;
    model_key = "config " + FileIdentity(*sidecar);
  }

  const std::string key = FileIdentity(checkpoint) + "|" + model_key + "|" + compute.ToString();
  const auto load = [&]() -> StatusOr<models::Clip> {
    StatusOr<models::Clip> model = models::LoadClip(checkpoint, compute, options.config);
    if (!model.ok()) return model.status().WithContext("clip.checkpoint " + checkpoint.string());
    const std::string held = (*model)->config().Name();
    if (!options.config && held != model_name) {
      return InvalidArgumentError("clip.model: " + model_name + ", but clip.checkpoint " +
                                  checkpoint.string() + " holds " + held);
    }
    return model;
  };
  ASSIGN_OR_RETURN(models::Clip model, CacheOf<models::Clip>().GetOrLoad(key, load));
  ASSIGN_OR_RETURN(std::unique_ptr<models::ClipSliceScorer> scorer,
                   models::ClipSliceScorer::Create(options, std::move(model)));
  return std::unique_ptr<backends::SliceScorer>(std::move(scorer));
}

StatusOr<std::unique_ptr<backends::PromptSegmenter>> MakeSamSegmenter(const Config& config,
                                                                      const std::string& device) {
  ASSIGN_OR_RETURN(const models::ComputeDevice compute, ComputeFor(config, device));
  ASSIGN_OR_RETURN(const fs::path checkpoint,
                   RequiredFile(config, "sam.checkpoint", "sam.backend"));
  const std::string model_type = config.GetString("sam.model_type");
  std::optional<models::SamConfig> custom;
  std::string model_key = model_type;
  if (const std::optional<fs::path> sidecar = SidecarConfig(checkpoint)) {
    StatusOr<models::SamConfig> parsed =
        models::SamConfig::FromJsonFile(*sidecar, sidecar->stem().stem().string());
    if (!parsed.ok()) return parsed.status().WithContext("sam.checkpoint");
    custom = std::move(parsed).value();
    model_key = "config " + FileIdentity(*sidecar);
  }

  const std::string key = FileIdentity(checkpoint) + "|" + model_key + "|" + compute.ToString();
  const auto load = [&]() -> StatusOr<models::Sam> {
    StatusOr<models::Sam> model = custom ? models::LoadSam(checkpoint, *custom, compute)
                                         : models::LoadSam(checkpoint, model_type, compute);
    if (!model.ok()) {
      return model.status().WithContext("sam.checkpoint " + checkpoint.string() +
                                        (custom ? "" : " (sam.model_type " + model_type + ")"));
    }
    return model;
  };
  ASSIGN_OR_RETURN(models::Sam model, CacheOf<models::Sam>().GetOrLoad(key, load));
  try {
    return std::unique_ptr<backends::PromptSegmenter>(
        std::make_unique<models::SamSegmenter>(std::move(model), checkpoint, compute));
  } catch (const c10::Error& e) {
    return InternalError(std::string("SAM segmenter: ") + e.what_without_backtrace());
  }
}

// The process's one classifier engine behind a handle per caller: the engine caches the
// classifiers it loaded, which only helps when every cam task reaches the same engine.
class SharedClassifierEngine final : public ClassifierEngine {
 public:
  explicit SharedClassifierEngine(ClassifierEngine& engine) : engine_(engine) {}

  std::string Describe() const override { return engine_.Describe(); }

  StatusOr<TrainingReport> Train(const std::vector<LabelledSlice>& train,
                                 const std::vector<LabelledSlice>& valid,
                                 const ClassifierTrainingOptions& options,
                                 const std::filesystem::path& model_out,
                                 const TrainingProgress& progress) override {
    return engine_.Train(train, valid, options, model_out, progress);
  }

  StatusOr<std::vector<SliceCam>> ComputeCams(const std::filesystem::path& model,
                                              const std::vector<backends::FloatSlice>& slices,
                                              const CamOptions& options) override {
    return engine_.ComputeCams(model, slices, options);
  }

 private:
  ClassifierEngine& engine_;
};

StatusOr<std::unique_ptr<ClassifierEngine>> MakeClassifier() {
  // Never destroyed, for the same reason as the model caches.
  static ClassifierEngine* const engine = models::MakeTorchClassifierEngine().release();
  if (engine == nullptr) return InternalError("the LibTorch classifier engine could not be made");
  return std::unique_ptr<ClassifierEngine>(std::make_unique<SharedClassifierEngine>(*engine));
}

// One UNetEngine per process, shared like the classifier: its model cache serves every task.
class SharedUNetEngine : public UNetEngine {
 public:
  explicit SharedUNetEngine(UNetEngine& engine) : engine_(engine) {}
  std::string Describe() const override { return engine_.Describe(); }
  StatusOr<UNetTrainingReport> Train(const std::vector<UNetCaseFiles>& train,
                                     const UNetTrainingOptions& options,
                                     const std::filesystem::path& model_out,
                                     const TrainingProgress& progress) override {
    return engine_.Train(train, options, model_out, progress);
  }
  StatusOr<LabelVolume> Predict(const std::filesystem::path& model,
                                const std::vector<FloatVolume>& channels,
                                const UNetInferenceOptions& options) override {
    return engine_.Predict(model, channels, options);
  }

 private:
  UNetEngine& engine_;
};

StatusOr<std::unique_ptr<UNetEngine>> MakeUNet() {
  static UNetEngine* const engine = models::MakeTorchUNetEngine().release();
  if (engine == nullptr) return InternalError("the LibTorch U-Net engine could not be made");
  return std::unique_ptr<UNetEngine>(std::make_unique<SharedUNetEngine>(*engine));
}

}  // namespace

MethodBackends ModelMethodBackends() {
  MethodBackends backends;
  backends.clip_model = MakeClipScorer;
  backends.sam_model = MakeSamSegmenter;
  backends.classifier = MakeClassifier;
  backends.unet = MakeUNet;
  return backends;
}

ModelCacheStats ModelCacheStatistics() { return {g_model_loads.load(), g_model_hits.load()}; }

}  // namespace clisc::roles
