// Shared by the classifier engine tests: toy slices (a bright square means tumor), small
// training options, a model trained once per test executable, and weight comparison.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "workers/models/cam/classifier_input.h"
#include "workers/models/cam/layer_cam.h"
#include "workers/models/cam/slice_classifier.h"
#include "workers/models/cam/torch_classifier_engine.h"
#include "workers/models/checkpoint_reader.h"

namespace clisc::models::engine_test {

namespace fs = std::filesystem;
using roles::ClassifierTrainingOptions;
using roles::LabelledSlice;
using roles::TrainingReport;

inline fs::path ScratchDir() {
  static std::atomic<int> counter{0};
  const fs::path dir =
      fs::temp_directory_path() /
      ("clisc_engine_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct Square {
  int x = 0, y = 0, side = 0;
  bool Contains(int px, int py) const {
    return px >= x && px < x + side && py >= y && py < y + side;
  }
};

// Dim noise everywhere; odd-numbered images (label 1) carry a bright square of side size / 4.
inline std::vector<LabelledSlice> MakeSquares(int count, int size, uint32_t seed,
                                              bool invert = false) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 90), bright(200, 255);
  const int side = size / 4;
  std::uniform_int_distribution<int> corner(0, size - side);
  std::vector<LabelledSlice> slices(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    LabelledSlice& s = slices[static_cast<size_t>(i)];
    s.pixels.resize(static_cast<size_t>(size) * size);
    for (uint8_t& p : s.pixels) p = static_cast<uint8_t>(noise(rng));
    const bool square = i % 2 == 1;
    s.label = square != invert ? 1 : 0;
    if (!square) continue;
    const int x = corner(rng), y = corner(rng);
    for (int r = y; r < y + side; ++r) {
      for (int c = x; c < x + side; ++c) s.pixels[static_cast<size_t>(r) * size + c] = bright(rng);
    }
  }
  return slices;
}

inline ClassifierTrainingOptions SmallOptions(const fs::path& dir, int size = 32) {
  ClassifierTrainingOptions o;
  o.arch = "small";
  o.image_size = size;
  o.head_units = 32;
  o.lr = 1e-3;
  o.lr_step_size = 2;
  o.lr_gamma = 0.5;
  o.batch_size = 16;
  o.epochs = 3;
  o.seed = 7;
  o.loader_threads = 0;
  o.checkpoint_path = dir / "training.ckpt";
  return o;
}

inline TrainingReport TrainOrDie(const std::vector<LabelledSlice>& train,
                                 const std::vector<LabelledSlice>& valid,
                                 const ClassifierTrainingOptions& options,
                                 const fs::path& model_out,
                                 const roles::TrainingProgress& progress = {}) {
  auto engine = MakeTorchClassifierEngine();
  auto report = engine->Train(train, valid, options, model_out, progress);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? *report : TrainingReport{};
}

// Bit-for-bit equality of two written models, entry by entry.
inline ::testing::AssertionResult SameWeights(const fs::path& a, const fs::path& b) {
  auto left = ReadCheckpoint(a);
  auto right = ReadCheckpoint(b);
  if (!left.ok() || !right.ok()) return ::testing::AssertionFailure() << "unreadable model";
  if (left->size() != right->size()) return ::testing::AssertionFailure() << "entry counts differ";
  for (size_t i = 0; i < left->size(); ++i) {
    const auto& [name, tensor] = (*left)[i];
    if (name != (*right)[i].first || !torch::equal(tensor, (*right)[i].second)) {
      return ::testing::AssertionFailure()
             << name << " differs, max |diff| "
             << (tensor.to(torch::kDouble) - (*right)[i].second.to(torch::kDouble))
                    .abs()
                    .max()
                    .item<double>();
    }
  }
  return ::testing::AssertionSuccess();
}

// z-scored-looking native slices of different sizes; odd ones carry a bright square.
inline std::vector<backends::FloatSlice> MakeFloatSlices(int count, std::vector<Square>& squares,
                                                         uint32_t seed = 99) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  std::vector<backends::FloatSlice> slices;
  squares.assign(static_cast<size_t>(count), Square{});
  for (int i = 0; i < count; ++i) {
    const int width = 64 + 8 * (i % 5), height = 64 + 12 * (i % 3);
    backends::FloatSlice s{width, height, std::vector<float>(static_cast<size_t>(width) * height)};
    for (float& v : s.values) v = noise(rng);
    if (i % 2 == 1) {
      Square& q = squares[static_cast<size_t>(i)];
      q.side = std::min(width, height) / 4;
      q.x = std::uniform_int_distribution<int>(0, width - q.side)(rng);
      q.y = std::uniform_int_distribution<int>(0, height - q.side)(rng);
      for (int r = q.y; r < q.y + q.side; ++r) {
        for (int c = q.x; c < q.x + q.side; ++c) s.values[static_cast<size_t>(r) * width + c] = 3;
      }
    }
    slices.push_back(std::move(s));
  }
  return slices;
}

constexpr int kCamImageSize = 48;

// Training images made from native float slices the way the reference makes its PNGs (min-max to
// 8 bits, Pillow bilinear to the classifier's size), so CAM inputs look like training inputs.
inline std::vector<LabelledSlice> LabelledFromFloat(
    const std::vector<backends::FloatSlice>& slices) {
  std::vector<LabelledSlice> labelled;
  for (size_t i = 0; i < slices.size(); ++i) {
    auto gray = SliceToGray(slices[i]);
    EXPECT_TRUE(gray.ok());
    auto resized = ResizeForClassifier(*gray, kCamImageSize);
    EXPECT_TRUE(resized.ok());
    labelled.push_back({resized->pixels, static_cast<int>(i % 2)});
  }
  return labelled;
}

// A model trained once for the CAM tests.
struct TrainedModel {
  fs::path path;
  TrainingReport report;
};

inline const TrainedModel& CamModel() {
  static const TrainedModel model = [] {
    torch::set_num_threads(2);
    TrainedModel m;
    const fs::path dir = ScratchDir();
    ClassifierTrainingOptions options = SmallOptions(dir, kCamImageSize);
    options.epochs = 3;
    options.batch_size = 8;
    options.loader_threads = 2;
    m.path = dir / "model.pth";
    std::vector<Square> squares;
    const auto train = LabelledFromFloat(MakeFloatSlices(96, squares, /*seed=*/1));
    m.report = TrainOrDie(train, {}, options, m.path);
    return m;
  }();
  return model;
}

inline roles::CamOptions CamOptionsFor() {
  roles::CamOptions o;
  o.arch = "small";
  o.image_size = kCamImageSize;
  o.head_units = 32;
  o.layer = "layer2";  // 6 x 6 maps for a 48 input
  o.batch_size = 3;
  return o;
}

class ClassifierEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(2); }
};

}  // namespace clisc::models::engine_test
