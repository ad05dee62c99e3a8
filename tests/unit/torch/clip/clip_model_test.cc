// The CLIP network against the official goldens (fixtures/clip): the tiny model loaded from its
// OrderedDict state dict and from its TorchScript archive reproduces every recorded intermediate,
// the features and the logits; the released ViT-B configurations have exactly the manifests'
// parameter names and shapes; configs are inferred as build_model does; bad checkpoints fail
// with clear errors.
#include "workers/models/clip/clip_model.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "tests/support/torch_fixtures.h"
#include "workers/models/checkpoint_reader.h"
#include "workers/models/clip/clip_config.h"

namespace clisc::models {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::AllClose;
using ::clisc::testing::Fixture;
using ::clisc::testing::LoadGoldens;
using ::clisc::testing::ReadManifest;

// README section 3 tolerances: features and intermediates atol 1e-5 rtol 1e-5, logits atol 1e-4.
constexpr double kFeatureTol = 1e-5;
constexpr double kLogitTol = 1e-4;

ClipConfig TinyConfig() {
  StatusOr<ClipConfig> config = ClipConfig::FromJsonFile(Fixture("clip/tiny_clip_config.json"));
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? *config : ClipConfig{};
}

// A state dict with the manifest's names and shapes; the values are a broadcast zero, so even
// ViT-B (150 M values) costs no memory.
StateDict StateDictFromManifest(const fs::path& manifest) {
  StateDict state;
  for (const auto& entry : ReadManifest(manifest)) {
    state.emplace_back(
        entry.name, entry.shape.empty() ? torch::zeros({}) : torch::zeros({1}).expand(entry.shape));
  }
  return state;
}

class ClipModelTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(2); }
};

// Runs the tiny model on the golden inputs and compares everything clip_io.pth records.
void ExpectReproducesGoldens(Clip& model) {
  const testing::Goldens golden = LoadGoldens(Fixture("clip/clip_io.pth"));
  torch::NoGradGuard no_grad;
  ClipActivations taps;
  const torch::Tensor image_features = model->EncodeImage(golden.at("images"), &taps);
  const torch::Tensor text_features = model->EncodeText(golden.at("text_tokens"), &taps);
  for (const char* name : {"visual_conv1", "visual_ln_pre", "visual_block0", "visual_block1",
                           "visual_ln_post", "encode_image", "text_embed_plus_pos", "text_block0",
                           "text_block1", "text_ln_final", "encode_text"}) {
    ASSERT_TRUE(taps.count(name)) << name;
    EXPECT_TRUE(AllClose(taps.at(name), golden.at(name), kFeatureTol, kFeatureTol)) << name;
  }
  EXPECT_TRUE(torch::equal(taps.at("text_eot_index"), golden.at("text_eot_index")));
  double worst_feature = 0;
  for (const auto& [name, value] : taps) {
    if (name != "text_eot_index")
      worst_feature = std::max(worst_feature, (value - golden.at(name)).abs().max().item<double>());
  }

  EXPECT_TRUE(AllClose(model->logit_scale.exp(), golden.at("logit_scale_exp"), 1e-6));
  const torch::Tensor logits = model->LogitsFromFeatures(image_features, text_features);
  EXPECT_TRUE(AllClose(logits, golden.at("logits_per_image"), kLogitTol));
  std::cout << "max |deviation| from the goldens: intermediates and features " << worst_feature
            << ", logits " << (logits - golden.at("logits_per_image")).abs().max().item<double>()
            << "\n";
  EXPECT_TRUE(AllClose(logits.t(), golden.at("logits_per_text"), kLogitTol));
  EXPECT_TRUE(AllClose(logits.softmax(-1), golden.at("softmax_per_image"), 1e-5));
  EXPECT_TRUE(AllClose(image_features / image_features.norm(2, 1, true),
                       golden.at("image_features_normed"), kFeatureTol, kFeatureTol));
  EXPECT_TRUE(AllClose(text_features / text_features.norm(2, 1, true),
                       golden.at("text_features_normed"), kFeatureTol, kFeatureTol));

  // model(images, tokens[:2]), the quantity CLISC thresholds, with int64 ids this time.
  const torch::Tensor two_prompts =
      model->forward(golden.at("images"), golden.at("text_tokens_i64").slice(0, 0, 2));
  EXPECT_TRUE(AllClose(two_prompts, golden.at("clisc_logits_2prompts"), kLogitTol));
  EXPECT_TRUE(AllClose(two_prompts.softmax(-1), golden.at("clisc_probs_2prompts"), 1e-5));

  // A batch of one gives the same features as the batch of three (README: within 6e-7).
  const torch::Tensor single = model->EncodeImage(golden.at("images").slice(0, 1, 2));
  EXPECT_TRUE(AllClose(single, golden.at("encode_image").slice(0, 1, 2), kFeatureTol, kFeatureTol));
}

