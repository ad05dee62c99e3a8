#include "workers/models/cam/classifier_training_checkpoint.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>
#include <sstream>
#include <string>

#include "common/atomic_file.h"
#include "workers/models/checkpoint_writer.h"

namespace clisc::models {
namespace {

using roles::EpochReport;

constexpr char kCheckpointFormat[] = "clisc.classifier_training.v1";

// The generators dropout draws from: the CPU one, and the training GPU's.
std::optional<at::Generator> CudaGenerator(const torch::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
  return at::detail::getCUDAHooks().getDefaultCUDAGenerator(device.index());
}

torch::Tensor GeneratorState(at::Generator generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void SetGeneratorState(at::Generator generator, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state.to(torch::kCPU));
}

// Epoch reports as rows of (epoch, loss, train accuracy, valid accuracy or NaN, lr, seconds).
torch::Tensor ReportsTensor(const std::vector<EpochReport>& reports) {
  torch::Tensor rows = torch::empty({static_cast<int64_t>(reports.size()), 6}, torch::kDouble);
  auto r = rows.accessor<double, 2>();
  for (size_t i = 0; i < reports.size(); ++i) {
    const EpochReport& e = reports[i];
    const double values[6] = {
        double(e.epoch), e.loss, e.train_accuracy, e.valid_accuracy.value_or(std::nan("")), e.lr,
        e.seconds};
    for (int j = 0; j < 6; ++j) r[i][j] = values[j];
  }
  return rows;
}

std::vector<EpochReport> ReportsFromTensor(const torch::Tensor& tensor) {
  const torch::Tensor rows = tensor.to(torch::kCPU, torch::kDouble).contiguous();
  auto r = rows.accessor<double, 2>();
  std::vector<EpochReport> reports(static_cast<size_t>(rows.size(0)));
  for (size_t i = 0; i < reports.size(); ++i) {
    reports[i].epoch = static_cast<int>(r[i][0]);
    reports[i].loss = r[i][1];
    reports[i].train_accuracy = r[i][2];
    if (!std::isnan(r[i][3])) reports[i].valid_accuracy = r[i][3];
    reports[i].lr = r[i][4];
    reports[i].seconds = r[i][5];
  }
  return reports;
}

}  // namespace

StateDict CpuCopy(const StateDict& dict) {
  StateDict copy;
  copy.reserve(dict.size());
  for (const auto& [name, tensor] : dict) {
    copy.emplace_back(name, tensor.detach().to(torch::kCPU, /*non_blocking=*/false,
                                               /*copy=*/true));
  }
  return copy;
}

Status SaveTrainingCheckpoint(const std::filesystem::path& path, SliceClassifierImpl& model,
                              torch::optim::Adam& optimizer, const TrainingProgressState& state,
                              const std::string& fingerprint, const torch::Device& device) {
  torch::serialize::OutputArchive archive;
  archive.write("checkpoint_format", c10::IValue(std::string(kCheckpointFormat)));
  archive.write("fingerprint", c10::IValue(fingerprint));
  archive.write("epoch", c10::IValue(static_cast<int64_t>(state.epoch)));
  WriteArchiveStateDict(archive, "model", StateDictOf(model));
  torch::serialize::OutputArchive optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("cpu_rng_state", GeneratorState(at::detail::getDefaultCPUGenerator()));
  if (auto cuda = CudaGenerator(device)) archive.write("cuda_rng_state", GeneratorState(*cuda));
  archive.write("reports", ReportsTensor(state.reports));
  archive.write("best_epoch", c10::IValue(static_cast<int64_t>(state.best_epoch)));
  archive.write("best_accuracy", c10::IValue(state.best_accuracy));
  WriteArchiveStateDict(archive, "best", state.best_weights);
  std::ostringstream bytes;
  archive.save_to(bytes);
  return WriteFileAtomically(path, bytes.str());
}

// Restores model, optimizer, generators and progress from `path`.
Status LoadTrainingCheckpoint(const std::filesystem::path& path, SliceClassifierImpl& model,
                              torch::optim::Adam& optimizer, TrainingProgressState& state,
                              const std::string& fingerprint, const torch::Device& device) {
  const std::string where = "training checkpoint " + path.string();
  torch::serialize::InputArchive archive;
  archive.load_from(path.string(), device);
  c10::IValue format, saved_fingerprint, epoch, best_epoch, best_accuracy;
  if (!archive.try_read("checkpoint_format", format) || !format.isString() ||
      format.toStringRef() != kCheckpointFormat) {
    return InvalidArgumentError(where + ": not a classifier training checkpoint");
  }
  archive.read("fingerprint", saved_fingerprint);
  if (saved_fingerprint.toStringRef() != fingerprint) {
    return FailedPreconditionError(where + " was made by another training setup (" +
                                   saved_fingerprint.toStringRef() + "; now " + fingerprint +
                                   "): remove it to start over");
  }
  RETURN_IF_ERROR(LoadStateDict(model, ReadArchiveStateDict(archive, "model")).WithContext(where));
  torch::serialize::InputArchive optimizer_archive;
  archive.read("optimizer", optimizer_archive);
  optimizer.load(optimizer_archive);
  torch::Tensor rng;
  archive.read("cpu_rng_state", rng);
  SetGeneratorState(at::detail::getDefaultCPUGenerator(), rng);
  if (auto cuda = CudaGenerator(device); cuda && archive.try_read("cuda_rng_state", rng)) {
    SetGeneratorState(*cuda, rng);
  }
  torch::Tensor reports;
  archive.read("reports", reports);
  archive.read("epoch", epoch);
  archive.read("best_epoch", best_epoch);
  archive.read("best_accuracy", best_accuracy);
  state.epoch = static_cast<int>(epoch.toInt());
  state.reports = ReportsFromTensor(reports);
  state.best_epoch = static_cast<int>(best_epoch.toInt());
  state.best_accuracy = best_accuracy.toDouble();
  state.best_weights = CpuCopy(ReadArchiveStateDict(archive, "best"));
  return OkStatus();
}

}  // namespace clisc::models
