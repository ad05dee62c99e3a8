#include "workers/models/unet/unet_trainer.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "common/atomic_file.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "workers/models/checkpoint_writer.h"
#include "workers/models/compute_device.h"
#include "workers/models/unet/unet3d.h"
#include "workers/models/unet/unet_inference.h"
#include "workers/segmentation/patch_batch_loader.h"
#include "workers/segmentation/poly_schedule.h"
#include "workers/segmentation/training_volume_cache.h"

namespace clisc::models {
namespace {

namespace seg = clisc::segmentation;
using roles::UNetTrainingOptions;
using roles::UNetTrainingReport;

constexpr char kCheckpointFormat[] = "clisc.unet_training.v1";
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string Format(const char* format, double value) {
  char text[48];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

std::string DurationText(double seconds) {
  const auto total = static_cast<int64_t>(seconds + 0.5);
  const int64_t h = total / 3600, m = total % 3600 / 60, s = total % 60;
  if (h > 0) return std::to_string(h) + "h" + std::to_string(m) + "m";
  if (m > 0) return std::to_string(m) + "m" + std::to_string(s) + "s";
  return std::to_string(s) + "s";
}

uint64_t Fnv1a(uint64_t hash, const std::string& text) {
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ULL;
  return (hash ^ 0xFF) * 1099511628211ULL;  // separator, so ("ab","c") != ("a","bc")
}

UNet3dOptions NetworkOptions(const roles::UNetArchitecture& a) {
  return UNet3dOptions{a.in_channels, a.num_classes, a.feature_channels, a.dropout};
}

// What a checkpoint must agree on to be resumed. Not the devices: a retried task may land on
// another worker; not checkpoint_every or the loader settings, which do not change the result.
std::string Fingerprint(const std::vector<roles::UNetCaseFiles>& train,
                        const UNetTrainingOptions& o) {
  std::ostringstream out;
  out.precision(17);
  out << "unet in " << o.architecture.in_channels << " classes " << o.architecture.num_classes
      << " features";
  for (int64_t c : o.architecture.feature_channels) out << ' ' << c;
  uint64_t cases = 1469598103934665603ULL;
  for (const auto& c : train) cases = Fnv1a(Fnv1a(cases, c.id), c.label.string());
  out << " dropout " << o.architecture.dropout << " loss " << o.loss << " q " << o.gce_q << " lr "
      << o.lr << " momentum " << o.momentum << " wd " << o.weight_decay << " power " << o.poly_power
      << " batch " << o.batch_size << " patch " << o.patch_size[0] << 'x' << o.patch_size[1] << 'x'
      << o.patch_size[2] << " pad " << o.crop_pad << " iterations " << o.max_iterations << " seed "
      << o.seed << " precision " << o.precision << " train " << train.size() << '/' << std::hex
      << cases << std::dec << " valid " << o.valid.size() << " every " << o.validate_every;
  return out.str();
}

Status CheckOptions(const std::vector<roles::UNetCaseFiles>& train, const UNetTrainingOptions& o,
                    const UNet3dOptions& network) {
  if (train.empty()) return InvalidArgumentError("unet training: no training cases");
  RETURN_IF_ERROR(ValidateUNet3dOptions(network).WithContext("unet training"));
  if (o.batch_size < 1 || o.max_iterations < 1 || o.checkpoint_every < 1 || o.loader_threads < 0 ||
      o.cache_bytes < 0 || o.validate_every < 1 || !(o.lr > 0) || !(o.momentum >= 0) ||
      !(o.weight_decay >= 0) || !(o.poly_power >= 0) || !(o.gce_q > 0 && o.gce_q <= 1) ||
      o.devices.empty()) {
    return InvalidArgumentError(
        "unet training: batch_size, max_iterations, checkpoint_every and validate_every must be "
        ">= 1, loader_threads and cache_bytes >= 0, lr > 0, momentum, weight_decay and "
        "poly_power >= 0, gce_q in (0, 1], and at least one device");
  }
  const int64_t multiple = int64_t{1} << (network.feature_channels.size() - 1);
  for (int64_t size : o.patch_size) {
    if (size < multiple || size % multiple != 0) {
      return InvalidArgumentError("unet training: patch_size " + std::to_string(o.patch_size[0]) +
                                  "x" + std::to_string(o.patch_size[1]) + "x" +
                                  std::to_string(o.patch_size[2]) +
                                  " must be positive multiples of " + std::to_string(multiple));
    }
  }
  if (o.precision == "fp16") {
    return InvalidArgumentError(
        "unet training: fp16 needs loss scaling, which is not "
        "implemented; train in fp32 or bf16");
  }
  return OkStatus();
}

// ---- Resumable state. ----

struct TrainingState {
  int64_t iteration = 0;  // steps completed
  std::vector<roles::UNetLossPoint> losses;
  std::vector<roles::UNetValidation> validations;
  StateDict best_weights;  // CPU copies; validation mode only
  int64_t best_iteration = 0;
  double best_dice = -1;
};

StateDict CpuCopyOf(const torch::nn::Module& module) {
  StateDict copy;
  for (const auto& [name, tensor] : StateDictOf(module)) {
    copy.emplace_back(name, tensor.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true));
  }
  return copy;
}

// The generators dropout draws from: the CPU one and each training GPU's.
std::vector<std::pair<std::string, at::Generator>> Generators(
    const std::vector<torch::Device>& devices) {
  std::vector<std::pair<std::string, at::Generator>> out = {
      {"cpu_rng_state", at::detail::getDefaultCPUGenerator()}};
  for (const torch::Device& device : devices) {
    const std::string key = "cuda_rng_state_" + std::to_string(device.index());
    if (!device.is_cuda() ||
        std::any_of(out.begin(), out.end(), [&](auto& g) { return g.first == key; })) {
      continue;
    }
    out.emplace_back(key, at::detail::getCUDAHooks().getDefaultCUDAGenerator(device.index()));
  }
  return out;
}

Status SaveCheckpoint(const std::filesystem::path& path, UNet3dImpl& model,
                      torch::optim::SGD& optimizer, const TrainingState& state,
                      const std::string& fingerprint, const std::vector<torch::Device>& devices) {
  torch::serialize::OutputArchive archive;
  archive.write("checkpoint_format", c10::IValue(std::string(kCheckpointFormat)));
  archive.write("fingerprint", c10::IValue(fingerprint));
  archive.write("iteration", c10::IValue(state.iteration));
  WriteArchiveStateDict(archive, "model", StateDictOf(model));
  torch::serialize::OutputArchive optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  for (auto& [key, generator] : Generators(devices)) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write(key, generator.get_state());
  }
  // Loss history as rows (iteration, loss, lr); validations as rows (iteration, mean Dice).
  torch::Tensor losses =
      torch::empty({static_cast<int64_t>(state.losses.size()), 3}, torch::kDouble);
  auto loss_rows = losses.accessor<double, 2>();
  for (size_t i = 0; i < state.losses.size(); ++i) {
    const auto& point = state.losses[i];
    loss_rows[i][0] = static_cast<double>(point.iteration);
    loss_rows[i][1] = point.loss;
    loss_rows[i][2] = point.lr;
  }
  archive.write("losses", losses);
  torch::Tensor validations =
      torch::empty({static_cast<int64_t>(state.validations.size()), 2}, torch::kDouble);
  auto validation_rows = validations.accessor<double, 2>();
  for (size_t i = 0; i < state.validations.size(); ++i) {
    validation_rows[i][0] = static_cast<double>(state.validations[i].iteration);
    validation_rows[i][1] = state.validations[i].mean_dice;
  }
  archive.write("validations", validations);
  archive.write("best_iteration", c10::IValue(state.best_iteration));
  archive.write("best_dice", c10::IValue(state.best_dice));
  WriteArchiveStateDict(archive, "best", state.best_weights);
  std::ostringstream bytes;
  archive.save_to(bytes);
  return WriteFileAtomically(path, bytes.str());
}

// Restores everything or reports why not; on failure the model and optimizer may be half
// restored, so the caller rebuilds them. Throws c10::Error for an unreadable archive.
Status LoadCheckpoint(const std::filesystem::path& path, UNet3dImpl& model,
                      torch::optim::SGD& optimizer, TrainingState& state,
                      const std::string& fingerprint, const std::vector<torch::Device>& devices) {
  torch::serialize::InputArchive archive;
  archive.load_from(path.string(), devices.front());
  c10::IValue format, saved, value;
  if (!archive.try_read("checkpoint_format", format) || !format.isString() ||
      format.toStringRef() != kCheckpointFormat) {
    return InvalidArgumentError("not a unet training checkpoint");
  }
  archive.read("fingerprint", saved);
  if (saved.toStringRef() != fingerprint) {
    return FailedPreconditionError("made by another training setup (" + saved.toStringRef() +
                                   "; now " + fingerprint + ")");
  }
  TrainingState loaded;
  archive.read("iteration", value);
  loaded.iteration = value.toInt();
  torch::Tensor losses, validations;
  archive.read("losses", losses);
  archive.read("validations", validations);
  losses = losses.to(torch::kCPU).contiguous();
  validations = validations.to(torch::kCPU).contiguous();
  for (int64_t i = 0; i < losses.size(0); ++i) {
    const double* row = losses.data_ptr<double>() + 3 * i;
    loaded.losses.push_back({static_cast<int64_t>(row[0]), row[1], row[2]});
  }
  for (int64_t i = 0; i < validations.size(0); ++i) {
    const double* row = validations.data_ptr<double>() + 2 * i;
    loaded.validations.push_back({static_cast<int64_t>(row[0]), row[1]});
  }
  archive.read("best_iteration", value);
  loaded.best_iteration = value.toInt();
  archive.read("best_dice", value);
  loaded.best_dice = value.toDouble();
  loaded.best_weights = ReadArchiveStateDict(archive, "best");
  std::vector<std::pair<at::Generator, torch::Tensor>> generator_states;
  for (auto& [key, generator] : Generators(devices)) {
    torch::Tensor rng;
    if (archive.try_read(key, rng)) generator_states.emplace_back(generator, rng.to(torch::kCPU));
  }
  RETURN_IF_ERROR(LoadStateDict(model, ReadArchiveStateDict(archive, "model")));
  torch::serialize::InputArchive optimizer_archive;
  archive.read("optimizer", optimizer_archive);
  optimizer.load(optimizer_archive);
  for (auto& [generator, rng] : generator_states) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng);
  }
  state = std::move(loaded);
  return OkStatus();
}

