// SamPromptEncoder against the official PromptEncoder: every prompt case of the tiny model's
// goldens (prompt_io.pth), get_dense_pe(), parameter names and shapes against the official
// manifests, and strict loading errors.
#include "workers/models/sam/sam_prompt_encoder.h"

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
// The mask path's convolutions under bf16 autocast: measured 0.0074, about 4x headroom.
constexpr double kBf16DenseTolerance = 0.03;

SamPromptEncoderOptions TinyOptions() {
  SamPromptEncoderOptions options;
  options.embed_dim = 32;
  options.image_embedding_size = 8;
  options.input_image_size = 128;
  options.mask_in_chans = 16;
  return options;
}

class SamPromptEncoderTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(2); }

  // The tiny encoder with the official weights, or a fatal failure.
  static SamPromptEncoder LoadTiny() {
    SamPromptEncoder encoder(TinyOptions());
    encoder->eval();
    auto dict = ReadCheckpoint(Fixture("sam/tiny_sam.pth"), {"prompt_encoder."});
    EXPECT_TRUE(dict.ok()) << dict.status().ToString();
    if (dict.ok()) {
      const Status loaded = LoadStateDict(*encoder, *dict, /*strict=*/true);
      EXPECT_TRUE(loaded.ok()) << loaded.ToString();
    }
    return encoder;
  }

  static std::optional<torch::Tensor> Find(const Goldens& goldens, const std::string& name) {
    auto it = goldens.find(name);
    if (it == goldens.end()) return std::nullopt;
    return it->second;
  }
};

TEST_F(SamPromptEncoderTest, MatchesEveryGoldenPromptCase) {
  const auto path = Fixture("sam/prompt_io.pth");
  CLISC_REQUIRE_FIXTURE(path);
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  SamPromptEncoder encoder = LoadTiny();
  ASSERT_FALSE(HasFailure());
  const Goldens goldens = LoadGoldens(path);

  std::set<std::string> cases;
  for (const auto& [name, tensor] : goldens) {
    const auto dot = name.rfind(".sparse");
    if (dot != std::string::npos && dot + 7 == name.size()) cases.insert(name.substr(0, dot));
  }
  // The cases the fixture README lists; the loop below also runs any case added later.
  for (const char* expected :
       {"points", "points_explicit_pad", "points_batch2", "box", "box_points", "mask_points",
        "mask_only", "empty", "box_as_points_labels23"}) {
    EXPECT_TRUE(cases.count(expected)) << "prompt_io.pth lacks case " << expected;
  }

  torch::NoGradGuard no_grad;
  double worst = 0.0;
  for (const std::string& name : cases) {
    SCOPED_TRACE("case " + name);
    std::optional<std::pair<torch::Tensor, torch::Tensor>> points;
    const auto coords = Find(goldens, name + ".coords");
    const auto labels = Find(goldens, name + ".labels");
    ASSERT_EQ(coords.has_value(), labels.has_value());
    if (coords) points = std::make_pair(*coords, *labels);
    const auto boxes = Find(goldens, name + ".boxes");
    const auto masks = Find(goldens, name + ".masks");

    const auto [sparse, dense] = encoder(points, boxes, masks);
    const torch::Tensor& want_sparse = goldens.at(name + ".sparse");
    const torch::Tensor& want_dense = goldens.at(name + ".dense");
    EXPECT_TRUE(AllClose(sparse, want_sparse, kTolerance)) << "sparse";
    EXPECT_TRUE(AllClose(dense, want_dense, kTolerance)) << "dense";
    EXPECT_EQ(sparse.scalar_type(), torch::kFloat);
    EXPECT_EQ(dense.scalar_type(), torch::kFloat);
    const double diff = std::max(MaxAbsDiff(sparse, want_sparse), MaxAbsDiff(dense, want_dense));
    std::cout << "[ max dev  ] " << name << " sparse " << sparse.sizes() << ": " << diff << "\n";
    worst = std::max(worst, diff);
  }
  RecordProperty("max_abs_deviation", std::to_string(worst));
}

TEST_F(SamPromptEncoderTest, DensePeMatchesGolden) {
  const auto path = Fixture("sam/prompt_io.pth");
  CLISC_REQUIRE_FIXTURE(path);
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  SamPromptEncoder encoder = LoadTiny();
  ASSERT_FALSE(HasFailure());
  const Goldens goldens = LoadGoldens(path);
  torch::NoGradGuard no_grad;
  const torch::Tensor pe = encoder->get_dense_pe();
  EXPECT_TRUE(AllClose(pe, goldens.at("dense_pe"), kTolerance));
  std::cout << "[ max dev  ] dense_pe: " << MaxAbsDiff(pe, goldens.at("dense_pe")) << "\n";
}

