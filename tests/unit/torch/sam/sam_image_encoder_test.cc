// SamImageEncoder against the official ImageEncoderViT on the tiny model's goldens
// (encoder_io.pth): every intermediate (patch embedding, position embedding, each windowed and
// global block, the neck), the output, a batch of two; plus the window and relative-position
// helpers on their own.
#include "workers/models/sam/sam_image_encoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>

#include "tests/support/torch_fixtures.h"
#include "tests/unit/torch/sam/sam_tiny_model.h"
#include "workers/models/sam/sam_model.h"

namespace clisc::models {
namespace {

using ::clisc::testing::AllClose;
using ::clisc::testing::Fixture;
using ::clisc::testing::Goldens;
using ::clisc::testing::LoadGoldens;
using ::clisc::testing::MaxAbsDiff;

constexpr double kTolerance = 1e-4;  // fixture README section 6, tiny-model float tensors

class SamImageEncoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
    CLISC_REQUIRE_FIXTURE(Fixture("sam/encoder_io.pth"));
    ASSERT_NO_FATAL_FAILURE(testing::LoadTinySam(sam_));
    goldens_ = LoadGoldens(Fixture("sam/encoder_io.pth"));
  }

  const torch::Tensor& Golden(const std::string& name) {
    auto it = goldens_.find(name);
    EXPECT_NE(it, goldens_.end()) << name;
    return it->second;
  }

  void ExpectClose(const torch::Tensor& actual, const std::string& name) {
    const torch::Tensor& expected = Golden(name);
    EXPECT_TRUE(AllClose(actual, expected, kTolerance)) << name;
    std::cout << "  " << name << ": max |diff| " << MaxAbsDiff(actual, expected) << "\n";
  }

  Sam sam_{nullptr};
  Goldens goldens_;
};

TEST_F(SamImageEncoderTest, IntermediatesMatchTheOfficialEncoder) {
  torch::NoGradGuard no_grad;
  SamImageEncoder& encoder = sam_->image_encoder;
  torch::Tensor x = encoder->patch_embed->forward(Golden("input"));
  ExpectClose(x, "patch_embed");
  x = x + encoder->pos_embed;
  ExpectClose(x, "after_pos_embed");
  auto& blocks = encoder->block_list();
  ASSERT_EQ(blocks.size(), 4u);
  // Blocks 0 and 2 attend in 5x5 windows over the 8x8 grid padded to 10x10; 1 and 3 globally.
  EXPECT_EQ(blocks[0]->window_size(), 5);
  EXPECT_EQ(blocks[1]->window_size(), 0);
  EXPECT_EQ(blocks[2]->window_size(), 5);
  EXPECT_EQ(blocks[3]->window_size(), 0);
  for (size_t i = 0; i < blocks.size(); ++i) {
    x = blocks[i]->forward(x);
    ExpectClose(x, "block" + std::to_string(i));
  }
  const torch::Tensor neck_input = x.permute({0, 3, 1, 2});
  ExpectClose(encoder->neck[0]->as<torch::nn::Conv2d>()->forward(neck_input), "neck_conv1");
  ExpectClose(encoder->neck->forward(neck_input), "image_embeddings");
}