// ---- Data parallelism. ----

struct Replica {
  ComputeDevice compute;
  UNet3d model{nullptr};
  int64_t first = 0, count = 0;  // this step's share of the batch
};

void CopyWeights(UNet3dImpl& from, UNet3dImpl& to) {
  torch::NoGradGuard no_grad;
  const auto source = from.parameters();
  auto target = to.parameters();
  for (size_t i = 0; i < source.size(); ++i) target[i].copy_(source[i]);
}

// Forward and backward of one replica's share; returns the share's mean loss (a CPU double).
double ReplicaStep(Replica& replica, const torch::Tensor& images, const torch::Tensor& labels,
                   SegmentationLoss loss, double gce_q) {
  const torch::Tensor x = images.narrow(0, replica.first, replica.count)
                              .to(replica.compute.device, /*non_blocking=*/true);
  const torch::Tensor y = labels.narrow(0, replica.first, replica.count)
                              .to(replica.compute.device, /*non_blocking=*/true)
                              .to(torch::kLong);
  torch::Tensor logits;
  {
    InferenceAutocast autocast(replica.compute);  // bf16 forward; the loss stays float32
    logits = replica.model->forward(x);
  }
  const torch::Tensor value = ComputeSegmentationLoss(loss, logits.to(torch::kFloat), y, gce_q);
  value.backward();
  return value.item<double>();
}

