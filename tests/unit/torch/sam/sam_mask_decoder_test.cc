// SamMaskDecoder (with the two-way transformer) against the official MaskDecoder: every case of
// the tiny model's goldens (decoder_io.pth) in multimask, single-mask and all-token form, the
// intermediates of the box_points case, batching of prompt sets against one embedding, the
// prompt encoder feeding the decoder, parameter names against the official manifests, and
// strict loading errors.
#include "workers/models/sam/sam_mask_decoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/torch_fixtures.h"
#include "workers/models/checkpoint_reader.h"
#include "workers/models/compute_device.h"
#include "workers/models/sam/sam_prompt_encoder.h"

namespace clisc::models {
namespace {

using ::clisc::testing::AllClose;
using ::clisc::testing::ExpectModuleMatchesManifest;
using ::clisc::testing::Fixture;
using ::clisc::testing::Goldens;
using ::clisc::testing::LoadGoldens;
using ::clisc::testing::MaxAbsDiff;
using ::clisc::testing::ReadManifest;

constexpr double kTolerance = 1e-4;  // fixture README section 6, tiny-model float tensors
// bf16 autocast: measured worst deviations 0.27 (mask logits up to 9) and 0.17 (IoU); the
// bounds leave about 2x headroom, and masks must agree wherever |golden logit| > the margin.
constexpr double kBf16MaskTolerance = 0.5;
constexpr double kBf16IouTolerance = 0.3;
constexpr double kBf16MaskMargin = 0.5;

SamMaskDecoderOptions TinyOptions() {
  SamMaskDecoderOptions options;
  options.transformer_dim = 32;
  options.num_multimask_outputs = 3;
  options.iou_head_depth = 3;
  options.iou_head_hidden_dim = 32;
  options.transformer_depth = 2;
  options.transformer_mlp_dim = 64;
  options.transformer_num_heads = 2;
  options.attention_downsample_rate = 2;
  return options;
}

template <typename ModuleHolder, typename Options>
ModuleHolder LoadTinyPart(const Options& options, const std::string& prefix) {
  ModuleHolder module(options);
  module->eval();
  auto dict = ReadCheckpoint(Fixture("sam/tiny_sam.pth"), {prefix});
  EXPECT_TRUE(dict.ok()) << dict.status().ToString();
  if (dict.ok()) {
    const Status loaded = LoadStateDict(*module, *dict, /*strict=*/true);
    EXPECT_TRUE(loaded.ok()) << loaded.ToString();
  }
  return module;
}

class SamMaskDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    path_ = Fixture("sam/decoder_io.pth");
  }

  // Loads the tiny decoder and the goldens; false (with a skip or failure recorded) otherwise.
  bool LoadFixtures() {
    if (!std::filesystem::exists(path_) || !std::filesystem::exists(Fixture("sam/tiny_sam.pth")))
      return false;
    decoder_ = LoadTinyPart<SamMaskDecoder>(TinyOptions(), "mask_decoder.");
    goldens_ = LoadGoldens(path_);
    return !HasFailure();
  }

  // Every case name with outputs in decoder_io.pth.
  std::set<std::string> Cases() const {
    std::set<std::string> cases;
    const std::string suffix = ".multi.masks";
    for (const auto& entry : goldens_) {
      const std::string& name = entry.first;
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        cases.insert(name.substr(0, name.size() - suffix.size()));
    }
    return cases;
  }

  const torch::Tensor& G(const std::string& name) const { return goldens_.at(name); }

  std::filesystem::path path_;
  SamMaskDecoder decoder_{nullptr};
  Goldens goldens_;
};

