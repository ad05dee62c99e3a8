#include "workers/models/cam/torch_classifier_engine.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <utility>

#include "common/atomic_file.h"
#include "common/logging.h"
#include "workers/models/cam/classifier_input.h"
#include "workers/models/cam/classifier_training_checkpoint.h"
#include "workers/models/cam/layer_cam.h"
#include "workers/models/cam/slice_augmentation.h"
#include "workers/models/cam/slice_batch_loader.h"
#include "workers/models/cam/slice_classifier.h"
#include "workers/models/checkpoint_writer.h"
#include "workers/models/compute_device.h"
#include "workers/models/loaded_model_cache.h"

namespace clisc::models {
namespace {

using roles::ClassifierTrainingOptions;
using roles::EpochReport;
using roles::LabelledSlice;
using roles::TrainingReport;

constexpr size_t kCachedModels = 4;

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

Status CheckTrainingOptions(const ClassifierTrainingOptions& o) {
  if (o.image_size < 1 || o.batch_size < 1 || o.epochs < 1 || o.lr_step_size < 1 ||
      o.checkpoint_every < 1 || o.loader_threads < 0 || o.head_units < 1 || !(o.lr > 0) ||
      !(o.head_dropout >= 0 && o.head_dropout < 1)) {
    return InvalidArgumentError(
        "classifier training: image_size, batch_size, epochs, lr_step_size, checkpoint_every and "
        "head_units must be >= 1, loader_threads >= 0, lr > 0 and head_dropout in [0, 1)");
  }
  return CheckAugmentation(o.augment);
}

Status CheckSlices(const std::vector<LabelledSlice>& slices, int image_size, const char* set) {
  const size_t pixels = static_cast<size_t>(image_size) * static_cast<size_t>(image_size);
  for (size_t i = 0; i < slices.size(); ++i) {
    if (slices[i].pixels.size() != pixels) {
      return InvalidArgumentError(std::string(set) + " slice " + std::to_string(i) + " has " +
                                  std::to_string(slices[i].pixels.size()) + " pixels, expected " +
                                  std::to_string(image_size) + "^2");
    }
    if (slices[i].label != 0 && slices[i].label != 1) {
      return InvalidArgumentError(std::string(set) + " slice " + std::to_string(i) + " has label " +
                                  std::to_string(slices[i].label) + " (expected 0 or 1)");
    }
  }
  return OkStatus();
}

// What a checkpoint must agree on to be resumed (not the epoch count: a run may be extended).
std::string Fingerprint(const ClassifierTrainingOptions& o, size_t train, size_t valid) {
  std::ostringstream out;
  out << o.arch << " size " << o.image_size << " head " << o.head_units << "/" << o.head_dropout
      << " lr " << o.lr << " step " << o.lr_step_size << "x" << o.lr_gamma << " batch "
      << o.batch_size << " seed " << o.seed << " pretrained "
      << (o.pretrained ? o.pretrained->filename().string() : "none") << " train " << train
      << " valid " << valid;
  // Unaugmented runs keep the fingerprint they always had, so their checkpoints still resume.
  if (o.augment.enabled) out << " augment " << DescribeAugmentation(o.augment);
  if (o.global_pool != "avg") out << " pool " << o.global_pool;
  return out.str();
}

// StepLR's rate for a 1-based epoch, multiplied step by step as PyTorch's chained form does.
double LearningRateOfEpoch(const ClassifierTrainingOptions& o, int epoch) {
  double lr = o.lr;
  for (int k = 0; k < (epoch - 1) / o.lr_step_size; ++k) lr *= o.lr_gamma;
  return lr;
}

// The epoch's shuffle depends on (seed, epoch) alone: resumes and loader threads do not move it.
std::vector<int64_t> ShuffledOrder(size_t count, uint64_t seed, int epoch) {
  std::vector<int64_t> order(count);
  for (size_t i = 0; i < count; ++i) order[i] = static_cast<int64_t>(i);
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  for (size_t i = count; i > 1; --i) {
    std::swap(order[i - 1], order[static_cast<size_t>(rng() % i)]);
  }
  return order;
}

std::string FormatNumber(const char* format, double value) {
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

double ValidationAccuracy(SliceClassifierImpl& model, const std::vector<LabelledSlice>& valid,
                          const ClassifierTrainingOptions& options, const torch::Device& device) {
  std::vector<int64_t> order(valid.size());
  for (size_t i = 0; i < valid.size(); ++i) order[i] = static_cast<int64_t>(i);
  torch::NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0;
  for (size_t first = 0; first < valid.size(); first += options.batch_size) {
    const size_t count = std::min<size_t>(options.batch_size, valid.size() - first);
    const SliceBatch batch = AssembleSliceBatch(valid, order, first, count, options.image_size);
    const torch::Tensor predicted = model.forward(batch.images.to(device)).argmax(1);
    correct += predicted.eq(batch.labels.to(device)).sum().item<int64_t>();
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(valid.size());
}

class TorchClassifierEngine final : public roles::ClassifierEngine {
 public:
  std::string Describe() const override { return "LibTorch slice classifier (train + LayerCAM)"; }

  StatusOr<TrainingReport> Train(const std::vector<LabelledSlice>& train,
                                 const std::vector<LabelledSlice>& valid,
                                 const ClassifierTrainingOptions& options,
                                 const std::filesystem::path& model_out,
                                 const roles::TrainingProgress& progress) override {
    try {
      return TrainOrThrow(train, valid, options, model_out, progress);
    } catch (const c10::Error& e) {
      return InternalError("classifier training: " + FirstLine(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return InternalError(std::string("classifier training: ") + e.what());
    }
  }

  StatusOr<std::vector<roles::SliceCam>> ComputeCams(
      const std::filesystem::path& model, const std::vector<backends::FloatSlice>& slices,
      const roles::CamOptions& options) override {
    try {
      return ComputeCamsOrThrow(model, slices, options);
    } catch (const c10::Error& e) {
      return InternalError("classifier CAMs: " + FirstLine(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return InternalError(std::string("classifier CAMs: ") + e.what());
    }
  }

 private:
  // A loaded classifier's entry mutex serializes the passes (LayerCam switches modes).
  using ClassifierCache = LoadedModelCache<SliceClassifier>;

  StatusOr<TrainingReport> TrainOrThrow(const std::vector<LabelledSlice>& train,
                                        const std::vector<LabelledSlice>& valid,
                                        const ClassifierTrainingOptions& options,
                                        const std::filesystem::path& model_out,
                                        const roles::TrainingProgress& progress);
  StatusOr<std::vector<roles::SliceCam>> ComputeCamsOrThrow(
      const std::filesystem::path& model, const std::vector<backends::FloatSlice>& slices,
      const roles::CamOptions& options);
  StatusOr<std::shared_ptr<ClassifierCache::Entry>> Classifier(const std::filesystem::path& path,
                                                               const roles::CamOptions& options,
                                                               const torch::Device& device);

  ClassifierCache cache_{kCachedModels};
};

StatusOr<TrainingReport> TorchClassifierEngine::TrainOrThrow(
    const std::vector<LabelledSlice>& train, const std::vector<LabelledSlice>& valid,
    const ClassifierTrainingOptions& options, const std::filesystem::path& model_out,
    const roles::TrainingProgress& progress) {
  if (train.empty()) return InvalidArgumentError("classifier training: no training slices");
  RETURN_IF_ERROR(CheckTrainingOptions(options));
  RETURN_IF_ERROR(CheckSlices(train, options.image_size, "training"));
  RETURN_IF_ERROR(CheckSlices(valid, options.image_size, "validation"));
  ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(options.device));
  ASSIGN_OR_RETURN(SliceClassifierOptions architecture, SliceClassifierOptionsFor(options.arch));
  architecture.head_units = options.head_units;
  architecture.head_dropout = options.head_dropout;
  ASSIGN_OR_RETURN(architecture.global_pool, ParseGlobalPool(options.global_pool));

  torch::manual_seed(options.seed);
  ASSIGN_OR_RETURN(SliceClassifier model, MakeSliceClassifier(architecture));
  if (options.pretrained) RETURN_IF_ERROR(LoadImageNetBackbone(*model, *options.pretrained));
  model->to(device);
  model->train();
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(options.lr));

  const std::string fingerprint = Fingerprint(options, train.size(), valid.size());
  TrainingReport report;
  report.train_slices = static_cast<int64_t>(train.size());
  report.valid_slices = static_cast<int64_t>(valid.size());
  TrainingProgressState state;
  const bool checkpointing = !options.checkpoint_path.empty();
  if (checkpointing && std::filesystem::exists(options.checkpoint_path)) {
    RETURN_IF_ERROR(LoadTrainingCheckpoint(options.checkpoint_path, *model, optimizer, state,
                                           fingerprint, device));
    report.resumed_after_epoch = state.epoch;
    LogInfo("classifier_resume",
            {{"checkpoint", options.checkpoint_path.string()}, {"after_epoch", state.epoch}});
  }

  const size_t steps_per_epoch = (train.size() + options.batch_size - 1) / options.batch_size;
  const double total_steps = static_cast<double>(steps_per_epoch) * options.epochs;
  SliceBatchLoaderOptions loader_options;
  loader_options.image_size = options.image_size;
  loader_options.batch_size = options.batch_size;
  loader_options.threads = options.loader_threads;
  loader_options.pin_memory = device.is_cuda();
  const std::string epochs_text = std::to_string(options.epochs);
  const auto cancelled = [&](int epoch) {
    return CancelledError("classifier training cancelled in epoch " + std::to_string(epoch) +
                          "; the checkpoint after epoch " + std::to_string(state.epoch) +
                          " remains");
  };

  for (int epoch = state.epoch + 1; epoch <= options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const double lr = LearningRateOfEpoch(options, epoch);
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    }
    if (options.augment.enabled) {
      loader_options.augmentation = SliceBatchAugmentation{options.augment, options.seed, epoch};
    }
    SliceBatchLoader loader(train, ShuffledOrder(train.size(), options.seed, epoch),
                            loader_options);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    size_t step = 0;
    while (std::optional<SliceBatch> batch = loader.Next()) {
      const torch::Tensor images = batch->images.to(device, /*non_blocking=*/true);
      const torch::Tensor labels = batch->labels.to(device, /*non_blocking=*/true);
      optimizer.zero_grad();
      const torch::Tensor logits = model->forward(images);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
      loss.backward();
      optimizer.step();
      // The reference's running sums: mean loss times batch size, and argmax hits.
      loss_sum += loss.item<double>() * static_cast<double>(labels.size(0));
      correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
      seen += labels.size(0);
      ++step;
      const double done = static_cast<double>((epoch - 1) * steps_per_epoch + step) / total_steps;
      if (progress &&
          !progress(done, "epoch " + std::to_string(epoch) + "/" + epochs_text + " step " +
                              std::to_string(step) + "/" + std::to_string(steps_per_epoch) +
                              " loss " + FormatNumber("%.4f", loss_sum / seen) + " lr " +
                              FormatNumber("%g", lr))) {
        return cancelled(epoch);
      }
    }
    EpochReport epoch_report;
    epoch_report.epoch = epoch;
    epoch_report.loss = loss_sum / static_cast<double>(seen);
    epoch_report.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    epoch_report.lr = lr;
    if (!valid.empty()) {
      const double accuracy = ValidationAccuracy(*model, valid, options, device);
      epoch_report.valid_accuracy = accuracy;
      if (accuracy > state.best_accuracy) {  // strict: the first best epoch wins
        state.best_accuracy = accuracy;
        state.best_epoch = epoch;
        state.best_weights = CpuCopy(StateDictOf(*model));
      }
    }
    epoch_report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.epoch = epoch;
    state.reports.push_back(epoch_report);
    if (checkpointing && (epoch % options.checkpoint_every == 0 || epoch == options.epochs)) {
      RETURN_IF_ERROR(SaveTrainingCheckpoint(options.checkpoint_path, *model, optimizer, state,
                                             fingerprint, device));
    }
    const std::string valid_text =
        epoch_report.valid_accuracy ? FormatNumber("%.4f", *epoch_report.valid_accuracy) : "-";
    LogInfo("classifier_epoch", {{"epoch", epoch},
                                 {"epochs", options.epochs},
                                 {"loss", epoch_report.loss},
                                 {"train_accuracy", epoch_report.train_accuracy},
                                 {"valid_accuracy", valid_text},
                                 {"lr", lr},
                                 {"seconds", epoch_report.seconds},
                                 {"loader_wait_s", loader.wait_seconds()}});
    const double done = static_cast<double>(epoch) / options.epochs;
    if (progress &&
        !progress(done, "epoch " + std::to_string(epoch) + "/" + epochs_text + " done loss " +
                            FormatNumber("%.4f", epoch_report.loss) + " acc " +
                            FormatNumber("%.4f", epoch_report.train_accuracy) + " valid " +
                            valid_text + " lr " + FormatNumber("%g", lr) + " loader wait " +
                            FormatNumber("%.2f", loader.wait_seconds()) + " s of " +
                            FormatNumber("%.2f", epoch_report.seconds) + " s")) {
      return cancelled(epoch);
    }
  }

  report.epochs = state.reports;
  if (!valid.empty()) {
    RETURN_IF_ERROR(LoadStateDict(*model, state.best_weights).WithContext("best epoch weights"));
    report.selected_epoch = state.best_epoch;
  } else {
    report.selected_epoch = state.epoch;
  }
  RETURN_IF_ERROR(WriteCheckpoint(model_out, StateDictOf(*model)));
  return report;
}

StatusOr<std::shared_ptr<TorchClassifierEngine::ClassifierCache::Entry>>
TorchClassifierEngine::Classifier(const std::filesystem::path& path,
                                  const roles::CamOptions& options, const torch::Device& device) {
  ASSIGN_OR_RETURN(std::string file_key, ClassifierCache::FileKey(path, "classifier weights"));
  std::ostringstream key;
  key << file_key << options.arch << '|' << options.head_units << '|' << options.global_pool << '|'
      << device.str();
  return cache_.Get(key.str(), [&]() -> StatusOr<SliceClassifier> {
    ASSIGN_OR_RETURN(SliceClassifierOptions architecture, SliceClassifierOptionsFor(options.arch));
    architecture.head_units = options.head_units;
    architecture.head_dropout = options.head_dropout;
    ASSIGN_OR_RETURN(architecture.global_pool, ParseGlobalPool(options.global_pool));
    ASSIGN_OR_RETURN(SliceClassifier model, MakeSliceClassifier(architecture));
    RETURN_IF_ERROR(LoadClassifierWeights(*model, path));
    model->to(device);
    model->eval();
    return model;
  });
}

StatusOr<std::vector<roles::SliceCam>> TorchClassifierEngine::ComputeCamsOrThrow(
    const std::filesystem::path& model_path, const std::vector<backends::FloatSlice>& slices,
    const roles::CamOptions& options) {
  if (options.batch_size < 1 || options.image_size < 1) {
    return InvalidArgumentError("classifier CAMs: batch_size and image_size must be >= 1");
  }
  ASSIGN_OR_RETURN(const ComputeDevice compute,
                   ParseComputeDevice(options.device, options.precision));
  std::vector<roles::SliceCam> result;
  if (slices.empty()) return result;
  ASSIGN_OR_RETURN(std::shared_ptr<ClassifierCache::Entry> entry,
                   Classifier(model_path, options, compute.device));
  LayerCamOptions cam_options;
  cam_options.layer = options.layer;
  cam_options.target_class = 1;
  result.reserve(slices.size());
  for (size_t first = 0; first < slices.size(); first += options.batch_size) {
    const size_t count = std::min<size_t>(options.batch_size, slices.size() - first);
    const std::vector<backends::FloatSlice> batch(slices.begin() + first,
                                                  slices.begin() + first + count);
    auto inputs = ClassifierInputs(batch, options.image_size);
    if (!inputs.ok()) return inputs.status().WithContext("batch at slice " + std::to_string(first));
    StatusOr<LayerCamResult> cams = InternalError("unset");
    {
      std::lock_guard<std::mutex> lock(entry->mutex);
      InferenceAutocast autocast(compute);
      cams = LayerCam(*entry->model, inputs->to(compute.device), cam_options);
    }
    if (!cams.ok()) return cams.status();
    const torch::Tensor probabilities = cams->logits.to(torch::kFloat).softmax(1).to(torch::kCPU);
    const torch::Tensor predicted = probabilities.argmax(1);
    for (size_t i = 0; i < count; ++i) {
      const backends::FloatSlice& slice = batch[i];
      const auto index = static_cast<int64_t>(i);
      const torch::Tensor cam = ResizeCams(cams->cams[index], slice.height, slice.width)
                                    .clamp(0, 1)
                                    .to(torch::kCPU, torch::kFloat)
                                    .contiguous();
      roles::SliceCam out;
      out.tumor_probability = probabilities[index][1].item<float>();
      out.predicted_tumor = predicted[index].item<int64_t>() == 1;
      out.cam.assign(cam.data_ptr<float>(), cam.data_ptr<float>() + cam.numel());
      result.push_back(std::move(out));
    }
  }
  return result;
}

}  // namespace

std::unique_ptr<roles::ClassifierEngine> MakeTorchClassifierEngine() {
  return std::make_unique<TorchClassifierEngine>();
}

}  // namespace clisc::models
