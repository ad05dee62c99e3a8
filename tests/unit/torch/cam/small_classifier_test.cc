// The small CPU classifier learns a toy tumor/no-tumor problem (a bright square on noise), and
// LayerCAM on its layer3 gives maps of the input's size that favour the square.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>
#include <vector>

#include "workers/models/cam/layer_cam.h"
#include "workers/models/cam/slice_classifier.h"

namespace clisc::models {
namespace {

constexpr int64_t kSide = 64;
constexpr int64_t kSquare = 16;
constexpr int kSteps = 40;

struct ToyBatch {
  torch::Tensor images;  // [N, 3, kSide, kSide] in [0, 1], three equal channels
  torch::Tensor labels;  // [N] int64, 1 = a square is present
  torch::Tensor masks;   // [N, kSide, kSide] bool, the square
};

// Half the images carry a bright square at a random place; every image has dim noise.
ToyBatch MakeToyBatch(int64_t count) {
  ToyBatch batch;
  torch::Tensor gray = torch::rand({count, 1, kSide, kSide}) * 0.4;
  batch.labels = torch::arange(count) % 2;
  batch.masks = torch::zeros({count, kSide, kSide}, torch::kBool);
  for (int64_t i = 0; i < count; ++i) {
    if (batch.labels[i].item<int64_t>() == 0) continue;
    const int64_t y = torch::randint(0, kSide - kSquare, {1}).item<int64_t>();
    const int64_t x = torch::randint(0, kSide - kSquare, {1}).item<int64_t>();
    using torch::indexing::Slice;
    gray.index_put_({i, 0, Slice(y, y + kSquare), Slice(x, x + kSquare)}, 0.9);
    batch.masks.index_put_({i, Slice(y, y + kSquare), Slice(x, x + kSquare)}, true);
  }
  batch.images = gray.repeat({1, 3, 1, 1});
  return batch;
}

TEST(SmallClassifierTest, LearnsAToyProblemAndGivesCamsOfTheInputSize) {
  torch::set_num_threads(2);
  torch::manual_seed(42);
  auto made = MakeSliceClassifier("small");
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  SliceClassifier model = *made;
  EXPECT_EQ(model->StageChannels("layer3"), 64);

  const ToyBatch train = MakeToyBatch(24);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  model->train();
  std::vector<double> losses;
  for (int step = 0; step < kSteps; ++step) {
    optimizer.zero_grad();
    const torch::Tensor loss =
        torch::nn::functional::cross_entropy(model->forward(train.images), train.labels);
    loss.backward();
    optimizer.step();
    losses.push_back(loss.item<double>());
  }
  const double first = losses.front();
  const double last = (losses[kSteps - 3] + losses[kSteps - 2] + losses[kSteps - 1]) / 3;
  std::cout << "[ measured ] toy loss " << first << " -> " << last << "\n";
  EXPECT_LT(last, 0.5 * first);

  const ToyBatch test = MakeToyBatch(8);
  auto result = LayerCam(*model, test.images);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(model->is_training()) << "LayerCam restores the caller's mode";
  EXPECT_EQ(result->cams.sizes().vec(), (std::vector<int64_t>{8, kSide, kSide}));
  EXPECT_EQ(result->raw_cams.sizes().vec(), (std::vector<int64_t>{8, kSide / 16, kSide / 16}));
  EXPECT_EQ(result->logits.sizes().vec(), (std::vector<int64_t>{8, 2}));
  EXPECT_GE(result->cams.min().item<float>(), 0.0f);
  EXPECT_LT(result->cams.max().item<float>(), 1.0f);
  EXPECT_FALSE(result->activations.defined());
  const torch::Tensor correct = result->logits.argmax(1).eq(test.labels);
  EXPECT_GE(correct.sum().item<int64_t>(), 7) << result->logits;
  std::cout << "[ measured ] toy test accuracy " << correct.sum().item<int64_t>() << " / 8\n";

  // On the images with a square it finds, the tumor CAM is higher on the square than off it.
  for (int64_t i = 1; i < 8; i += 2) {
    if (!correct[i].item<bool>()) continue;
    const torch::Tensor cam = result->cams[i];
    const torch::Tensor mask = test.masks[i];
    const double inside = cam.masked_select(mask).mean().item<double>();
    const double outside = cam.masked_select(mask.logical_not()).mean().item<double>();
    std::cout << "[ measured ] image " << i << " mean CAM on / off the square: " << inside << " / "
              << outside << "\n";
    EXPECT_GT(inside, outside) << "image " << i;
  }

  // A CAM of another stage has the input's size too.
  LayerCamOptions layer2;
  layer2.layer = "layer2";
  auto coarse = LayerCam(*model, test.images.slice(0, 0, 2), layer2);
  ASSERT_TRUE(coarse.ok()) << coarse.status().ToString();
  EXPECT_EQ(coarse->cams.sizes().vec(), (std::vector<int64_t>{2, kSide, kSide}));
}

}  // namespace
}  // namespace clisc::models