// The predictor encodes many prompt sets at once: each row of a batch must equal the same
// prompt encoded alone (and the golden where one exists).
TEST_F(SamPromptEncoderTest, BatchRowsEqualSinglePrompts) {
  const auto path = Fixture("sam/prompt_io.pth");
  CLISC_REQUIRE_FIXTURE(path);
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  SamPromptEncoder encoder = LoadTiny();
  ASSERT_FALSE(HasFailure());
  const Goldens goldens = LoadGoldens(path);
  torch::NoGradGuard no_grad;

  // Three box+points prompt sets: the golden one and two shifted copies, with masks.
  const torch::Tensor coords = goldens.at("box_points.coords");
  const torch::Tensor labels = goldens.at("box_points.labels");
  const torch::Tensor boxes = goldens.at("box_points.boxes");
  const torch::Tensor mask = goldens.at("mask_points.masks");
  const torch::Tensor batch_coords = torch::cat({coords, coords + 3.25, coords * 0.5}, 0);
  const torch::Tensor batch_labels = torch::cat({labels, labels.flip(1), labels}, 0);
  const torch::Tensor batch_boxes = torch::cat({boxes, boxes + 7.0, boxes * 0.75}, 0);
  const torch::Tensor batch_masks = torch::cat({mask, -mask, mask * 0.5}, 0);
  const auto [sparse, dense] =
      encoder(std::make_pair(batch_coords, batch_labels), batch_boxes, batch_masks);
  ASSERT_EQ(sparse.sizes(), (torch::IntArrayRef{3, 7, 32}));
  ASSERT_EQ(dense.sizes(), (torch::IntArrayRef{3, 32, 8, 8}));
  EXPECT_TRUE(AllClose(sparse.slice(0, 0, 1), goldens.at("box_points.sparse"), kTolerance));
  for (int64_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("row " + std::to_string(i));
    const auto [one_sparse, one_dense] =
        encoder(std::make_pair(batch_coords.slice(0, i, i + 1), batch_labels.slice(0, i, i + 1)),
                batch_boxes.slice(0, i, i + 1), batch_masks.slice(0, i, i + 1));
    EXPECT_TRUE(AllClose(sparse.slice(0, i, i + 1), one_sparse, 1e-6));
    EXPECT_TRUE(AllClose(dense.slice(0, i, i + 1), one_dense, 1e-6));
  }

  // Without a mask the dense embedding is no_mask_embed for every row of the batch.
  const auto [unused, no_mask_dense] =
      encoder(std::make_pair(batch_coords, batch_labels), std::nullopt, std::nullopt);
  ASSERT_EQ(no_mask_dense.sizes(), (torch::IntArrayRef{3, 32, 8, 8}));
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_TRUE(AllClose(no_mask_dense.slice(0, i, i + 1), goldens.at("empty.dense"), kTolerance));
}

// Under bf16 autocast the Fourier features stay float32, so the sparse tokens and the dense PE
// still match the float32 goldens; only the mask path runs its convolutions in bf16.
TEST_F(SamPromptEncoderTest, PositionalEncodingStaysFloat32UnderBf16Autocast) {
  const auto path = Fixture("sam/prompt_io.pth");
  CLISC_REQUIRE_FIXTURE(path);
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  SamPromptEncoder encoder = LoadTiny();
  ASSERT_FALSE(HasFailure());
  const Goldens goldens = LoadGoldens(path);
  torch::NoGradGuard no_grad;
  InferenceAutocast autocast(ComputeDevice{torch::kCPU, Precision::kBFloat16});
  const torch::Tensor pe = encoder->get_dense_pe();
  EXPECT_EQ(pe.scalar_type(), torch::kFloat);
  EXPECT_TRUE(AllClose(pe, goldens.at("dense_pe"), kTolerance));
  for (const std::string name : {"box_points", "points_batch2", "mask_points"}) {
    SCOPED_TRACE(name);
    std::optional<torch::Tensor> boxes, masks;
    if (goldens.count(name + ".boxes")) boxes = goldens.at(name + ".boxes");
    if (goldens.count(name + ".masks")) masks = goldens.at(name + ".masks");
    const auto [sparse, dense] = encoder(
        std::make_pair(goldens.at(name + ".coords"), goldens.at(name + ".labels")), boxes, masks);
    EXPECT_EQ(sparse.scalar_type(), torch::kFloat);
    EXPECT_TRUE(AllClose(sparse, goldens.at(name + ".sparse"), kTolerance));
    std::cout << "[ bf16 dev ] " << name
              << " sparse: " << MaxAbsDiff(sparse, goldens.at(name + ".sparse"))
              << ", dense: " << MaxAbsDiff(dense, goldens.at(name + ".dense")) << "\n";
    EXPECT_TRUE(AllClose(dense, goldens.at(name + ".dense"), kBf16DenseTolerance));
  }
}