TEST_F(ClipModelTest, TinyModelFromStateDictReproducesGoldens) {
  const fs::path path = Fixture("clip/tiny_clip_state_dict.pth");
  CLISC_REQUIRE_FIXTURE(path);
  CLISC_REQUIRE_FIXTURE(Fixture("clip/clip_io.pth"));
  StatusOr<Clip> model = LoadClip(path, ComputeDevice{}, TinyConfig());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_FALSE((*model)->is_training());
  ExpectReproducesGoldens(*model);
}

TEST_F(ClipModelTest, TinyModelFromTorchScriptArchiveReproducesGoldens) {
  const fs::path path = Fixture("clip/tiny_clip_jit.pt");
  CLISC_REQUIRE_FIXTURE(path);
  CLISC_REQUIRE_FIXTURE(Fixture("clip/clip_io.pth"));
  // The archive's input_resolution, context_length and vocab_size buffers are dropped; a strict
  // load would fail on them otherwise.
  StatusOr<Clip> model = LoadClip(path, ComputeDevice{}, TinyConfig());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ExpectReproducesGoldens(*model);
}

TEST_F(ClipModelTest, TinyModelCannotBeInferredLikeBuildModel) {
  const fs::path path = Fixture("clip/tiny_clip_state_dict.pth");
  CLISC_REQUIRE_FIXTURE(path);
  // build_model derives text heads = 32 // 64 = 0 (README section 2): refused, with a hint.
  StatusOr<Clip> model = LoadClip(path, ComputeDevice{});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("0 heads"), std::string::npos)
      << model.status().ToString();
}

TEST_F(ClipModelTest, TinyConfigFromJson) {
  const fs::path path = Fixture("clip/tiny_clip_config.json");
  CLISC_REQUIRE_FIXTURE(path);
  const ClipConfig config = TinyConfig();
  EXPECT_EQ(config.embed_dim, 32);
  EXPECT_EQ(config.image_resolution, 64);
  EXPECT_EQ(config.vision_layers, 2);
  EXPECT_EQ(config.vision_width, 128);
  EXPECT_EQ(config.vision_heads(), 2);
  EXPECT_EQ(config.vision_patch_size, 16);
  EXPECT_EQ(config.grid(), 4);
  EXPECT_EQ(config.context_length, 77);
  EXPECT_EQ(config.vocab_size, 49408);
  EXPECT_EQ(config.transformer_width, 32);
  EXPECT_EQ(config.transformer_heads, 2);
  EXPECT_EQ(config.transformer_layers, 2);
  EXPECT_EQ(config.Name(), "ViT w128 l2 p16 r64, text w32 l2 h2, embed 32");

  EXPECT_EQ(ClipConfig::FromJson("{\"embed_dim\": 32}").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ClipConfig::FromJson("not json").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClipConfig::FromJsonFile("/nonexistent/config.json").status().code(),
            StatusCode::kNotFound);
}

// The released configurations build modules whose state has exactly the manifest's names and
// shapes, and build_model-style inference on a state dict of those shapes (plus the three keys
// of OpenAI's TorchScript archives) gives the configuration back.
void ExpectConfigMatchesManifest(const ClipConfig& config, const std::string& name,
                                 const fs::path& manifest) {
  EXPECT_EQ(config.Name(), name);
  Clip model(config);
  testing::ExpectModuleMatchesManifest(*model, manifest);

  StateDict state = StateDictFromManifest(manifest);
  for (const char* key : {"input_resolution", "context_length", "vocab_size"})
    state.emplace_back(key, torch::zeros({}, torch::kLong));
  StatusOr<ClipConfig> inferred = ClipConfig::InferFromStateDict(state);
  ASSERT_TRUE(inferred.ok()) << inferred.status().ToString();
  EXPECT_EQ(*inferred, config);
  EXPECT_EQ(inferred->Name(), name);
}

TEST_F(ClipModelTest, ViTB32MatchesManifest) {
  const fs::path manifest = Fixture("clip/keys_ViT-B-32.txt");
  CLISC_REQUIRE_FIXTURE(manifest);
  EXPECT_EQ(ReadManifest(manifest).size(), 302u);
  ExpectConfigMatchesManifest(ClipConfig::ViTB32(), "ViT-B/32", manifest);
}

TEST_F(ClipModelTest, ViTB16MatchesManifest) {
  const fs::path manifest = Fixture("clip/keys_ViT-B-16.txt");
  CLISC_REQUIRE_FIXTURE(manifest);
  ExpectConfigMatchesManifest(ClipConfig::ViTB16(), "ViT-B/16", manifest);
}

TEST_F(ClipModelTest, InferredTinyShapesExceptHeads) {
  const fs::path path = Fixture("clip/tiny_clip_state_dict.pth");
  CLISC_REQUIRE_FIXTURE(path);
  StatusOr<StateDict> state = ReadCheckpoint(path);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  // Widen the text tower's ln_final as if the width were 64: inference then reads every other
  // hyperparameter of the tiny model from the shapes.
  for (auto& [name, tensor] : *state) {
    if (name == "ln_final.weight") tensor = torch::zeros({64});
  }
  StatusOr<ClipConfig> inferred = ClipConfig::InferFromStateDict(*state);
  ASSERT_TRUE(inferred.ok()) << inferred.status().ToString();
  ClipConfig expected = TinyConfig();
  expected.transformer_width = 64;
  expected.transformer_heads = 1;
  EXPECT_EQ(*inferred, expected);
}

