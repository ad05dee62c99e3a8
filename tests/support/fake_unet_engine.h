// A UNetEngine for torch-free role tests. Training records which cases and label files it was
// given (and their foreground voxel counts) and writes a small model file naming its variant;
// prediction thresholds the first channel at `threshold` (synthetic tumors are bright on FLAIR),
// so the stages after it see plausible, case-dependent masks. A model file whose name contains
// "supervised" thresholds a little higher, which is enough to tell the baselines apart.
#pragma once

#include <atomic>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "common/volume_io.h"
#include "workers/roles/unet_engine.h"

namespace clisc::testing {

class FakeUNetEngine : public roles::UNetEngine {
 public:
  struct Record {
    std::mutex mutex;
    std::vector<std::vector<std::string>> trainings;  // case ids, per Train() call
    std::vector<std::vector<std::string>> label_files;
    std::vector<roles::UNetTrainingOptions> options;
    std::atomic<int> predictions{0};
  };
  explicit FakeUNetEngine(Record* record, float threshold = 2.0f)
      : record_(record), threshold_(threshold) {}

  std::string Describe() const override { return "fake U-Net (test)"; }

  StatusOr<roles::UNetTrainingReport> Train(const std::vector<roles::UNetCaseFiles>& train,
                                            const roles::UNetTrainingOptions& options,
                                            const std::filesystem::path& model_out,
                                            const roles::TrainingProgress& progress) override {
    if (train.empty()) return InvalidArgumentError("no training case");
    std::vector<std::string> ids, labels;
    for (const roles::UNetCaseFiles& c : train) {
      if (c.channels.size() != static_cast<size_t>(options.architecture.in_channels)) {
        return InvalidArgumentError("channel count does not match the architecture");
      }
      StatusOr<LabelVolume> label = ReadVolume<uint8_t>(c.label);
      if (!label.ok()) return label.status();
      ids.push_back(c.id);
      labels.push_back(c.label.string());
    }
    roles::UNetTrainingReport report;
    for (int64_t i = 1; i <= options.max_iterations; ++i) {
      if (!progress(double(i) / options.max_iterations, "iteration " + std::to_string(i))) {
        return CancelledError("stopped");
      }
      report.losses.push_back({i, 1.0 / double(i), options.lr});
    }
    report.iterations = options.max_iterations;
    report.selected_iteration = options.max_iterations;
    report.train_cases = static_cast<int64_t>(train.size());
    std::ofstream(model_out) << "fake U-Net " << model_out.parent_path().filename().string()
                             << " trained on " << train.size() << " cases\n";
    std::lock_guard<std::mutex> lock(record_->mutex);
    record_->trainings.push_back(ids);
    record_->label_files.push_back(labels);
    record_->options.push_back(options);
    return report;
  }

  StatusOr<LabelVolume> Predict(const std::filesystem::path& model,
                                const std::vector<FloatVolume>& channels,
                                const roles::UNetInferenceOptions&) override {
    if (!std::filesystem::exists(model)) return NotFoundError("no model at " + model.string());
    if (channels.empty()) return InvalidArgumentError("no channel");
    ++record_->predictions;
    const float threshold =
        model.string().find("supervised") != std::string::npos ? threshold_ + 0.5f : threshold_;
    LabelVolume label = channels.front().LikeThis<uint8_t>(0);
    for (size_t i = 0; i < label.voxels().size(); ++i) {
      label[i] = channels.front()[i] > threshold ? 1 : 0;
    }
    return label;
  }

 private:
  Record* record_;
  float threshold_;
};

}  // namespace clisc::testing