TEST_F(SamImageEncoderTest, ForwardMatchesSingleAndBatch) {
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  const torch::Tensor single = sam_->image_encoder->forward(Golden("input"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ExpectClose(single, "image_embeddings");
  ExpectClose(sam_->image_encoder->forward(Golden("input_b2")), "image_embeddings_b2");
  std::cout << "  tiny encoder, one 128x128 image: " << seconds * 1e3 << " ms\n";
  EXPECT_NEAR(single.sum().item<double>(), 7.994378, 1e-3);  // README section 7
}

TEST_F(SamImageEncoderTest, InferenceModeGivesTheSameEmbedding) {
  c10::InferenceMode inference;
  ExpectClose(sam_->image_encoder->forward(Golden("input")), "image_embeddings");
}

TEST(SamWindowTest, PartitionPadsAndUnpartitionRestores) {
  const torch::Tensor x = torch::randn({2, 8, 7, 3});
  auto [windows, padded_hw] = SamWindowPartition(x, 5);
  EXPECT_EQ(padded_hw, (std::pair<int64_t, int64_t>{10, 10}));
  ASSERT_EQ(windows.sizes(), (std::vector<int64_t>{8, 5, 5, 3}));
  // Row-major window order: window 1 of image 0 holds rows 0..4 and columns 5..9, of which
  // columns 7..9 are zero padding; window 2 of image 1 holds rows 5..9 (8, 9 padding).
  EXPECT_TRUE(torch::equal(windows[1].slice(1, 0, 2), x[0].slice(0, 0, 5).slice(1, 5, 7)));
  EXPECT_EQ(windows[1].slice(1, 2, 5).abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(windows[4 + 2].slice(0, 0, 3), x[1].slice(0, 5, 8).slice(1, 0, 5)));
  EXPECT_EQ(windows[4 + 2].slice(0, 3, 5).abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(SamWindowUnpartition(windows, 5, padded_hw, {8, 7}), x));
}

TEST(SamRelPosTest, TableOfTheRightLengthIsIndexedByOffset) {
  const int64_t size = 4;
  const torch::Tensor table = torch::randn({2 * size - 1, 3});
  const torch::Tensor rel = SamGetRelPos(size, size, table);
  ASSERT_EQ(rel.sizes(), (std::vector<int64_t>{size, size, 3}));
  for (int64_t q = 0; q < size; ++q) {
    for (int64_t k = 0; k < size; ++k)
      EXPECT_TRUE(torch::equal(rel[q][k], table[q - k + size - 1])) << q << "," << k;
  }
}

TEST(SamRelPosTest, OtherTableLengthsAreLinearlyResampled) {
  // A ramp resampled linearly (align_corners=False) stays the ramp at the sample positions,
  // clamped at the ends: value(t) = clamp((t + 0.5) * rows / wanted - 0.5, 0, rows - 1).
  const int64_t size = 5, rows = 4, wanted = 2 * size - 1;
  const torch::Tensor table = torch::arange(rows, torch::kFloat).unsqueeze(1).repeat({1, 2});
  const torch::Tensor rel = SamGetRelPos(size, size, table);
  ASSERT_EQ(rel.sizes(), (std::vector<int64_t>{size, size, 2}));
  for (int64_t q = 0; q < size; ++q) {
    for (int64_t k = 0; k < size; ++k) {
      const int64_t t = q - k + size - 1;
      const double src = (t + 0.5) * static_cast<double>(rows) / wanted - 0.5;
      const double expected = std::clamp(src, 0.0, static_cast<double>(rows - 1));
      EXPECT_NEAR(rel[q][k][0].item<double>(), expected, 1e-6) << q << "," << k;
      EXPECT_NEAR(rel[q][k][1].item<double>(), expected, 1e-6) << q << "," << k;
    }
  }
}

TEST(SamRelPosTest, DecomposedTermMatchesTheDefinition) {
  // attn[b, (h, w), (kh, kw)] += sum_c q[b, (h, w), c] * (Rh[h, kh, c] + Rw[w, kw, c]),
  // with Rh[h, kh] = rel_pos_h[h - kh + qh - 1], computed here by plain loops.
  const int64_t batch = 2, qh = 3, qw = 4, dim = 5;
  const torch::Tensor q = torch::randn({batch, qh * qw, dim}, torch::kDouble);
  const torch::Tensor rel_pos_h = torch::randn({2 * qh - 1, dim}, torch::kDouble);
  const torch::Tensor rel_pos_w = torch::randn({2 * qw - 1, dim}, torch::kDouble);
  const torch::Tensor attn0 = torch::randn({batch, qh * qw, qh * qw}, torch::kDouble);
  torch::Tensor attn = attn0.clone();
  SamAddDecomposedRelPos(attn, q, rel_pos_h, rel_pos_w, {qh, qw}, {qh, qw});
  torch::Tensor expected = attn0.clone();
  auto e = expected.accessor<double, 3>();
  auto qa = q.accessor<double, 3>();
  auto rh = rel_pos_h.accessor<double, 2>();
  auto rw = rel_pos_w.accessor<double, 2>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < qh; ++h)
      for (int64_t w = 0; w < qw; ++w)
        for (int64_t kh = 0; kh < qh; ++kh)
          for (int64_t kw = 0; kw < qw; ++kw)
            for (int64_t c = 0; c < dim; ++c)
              e[b][h * qw + w][kh * qw + kw] +=
                  qa[b][h * qw + w][c] * (rh[h - kh + qh - 1][c] + rw[w - kw + qw - 1][c]);
  EXPECT_TRUE(AllClose(attn, expected, 1e-12));
}

TEST(SamLayerNorm2dTest, NormalizesOverChannelsWithBiasedVariance) {
  SamLayerNorm2d norm(3, 1e-6);
  torch::NoGradGuard no_grad;
  norm->weight.copy_(torch::tensor({1.0f, 2.0f, 3.0f}));
  norm->bias.copy_(torch::tensor({0.5f, 0.0f, -1.0f}));
  const torch::Tensor x = torch::randn({2, 3, 4, 5});
  const torch::Tensor mean = x.mean(1, true);
  const torch::Tensor var = x.var(1, /*unbiased=*/false, /*keepdim=*/true);
  const torch::Tensor expected =
      (x - mean) / torch::sqrt(var + 1e-6) * norm->weight.view({-1, 1, 1}) +
      norm->bias.view({-1, 1, 1});
  EXPECT_TRUE(AllClose(norm->forward(x), expected, 1e-5));
}

// On demand (--gtest_also_run_disabled_tests): the real vit_b encoder on one 1024x1024 input,
// with random weights, to see that it is not needlessly slow.
TEST(SamImageEncoderTimingTest, DISABLED_VitBOn1024) {
  torch::set_num_threads(2);
  torch::NoGradGuard no_grad;
  SamImageEncoder encoder(SamConfig::VitB().image_encoder);
  encoder->eval();
  const torch::Tensor input = torch::randn({1, 3, 1024, 1024});
  c10::InferenceMode inference;
  for (int run = 0; run < 2; ++run) {
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor out = encoder->forward(input);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, 256, 64, 64}));
    std::cout << "  vit_b encoder, 1024x1024, " << torch::get_num_threads()
              << " threads: " << seconds << " s\n";
  }
}

}  // namespace
}  // namespace clisc::models