// A ModifiedResNet (RN50-style) image tower: no visual.proj, visual.layerN and visual.attnpool.
StateDict ModifiedResNetLikeStateDict() {
  StateDict state;
  state.emplace_back("positional_embedding", torch::zeros({77, 64}));
  state.emplace_back("text_projection", torch::zeros({64, 32}));
  state.emplace_back("logit_scale", torch::zeros({}));
  state.emplace_back("visual.conv1.weight", torch::zeros({32, 3, 3, 3}));
  state.emplace_back("visual.layer1.0.conv1.weight", torch::zeros({64, 64, 1, 1}));
  state.emplace_back("visual.attnpool.positional_embedding", torch::zeros({50, 256}));
  state.emplace_back("token_embedding.weight", torch::zeros({49408, 64}));
  state.emplace_back("ln_final.weight", torch::zeros({64}));
  return state;
}

// Writes `state` as a TorchScript archive whose module tree follows the dotted names.
void SaveAsTorchScript(const StateDict& state, const fs::path& path) {
  int next_type = 0;
  auto new_module = [&] {
    return torch::jit::Module("__torch__.ClipTestModule" + std::to_string(next_type++));
  };
  torch::jit::Module root = new_module();
  for (const auto& [name, tensor] : state) {
    torch::jit::Module at = root;
    std::string rest = name;
    for (size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1)) {
      const std::string child = rest.substr(0, dot);
      if (!at.hasattr(child)) at.register_module(child, new_module());
      at = at.attr(child).toModule();
    }
    at.register_parameter(rest, tensor, /*is_buffer=*/false);
  }
  root.save(path.string());
}

TEST_F(ClipModelTest, ModifiedResNetIsUnimplemented) {
  StatusOr<ClipConfig> inferred = ClipConfig::InferFromStateDict(ModifiedResNetLikeStateDict());
  ASSERT_FALSE(inferred.ok());
  EXPECT_EQ(inferred.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(inferred.status().message().find("ModifiedResNet"), std::string::npos);
  EXPECT_NE(inferred.status().message().find("visual.layer1.0.conv1.weight"), std::string::npos)
      << inferred.status().ToString();

  // The same through LoadClip on a TorchScript archive, the form OpenAI ships RN50.pt in, even
  // when a ViT config is forced.
  const fs::path path =
      fs::temp_directory_path() / ("clisc_clip_rn_" + std::to_string(::getpid()) + ".pt");
  SaveAsTorchScript(ModifiedResNetLikeStateDict(), path);
  StatusOr<Clip> model = LoadClip(path, ComputeDevice{}, ClipConfig::ViTB32());
  fs::remove(path);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented) << model.status().ToString();
  EXPECT_NE(model.status().message().find("visual.attnpool.positional_embedding"),
            std::string::npos)
      << model.status().ToString();
}

TEST_F(ClipModelTest, MissingCheckpointIsNotFound) {
  StatusOr<Clip> model = LoadClip("/nonexistent/ViT-B-32.pt", ComputeDevice{});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kNotFound) << model.status().ToString();
}

TEST_F(ClipModelTest, WrongConfigNamesTheMismatch) {
  const fs::path path = Fixture("clip/tiny_clip_state_dict.pth");
  CLISC_REQUIRE_FIXTURE(path);
  ClipConfig config = TinyConfig();
  config.embed_dim = 48;
  StatusOr<Clip> model = LoadClip(path, ComputeDevice{}, config);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument) << model.status().ToString();
  EXPECT_NE(model.status().message().find("shape mismatch"), std::string::npos)
      << model.status().ToString();
}

TEST_F(ClipModelTest, WrongInputShapesThrow) {
  Clip model(ClipConfig{.embed_dim = 8,
                        .image_resolution = 32,
                        .vision_layers = 1,
                        .vision_width = 64,
                        .vision_patch_size = 16,
                        .context_length = 77,
                        .vocab_size = 100,
                        .transformer_width = 16,
                        .transformer_heads = 2,
                        .transformer_layers = 1});
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->EncodeImage(torch::zeros({2, 3, 32, 32})).sizes(), (torch::IntArrayRef{2, 8}));
  EXPECT_THROW(model->EncodeImage(torch::zeros({2, 3, 64, 64})), c10::Error);
  EXPECT_THROW(model->EncodeText(torch::zeros({2, 20}, torch::kLong)), c10::Error);
  EXPECT_THROW(model->EncodeText(torch::zeros({2, 77})), c10::Error);
}

}  // namespace
}  // namespace clisc::models