#define LOAD_OR_SKIP()                                  \
  do {                                                  \
    CLISC_REQUIRE_FIXTURE(path_);                       \
    CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth")); \
    ASSERT_TRUE(LoadFixtures());                        \
  } while (0)

TEST_F(SamMaskDecoderTest, MatchesEveryGoldenCase) {
  LOAD_OR_SKIP();
  const std::set<std::string> cases = Cases();
  for (const char* expected :
       {"points", "points_explicit_pad", "points_batch2", "box", "box_points", "mask_points",
        "mask_only", "empty", "box_as_points_labels23"}) {
    EXPECT_TRUE(cases.count(expected)) << "decoder_io.pth lacks case " << expected;
  }
  torch::NoGradGuard no_grad;
  double worst_masks = 0.0, worst_iou = 0.0;
  for (const std::string& name : cases) {
    SCOPED_TRACE("case " + name);
    const torch::Tensor& embeddings = G("image_embeddings");
    const torch::Tensor& pe = G("image_pe");
    const torch::Tensor& sparse = G(name + ".sparse");
    const torch::Tensor& dense = G(name + ".dense");
    for (const std::string mode : {"multi", "single", "all"}) {
      SCOPED_TRACE(mode);
      std::pair<torch::Tensor, torch::Tensor> out =
          mode == "all" ? decoder_->predict_masks(embeddings, pe, sparse, dense)
                        : decoder_(embeddings, pe, sparse, dense, mode == "multi");
      const torch::Tensor& want_masks = G(name + "." + mode + ".masks");
      const torch::Tensor& want_iou = G(name + "." + mode + ".iou");
      EXPECT_TRUE(AllClose(out.first, want_masks, kTolerance)) << "masks";
      EXPECT_TRUE(AllClose(out.second, want_iou, kTolerance)) << "iou";
      const double masks_diff = MaxAbsDiff(out.first, want_masks);
      const double iou_diff = MaxAbsDiff(out.second, want_iou);
      std::cout << "[ max dev  ] " << name << "." << mode << " masks " << out.first.sizes() << ": "
                << masks_diff << ", iou: " << iou_diff << "\n";
      worst_masks = std::max(worst_masks, masks_diff);
      worst_iou = std::max(worst_iou, iou_diff);
    }
  }
  RecordProperty("max_abs_deviation_masks", std::to_string(worst_masks));
  RecordProperty("max_abs_deviation_iou", std::to_string(worst_iou));
}

TEST_F(SamMaskDecoderTest, IntermediatesMatchForBoxPoints) {
  LOAD_OR_SKIP();
  torch::NoGradGuard no_grad;
  SamMaskDecoderTrace trace;
  decoder_->predict_masks(G("image_embeddings"), G("image_pe"), G("box_points.sparse"),
                          G("box_points.dense"), &trace);
  ASSERT_EQ(trace.transformer.layer_queries.size(), 2u);
  ASSERT_EQ(trace.transformer.layer_keys.size(), 2u);
  std::vector<std::pair<std::string, torch::Tensor>> checks;
  for (size_t i = 0; i < 2; ++i) {
    const std::string layer = "box_points.layer" + std::to_string(i);
    checks.emplace_back(layer + ".queries", trace.transformer.layer_queries[i]);
    checks.emplace_back(layer + ".keys", trace.transformer.layer_keys[i]);
  }
  checks.emplace_back("box_points.transformer.hs", trace.hs);
  checks.emplace_back("box_points.transformer.src", trace.src);
  checks.emplace_back("box_points.upscaled", trace.upscaled);
  for (const auto& [name, actual] : checks) {
    EXPECT_TRUE(AllClose(actual, G(name), kTolerance)) << name;
    std::cout << "[ max dev  ] " << name << " " << actual.sizes() << ": "
              << MaxAbsDiff(actual, G(name)) << "\n";
  }
}

// The predictor decodes many prompt sets against one embedding: a batch of prompt sets with
// the same token count must give each set's golden, whether the embedding is passed once or
// already repeated per set.
TEST_F(SamMaskDecoderTest, BatchedPromptSetsMatchTheirGoldens) {
  LOAD_OR_SKIP();
  torch::NoGradGuard no_grad;
  // Three-token cases (two of them from points_batch2) and two-token cases with unlike dense
  // embeddings (mask_points has a mask, box has none).
  for (const std::vector<std::string>& group :
       {std::vector<std::string>{"points_batch2", "points_explicit_pad", "box_as_points_labels23"},
        std::vector<std::string>{"mask_points", "box"}}) {
    std::vector<torch::Tensor> sparse, dense, want_masks, want_iou;
    for (const std::string& name : group) {
      sparse.push_back(G(name + ".sparse"));
      dense.push_back(G(name + ".dense"));
      want_masks.push_back(G(name + ".multi.masks"));
      want_iou.push_back(G(name + ".multi.iou"));
    }
    const torch::Tensor batch_sparse = torch::cat(sparse, 0);
    const int64_t batch = batch_sparse.size(0);
    SCOPED_TRACE("batch of " + std::to_string(batch) + " starting with " + group.front());
    const torch::Tensor& embeddings = G("image_embeddings");
    for (const torch::Tensor& shared_or_repeated :
         {embeddings, embeddings.repeat({batch, 1, 1, 1})}) {
      const auto [masks, iou] =
          decoder_(shared_or_repeated, G("image_pe"), batch_sparse, torch::cat(dense, 0), true);
      EXPECT_TRUE(AllClose(masks, torch::cat(want_masks, 0), kTolerance));
      EXPECT_TRUE(AllClose(iou, torch::cat(want_iou, 0), kTolerance));
    }
  }
}

// bf16 autocast on the CPU (what a worker runs with --precision bf16): the decoder runs its
// matmuls in bf16 and must stay close to the float32 goldens, with the same mask wherever the
// golden logit is not near the threshold.
TEST_F(SamMaskDecoderTest, Bf16AutocastStaysCloseToGoldens) {
  LOAD_OR_SKIP();
  torch::NoGradGuard no_grad;
  InferenceAutocast autocast(ComputeDevice{torch::kCPU, Precision::kBFloat16});
  double worst_masks = 0.0, worst_iou = 0.0;
  for (const std::string& name : Cases()) {
    SCOPED_TRACE("case " + name);
    const auto [masks, iou] = decoder_->predict_masks(G("image_embeddings"), G("image_pe"),
                                                      G(name + ".sparse"), G(name + ".dense"));
    const torch::Tensor& want = G(name + ".all.masks");
    const torch::Tensor confident = want.abs() > kBf16MaskMargin;
    EXPECT_TRUE(
        ((masks.to(torch::kFloat) > 0) == (want > 0)).logical_or(~confident).all().item<bool>())
        << "mask differs where |golden logit| > " << kBf16MaskMargin;
    worst_masks = std::max(worst_masks, MaxAbsDiff(masks, want));
    worst_iou = std::max(worst_iou, MaxAbsDiff(iou, G(name + ".all.iou")));
  }
  std::cout << "[ bf16 dev ] masks: " << worst_masks << ", iou: " << worst_iou << "\n";
  EXPECT_LE(worst_masks, kBf16MaskTolerance);
  EXPECT_LE(worst_iou, kBf16IouTolerance);
}

TEST_F(SamMaskDecoderTest, RejectsMismatchedBatches) {
  SamMaskDecoder decoder(TinyOptions());
  torch::NoGradGuard no_grad;
  const auto pe = torch::zeros({1, 32, 8, 8});
  const auto sparse = torch::zeros({3, 2, 32});
  const auto dense = torch::zeros({3, 32, 8, 8});
  EXPECT_THROW(decoder(torch::zeros({2, 32, 8, 8}), pe, sparse, dense, true), c10::Error);
  EXPECT_THROW(decoder(torch::zeros({1, 16, 8, 8}), pe, sparse, dense, true), c10::Error);
  EXPECT_THROW(decoder(torch::zeros({1, 32, 8, 8}), pe, torch::zeros({3, 2, 16}), dense, true),
               c10::Error);
  const auto [masks, iou] = decoder(torch::zeros({1, 32, 8, 8}), pe, sparse, dense, false);
  EXPECT_EQ(masks.sizes(), (torch::IntArrayRef{3, 1, 32, 32}));
  EXPECT_EQ(iou.sizes(), (torch::IntArrayRef{3, 1}));
}

// Prompt encoder output straight into the decoder, from the raw prompt inputs of prompt_io.pth.
TEST_F(SamMaskDecoderTest, PromptEncoderFeedsDecoder) {
  LOAD_OR_SKIP();
  const auto prompt_path = Fixture("sam/prompt_io.pth");
  CLISC_REQUIRE_FIXTURE(prompt_path);
  const Goldens prompts = LoadGoldens(prompt_path);
  SamPromptEncoderOptions options;
  options.embed_dim = 32;
  options.image_embedding_size = 8;
  options.input_image_size = 128;
  options.mask_in_chans = 16;
  SamPromptEncoder encoder = LoadTinyPart<SamPromptEncoder>(options, "prompt_encoder.");
  ASSERT_FALSE(HasFailure());
  torch::NoGradGuard no_grad;
  auto find = [&](const std::string& name) -> std::optional<torch::Tensor> {
    auto it = prompts.find(name);
    if (it == prompts.end()) return std::nullopt;
    return it->second;
  };
  const torch::Tensor pe = encoder->get_dense_pe();
  for (const std::string& name : Cases()) {
    SCOPED_TRACE("case " + name);
    std::optional<std::pair<torch::Tensor, torch::Tensor>> points;
    if (auto coords = find(name + ".coords"))
      points = std::make_pair(*coords, prompts.at(name + ".labels"));
    const auto [sparse, dense] = encoder(points, find(name + ".boxes"), find(name + ".masks"));
    const auto [masks, iou] = decoder_(G("image_embeddings"), pe, sparse, dense, false);
    EXPECT_TRUE(AllClose(masks, G(name + ".single.masks"), kTolerance));
    EXPECT_TRUE(AllClose(iou, G(name + ".single.iou"), kTolerance));
  }
}

TEST_F(SamMaskDecoderTest, ParametersMatchOfficialManifests) {
  for (const char* model : {"keys_vit_b.txt", "keys_vit_h.txt"}) {
    const auto manifest = Fixture(std::string("sam/") + model);
    CLISC_REQUIRE_FIXTURE(manifest);
    SCOPED_TRACE(model);
    ExpectModuleMatchesManifest(*SamMaskDecoder(SamMaskDecoderOptions{}), manifest,
                                "mask_decoder.");
  }
  const auto tiny = Fixture("sam/keys_tiny.txt");
  CLISC_REQUIRE_FIXTURE(tiny);
  ExpectModuleMatchesManifest(*SamMaskDecoder(TinyOptions()), tiny, "mask_decoder.");
}

TEST_F(SamMaskDecoderTest, StrictLoadNamesMissingAndMisshapenKeys) {
  const auto path = Fixture("sam/tiny_sam.pth");
  CLISC_REQUIRE_FIXTURE(path);
  auto dict = ReadCheckpoint(path, {"mask_decoder."});
  ASSERT_TRUE(dict.ok()) << dict.status().ToString();
  const std::string victim = "transformer.layers.1.cross_attn_image_to_token.v_proj.bias";

  StateDict missing;
  for (const auto& entry : *dict) {
    if (entry.first != victim) missing.push_back(entry);
  }
  ASSERT_EQ(missing.size() + 1, dict->size());
  SamMaskDecoder decoder(TinyOptions());
  const Status missing_status = LoadStateDict(*decoder, missing, /*strict=*/true);
  EXPECT_EQ(missing_status.code(), StatusCode::kNotFound) << missing_status.ToString();
  EXPECT_NE(missing_status.message().find(victim), std::string::npos) << missing_status.ToString();

  const std::string reshaped = "output_hypernetworks_mlps.2.layers.2.weight";
  StateDict misshapen = *dict;
  bool found = false;
  for (auto& entry : misshapen) {
    if (entry.first == reshaped) {
      entry.second = torch::zeros({8, 32});
      found = true;
    }
  }
  ASSERT_TRUE(found);
  const Status shape_status = LoadStateDict(*decoder, misshapen, /*strict=*/true);
  EXPECT_EQ(shape_status.code(), StatusCode::kInvalidArgument) << shape_status.ToString();
  EXPECT_NE(shape_status.message().find(reshaped), std::string::npos) << shape_status.ToString();
}

}  // namespace
}  // namespace clisc::models
