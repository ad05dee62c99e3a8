// A ClassifierEngine for torch-free role tests: it "trains" by recording what it was given and
// writing a small model file, and its CAM is the slice's own intensity scaled to [0, 1] on slices
// whose brightest voxel stands out, so CAM-driven stages see plausible maps on synthetic tumors
// (which are bright on FLAIR). It can also stop a training the way a killed worker would.
#pragma once

#include <algorithm>
#include <atomic>
#include <fstream>
#include <numeric>

#include "workers/roles/classifier_engine.h"

namespace clisc::testing {

class FakeClassifierEngine : public roles::ClassifierEngine {
 public:
  struct Record {
    std::atomic<int> trainings{0};
    std::atomic<int64_t> last_train_slices{0};
    std::atomic<int64_t> last_valid_slices{0};
    std::atomic<int> cam_calls{0};
  };
  explicit FakeClassifierEngine(Record* record, double bright_z = 2.5)
      : record_(record), bright_z_(bright_z) {}

  std::string Describe() const override { return "fake classifier (test)"; }

  StatusOr<roles::TrainingReport> Train(const std::vector<roles::LabelledSlice>& train,
                                        const std::vector<roles::LabelledSlice>& valid,
                                        const roles::ClassifierTrainingOptions& options,
                                        const std::filesystem::path& model_out,
                                        const roles::TrainingProgress& progress) override {
    const size_t pixels = static_cast<size_t>(options.image_size) * options.image_size;
    for (const roles::LabelledSlice& s : train) {
      if (s.pixels.size() != pixels) return InvalidArgumentError("slice of the wrong size");
    }
    ++record_->trainings;
    record_->last_train_slices = static_cast<int64_t>(train.size());
    record_->last_valid_slices = static_cast<int64_t>(valid.size());
    roles::TrainingReport report;
    for (int e = 1; e <= options.epochs; ++e) {
      if (!progress(double(e) / options.epochs, "epoch " + std::to_string(e))) {
        return CancelledError("stopped");
      }
      report.epochs.push_back({e, 1.0 / e, 0.5, std::nullopt, options.lr, 0.0});
    }
    report.selected_epoch = options.epochs;
    report.train_slices = static_cast<int64_t>(train.size());
    report.valid_slices = static_cast<int64_t>(valid.size());
    std::ofstream(model_out) << "fake model trained on " << train.size() << " slices\n";
    return report;
  }

  StatusOr<std::vector<roles::SliceCam>> ComputeCams(
      const std::filesystem::path& model, const std::vector<backends::FloatSlice>& slices,
      const roles::CamOptions&) override {
    if (!std::filesystem::exists(model)) return NotFoundError("no model at " + model.string());
    ++record_->cam_calls;
    std::vector<roles::SliceCam> out;
    for (const backends::FloatSlice& slice : slices) {
      roles::SliceCam cam;
      const auto [lo, hi] = std::minmax_element(slice.values.begin(), slice.values.end());
      cam.predicted_tumor = *hi > bright_z_;
      cam.tumor_probability = cam.predicted_tumor ? 0.9f : 0.1f;
      cam.cam.resize(slice.values.size(), 0.0f);
      if (*hi > *lo) {
        for (size_t i = 0; i < slice.values.size(); ++i) {
          cam.cam[i] = (slice.values[i] - *lo) / (*hi - *lo);
        }
      }
      out.push_back(std::move(cam));
    }
    return out;
  }

 private:
  Record* record_;
  double bright_z_;
};

}  // namespace clisc::testing