// One data-parallel forward/backward: every replica's share in its own thread, then the
// gradients averaged onto the master (replica 0), weighted by share. Returns the batch loss.
double ParallelStep(std::vector<Replica>& replicas, const torch::Tensor& images,
                    const torch::Tensor& labels, SegmentationLoss loss, double gce_q) {
  const int64_t batch = images.size(0);
  std::vector<double> losses(replicas.size(), 0.0);
  std::vector<std::exception_ptr> errors(replicas.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < replicas.size(); ++r) {
    if (replicas[r].count == 0) continue;
    threads.emplace_back([&, r] {
      try {
        losses[r] = ReplicaStep(replicas[r], images, labels, loss, gce_q);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  torch::NoGradGuard no_grad;
  auto master = replicas[0].model->parameters();
  double total = 0;
  for (size_t r = 0; r < replicas.size(); ++r) {
    const double weight = static_cast<double>(replicas[r].count) / static_cast<double>(batch);
    total += weight * losses[r];
    if (r == 0) {
      for (auto& p : master) p.mutable_grad().mul_(weight);
      continue;
    }
    if (replicas[r].count == 0) continue;
    const auto params = replicas[r].model->parameters();
    for (size_t i = 0; i < master.size(); ++i) {
      master[i].mutable_grad().add_(params[i].grad().to(master[i].device()), weight);
    }
  }
  return total;
}

double MeanValidationDice(UNet3d& model, seg::TrainingVolumeCache& valid,
                          const roles::UNetInferenceOptions& inference, Status& error) {
  double sum = 0;
  for (size_t i = 0; i < valid.case_count(); ++i) {
    StatusOr<seg::TrainingVolumeCache::CasePtr> c = valid.Get(i);
    if (!c.ok()) {
      error = c.status().WithContext("validation");
      return 0;
    }
    StatusOr<LabelVolume> predicted = PredictUNetLabels(model, (*c)->channels, inference);
    if (!predicted.ok()) {
      error = predicted.status().WithContext("validation case " + valid.files(i).id);
      return 0;
    }
    StatusOr<OverlapCounts> counts = CountOverlap(*predicted, (*c)->label);
    if (!counts.ok()) {
      error = counts.status();
      return 0;
    }
    // The reference's calculate_metric_percase: an empty prediction scores 0.
    sum += counts->pred == 0 ? 0.0 : DiceFromCounts(*counts, 0.0);
  }
  return sum / static_cast<double>(valid.case_count());
}

StatusOr<UNetTrainingReport> TrainOrThrow(const std::vector<roles::UNetCaseFiles>& train,
                                          const UNetTrainingOptions& options,
                                          const std::filesystem::path& model_out,
                                          const roles::TrainingProgress& progress) {
  const auto started = Clock::now();
  const UNet3dOptions network = NetworkOptions(options.architecture);
  RETURN_IF_ERROR(CheckOptions(train, options, network));
  ASSIGN_OR_RETURN(const SegmentationLoss loss, ParseSegmentationLoss(options.loss));
  ASSIGN_OR_RETURN(const seg::CropPad crop_pad, seg::ParseCropPad(options.crop_pad));
  std::vector<Replica> replicas(options.devices.size());
  std::vector<torch::Device> devices;
  for (size_t r = 0; r < replicas.size(); ++r) {
    ASSIGN_OR_RETURN(replicas[r].compute,
                     ParseComputeDevice(options.devices[r], options.precision));
    devices.push_back(replicas[r].compute.device);
    if (r > 0) {  // built before the seed, so the master's init draws what a single run draws
      ASSIGN_OR_RETURN(replicas[r].model, MakeUNet3d(network));
      replicas[r].model->to(devices[r]);
      replicas[r].model->train();
    }
  }

  const std::string fingerprint = Fingerprint(train, options);
  TrainingState state;
  std::unique_ptr<torch::optim::SGD> optimizer;
  const auto build = [&]() -> Status {
    torch::manual_seed(options.seed);
    ASSIGN_OR_RETURN(replicas[0].model, MakeUNet3d(network));
    replicas[0].model->to(devices[0]);
    replicas[0].model->train();
    optimizer = std::make_unique<torch::optim::SGD>(replicas[0].model->parameters(),
                                                    torch::optim::SGDOptions(options.lr)
                                                        .momentum(options.momentum)
                                                        .weight_decay(options.weight_decay));
    state = TrainingState{};
    return OkStatus();
  };
  RETURN_IF_ERROR(build());
  const bool checkpointing = !options.checkpoint_path.empty();
  if (checkpointing && std::filesystem::exists(options.checkpoint_path)) {
    Status loaded;
    try {
      loaded = LoadCheckpoint(options.checkpoint_path, *replicas[0].model, *optimizer, state,
                              fingerprint, devices);
    } catch (const c10::Error& e) {
      loaded = DataLossError(FirstLine(e.what_without_backtrace()));
    }
    if (loaded.ok()) {
      LogInfo("unet_resume", {{"checkpoint", options.checkpoint_path.string()},
                              {"after_iteration", state.iteration}});
    } else {
      LogWarn("unet_checkpoint_ignored",
              {{"checkpoint", options.checkpoint_path.string()}, {"reason", loaded.ToString()}});
      RETURN_IF_ERROR(build());  // start over from the seeded init
    }
  }
  for (size_t r = 1; r < replicas.size(); ++r) CopyWeights(*replicas[0].model, *replicas[r].model);

  UNetTrainingReport report;
  report.resumed_after_iteration = state.iteration;
  report.train_cases = static_cast<int64_t>(train.size());
  seg::TrainingVolumeCache cache(train, options.cache_bytes);
  seg::TrainingVolumeCache valid_cache(options.valid, options.cache_bytes / 4);
  roles::UNetInferenceOptions inference = options.validation_inference;
  inference.architecture = options.architecture;
  inference.device = options.devices.front();
  seg::PatchBatchOptions batch_options;
  batch_options.batch_size = options.batch_size;
  batch_options.patch = options.patch_size;
  batch_options.channels = network.in_channels;
  batch_options.pad = crop_pad;
  batch_options.seed = options.seed;
  const int64_t first_iteration = state.iteration;
  seg::PatchBatchLoader loader(cache, batch_options, first_iteration, options.max_iterations,
                               options.loader_threads);
  // The batch's share of each replica, as even as possible (earlier replicas take the rest).
  const auto replica_count = static_cast<int64_t>(replicas.size());
  for (int64_t r = 0, first = 0; r < replica_count; ++r) {
    replicas[r].first = first;
    replicas[r].count =
        options.batch_size / replica_count + (r < options.batch_size % replica_count);
    first += replicas[r].count;
  }

  double step_seconds = 0, wait_seconds = 0;
  int64_t last_saved = first_iteration;  // 0: no checkpoint on disk
  const auto loop_start = Clock::now();
  const std::string max_text = std::to_string(options.max_iterations);
  while (state.iteration < options.max_iterations) {
    StatusOr<seg::PatchBatchLoader::Loaded> loaded = loader.Next();
    if (!loaded.ok()) return loaded.status().WithContext("unet training batch");
    wait_seconds += loaded->waited_seconds;
    const seg::PatchBatch& batch = loaded->batch;
    const int64_t step = state.iteration + 1;
    const double lr =
        seg::PolyLearningRate(options.lr, step, options.max_iterations, options.poly_power);
    for (auto& group : optimizer->param_groups()) {
      static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    }
    const auto& p = batch.patch;
    const torch::Tensor images =
        torch::from_blob(const_cast<float*>(batch.images.data()),
                         {batch.batch_size, batch.channels, p[0], p[1], p[2]}, torch::kFloat);
    const torch::Tensor labels =
        torch::from_blob(const_cast<uint8_t*>(batch.labels.data()),
                         {batch.batch_size, p[0], p[1], p[2]}, torch::kByte);
    const auto step_start = Clock::now();
    optimizer->zero_grad();
    for (size_t r = 1; r < replicas.size(); ++r) replicas[r].model->zero_grad();
    double loss_value = 0;
    if (replicas.size() == 1) {
      loss_value = ReplicaStep(replicas[0], images, labels, loss, options.gce_q);
    } else {
      loss_value = ParallelStep(replicas, images, labels, loss, options.gce_q);
    }
    optimizer->step();
    for (size_t r = 1; r < replicas.size(); ++r)
      CopyWeights(*replicas[0].model, *replicas[r].model);
    step_seconds += SecondsSince(step_start);
    state.iteration = step;
    state.losses.push_back({step, loss_value, lr});

    if (!options.valid.empty() && step % options.validate_every == 0) {
      Status error;
      const double dice = MeanValidationDice(replicas[0].model, valid_cache, inference, error);
      if (!error.ok()) return error;
      state.validations.push_back({step, dice});
      LogInfo("unet_validation", {{"iteration", step}, {"mean_dice", dice}});
      if (dice > state.best_dice) {  // strict: the first best wins
        state.best_dice = dice;
        state.best_iteration = step;
        state.best_weights = CpuCopyOf(*replicas[0].model);
      }
    }
    if (checkpointing && (step % options.checkpoint_every == 0 || step == options.max_iterations)) {
      RETURN_IF_ERROR(SaveCheckpoint(options.checkpoint_path, *replicas[0].model, *optimizer, state,
                                     fingerprint, devices)
                          .WithContext("unet training checkpoint"));
      last_saved = step;
    }
    const double done_here = static_cast<double>(step - first_iteration);
    const double rate = done_here / std::max(SecondsSince(loop_start), 1e-9);
    const std::string message =
        "iteration " + std::to_string(step) + "/" + max_text + " loss " +
        Format("%.4f", loss_value) + " lr " + Format("%.3g", lr) + " " + Format("%.2f", rate) +
        " it/s ETA " + DurationText(static_cast<double>(options.max_iterations - step) / rate);
    if (progress && !progress(static_cast<double>(step) / options.max_iterations, message)) {
      return CancelledError("unet training cancelled after iteration " + std::to_string(step) +
                            (last_saved > 0 ? "; the checkpoint after iteration " +
                                                  std::to_string(last_saved) + " remains"
                                            : ""));
    }
  }

  report.iterations = state.iteration;
  report.losses = state.losses;
  report.validations = state.validations;
  StateDict selected;
  if (!options.valid.empty() && !state.best_weights.empty()) {
    selected = state.best_weights;
    report.selected_iteration = state.best_iteration;
  } else {
    selected = CpuCopyOf(*replicas[0].model);
    report.selected_iteration = state.iteration;
  }
  RETURN_IF_ERROR(WriteCheckpoint(model_out, selected).WithContext("unet model"));
  const double steps = static_cast<double>(std::max<int64_t>(state.iteration - first_iteration, 1));
  report.seconds = SecondsSince(started);
  report.mean_step_seconds = step_seconds / steps;
  report.mean_loader_wait_seconds = wait_seconds / steps;
  report.cache_hits = cache.hits();
  report.cache_misses = cache.misses();
  return report;
}

}  // namespace

StatusOr<SegmentationLoss> ParseSegmentationLoss(std::string_view name) {
  if (name == "ce") return SegmentationLoss::kCrossEntropy;
  if (name == "ce_dice") return SegmentationLoss::kCrossEntropyDice;
  if (name == "gce") return SegmentationLoss::kGeneralizedCrossEntropy;
  return InvalidArgumentError("unet loss must be ce, ce_dice or gce, got '" + std::string(name) +
                              "'");
}

torch::Tensor ComputeSegmentationLoss(SegmentationLoss loss, const torch::Tensor& logits,
                                      const torch::Tensor& labels, double gce_q) {
  namespace F = torch::nn::functional;
  if (loss == SegmentationLoss::kGeneralizedCrossEntropy) {
    const torch::Tensor log_py = logits.log_softmax(1).gather(1, labels.unsqueeze(1));
    return ((1.0 - (log_py * gce_q).exp()) / gce_q).mean();
  }
  const torch::Tensor ce = F::cross_entropy(logits, labels);
  if (loss == SegmentationLoss::kCrossEntropy) return ce;
  const int64_t classes = logits.size(1);
  const torch::Tensor soft = logits.softmax(1);
  const torch::Tensor target =
      F::one_hot(labels, classes).permute({0, 4, 1, 2, 3}).to(soft.scalar_type());
  constexpr double kSmooth = 1e-5;
  torch::Tensor dice = torch::zeros({}, soft.options());
  for (int64_t k = 0; k < classes; ++k) {
    const torch::Tensor score = soft.select(1, k), truth = target.select(1, k);
    const torch::Tensor intersect = (score * truth).sum();
    const torch::Tensor ratio =
        (2 * intersect + kSmooth) / ((score * score).sum() + (truth * truth).sum() + kSmooth);
    dice = dice + (1 - ratio);
  }
  return 0.5 * (ce + dice / static_cast<double>(classes));
}

StatusOr<UNetTrainingReport> TrainUNet(const std::vector<roles::UNetCaseFiles>& train,
                                       const UNetTrainingOptions& options,
                                       const std::filesystem::path& model_out,
                                       const roles::TrainingProgress& progress) {
  try {
    return TrainOrThrow(train, options, model_out, progress);
  } catch (const c10::Error& e) {
    return InternalError("unet training: " + FirstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return InternalError(std::string("unet training: ") + e.what());
  }
}

}  // namespace clisc::models