TEST_F(SamPromptEncoderTest, RejectsMalformedPrompts) {
  SamPromptEncoder encoder(TinyOptions());
  torch::NoGradGuard no_grad;
  const auto coords = torch::zeros({1, 2, 3});
  const auto labels = torch::ones({1, 2}, torch::kInt);
  EXPECT_THROW(encoder(std::make_pair(coords, labels), std::nullopt, std::nullopt), c10::Error);
  EXPECT_THROW(encoder(std::make_pair(torch::zeros({1, 2, 2}), torch::ones({1, 3}, torch::kInt)),
                       std::nullopt, std::nullopt),
               c10::Error);
  EXPECT_THROW(encoder(std::nullopt, std::nullopt, torch::zeros({1, 1, 16, 16})), c10::Error);
  EXPECT_THROW(encoder(std::make_pair(torch::zeros({2, 1, 2}), torch::ones({2, 1}, torch::kInt)),
                       torch::zeros({1, 4}), std::nullopt),
               c10::Error);
}

TEST_F(SamPromptEncoderTest, ParametersMatchOfficialManifests) {
  for (const char* model : {"keys_vit_b.txt", "keys_vit_h.txt"}) {
    const auto manifest = Fixture(std::string("sam/") + model);
    CLISC_REQUIRE_FIXTURE(manifest);
    SCOPED_TRACE(model);
    ExpectModuleMatchesManifest(*SamPromptEncoder(SamPromptEncoderOptions{}), manifest,
                                "prompt_encoder.");
  }
  const auto tiny = Fixture("sam/keys_tiny.txt");
  CLISC_REQUIRE_FIXTURE(tiny);
  ExpectModuleMatchesManifest(*SamPromptEncoder(TinyOptions()), tiny, "prompt_encoder.");
}

TEST_F(SamPromptEncoderTest, StrictLoadNamesMissingAndMisshapenKeys) {
  const auto path = Fixture("sam/tiny_sam.pth");
  CLISC_REQUIRE_FIXTURE(path);
  auto dict = ReadCheckpoint(path, {"prompt_encoder."});
  ASSERT_TRUE(dict.ok()) << dict.status().ToString();
  const std::string victim = "mask_downscaling.4.weight";

  StateDict missing;
  for (const auto& entry : *dict) {
    if (entry.first != victim) missing.push_back(entry);
  }
  ASSERT_EQ(missing.size() + 1, dict->size());
  SamPromptEncoder encoder(TinyOptions());
  const Status missing_status = LoadStateDict(*encoder, missing, /*strict=*/true);
  EXPECT_EQ(missing_status.code(), StatusCode::kNotFound) << missing_status.ToString();
  EXPECT_NE(missing_status.message().find(victim), std::string::npos) << missing_status.ToString();

  StateDict misshapen = *dict;
  for (auto& entry : misshapen) {
    if (entry.first == "pe_layer.positional_encoding_gaussian_matrix")
      entry.second = torch::zeros({2, 8});
  }
  const Status shape_status = LoadStateDict(*encoder, misshapen, /*strict=*/true);
  EXPECT_EQ(shape_status.code(), StatusCode::kInvalidArgument) << shape_status.ToString();
  EXPECT_NE(shape_status.message().find("pe_layer.positional_encoding_gaussian_matrix"),
            std::string::npos)
      << shape_status.ToString();

  // The default (vit) sizes refuse the tiny weights, naming a key.
  SamPromptEncoder vit_sized(SamPromptEncoderOptions{});
  const Status wrong_model = LoadStateDict(*vit_sized, *dict, /*strict=*/true);
  EXPECT_EQ(wrong_model.code(), StatusCode::kInvalidArgument) << wrong_model.ToString();
  EXPECT_NE(wrong_model.message().find("shape mismatch for '"), std::string::npos)
      << wrong_model.ToString();
}

}  // namespace
}  // namespace clisc::models
