// SamConfig and LoadSam: the official builders' module trees against the key manifests, the tiny
// config from tiny_config.json against its manifest, config validation, loading tiny_sam.pth
// (OrderedDict) and tiny_sam_plain.pth, wrapped training checkpoints, and the error for a
// checkpoint of another size.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/serialize.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "tests/support/torch_fixtures.h"
#include "tests/unit/torch/sam/sam_tiny_model.h"
#include "workers/models/sam/sam_model.h"

namespace clisc::models {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::ExpectModuleMatchesManifest;
using ::clisc::testing::Fixture;

class SamConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    dir_ = fs::temp_directory_path() / ("clisc_sam_config_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Builds the model for `config`, compares it with the manifest and frees it at once.
  void ExpectBuilderMatches(const SamConfig& config, const std::string& manifest) {
    CLISC_REQUIRE_FIXTURE(Fixture(manifest));
    const auto start = std::chrono::steady_clock::now();
    torch::NoGradGuard no_grad;
    Sam sam(config);
    ExpectModuleMatchesManifest(*sam, Fixture(manifest));
    int64_t elements = 0;
    for (const auto& p : sam->parameters()) elements += p.numel();
    for (const auto& b : sam->buffers()) elements += b.numel();
    std::cout << "  " << config.model_type << ": " << elements << " elements, built in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
              << " s\n";
  }

  // Saves `module`'s parameters as a TorchScript archive, which ReadCheckpoint reads by name.
  fs::path Save(const std::shared_ptr<torch::nn::Module>& module, const std::string& name) {
    const fs::path path = dir_ / name;
    torch::save(module, path.string());
    return path;
  }

  // Writes `root` as Python's torch.save does: a zip archive whose data.pkl holds plain dicts
  // (torch::pickle_save would add TorchScript type tags) and one record per storage.
  static void SaveAsPythonWould(const c10::IValue& root, const fs::path& path) {
    std::string pickled;
    int64_t next_id = 0;
    torch::jit::Pickler pickler([&](const char* data, size_t size) { pickled.append(data, size); },
                                nullptr, nullptr, nullptr,
                                [&](const at::Tensor&) { return std::to_string(next_id++); },
                                /*tag_aggregates=*/false);
    pickler.protocol();
    pickler.pushIValue(root);
    pickler.stop();
    caffe2::serialize::PyTorchStreamWriter writer(path.string());
    writer.writeRecord("data.pkl", pickled.data(), pickled.size());
    const std::vector<at::Tensor>& tensors = pickler.tensorData();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto data = torch::jit::getWriteableTensorData(tensors[i]);
      writer.writeRecord("data/" + std::to_string(i), data.data(), data.sizeInBytes());
    }
    writer.writeEndOfFile();
  }

  fs::path dir_;
};

TEST_F(SamConfigTest, VitBMatchesTheOfficialStateDict) {
  ExpectBuilderMatches(SamConfig::VitB(), "sam/keys_vit_b.txt");
}
TEST_F(SamConfigTest, VitLMatchesTheOfficialStateDict) {
  ExpectBuilderMatches(SamConfig::VitL(), "sam/keys_vit_l.txt");
}
TEST_F(SamConfigTest, VitHMatchesTheOfficialStateDict) {
  ExpectBuilderMatches(SamConfig::VitH(), "sam/keys_vit_h.txt");
}
TEST_F(SamConfigTest, TinyConfigMatchesItsManifest) {
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_config.json"));
  ExpectBuilderMatches(testing::TinySamConfig(), "sam/keys_tiny.txt");
}

TEST_F(SamConfigTest, BuildersAndNames) {
  const SamConfig b = SamConfig::VitB(), l = SamConfig::VitL(), h = SamConfig::VitH();
  EXPECT_EQ(b.image_encoder.embed_dim, 768);
  EXPECT_EQ(l.image_encoder.depth, 24);
  EXPECT_EQ(h.image_encoder.num_heads, 16);
  EXPECT_EQ(h.image_encoder.global_attn_indexes, (std::vector<int64_t>{7, 15, 23, 31}));
  EXPECT_EQ(h.image_encoder.head_dim(), 80);
  EXPECT_EQ(b.low_res_size(), 256);
  for (const SamConfig& c : {b, l, h}) {
    EXPECT_TRUE(c.Validate().ok()) << c.model_type;
    auto named = SamConfig::FromName(c.model_type);
    ASSERT_TRUE(named.ok());
    EXPECT_EQ(named->image_encoder.embed_dim, c.image_encoder.embed_dim);
  }
  EXPECT_EQ(SamConfig::FromName("default")->model_type, "vit_h");  // the official registry
  const auto unknown = SamConfig::FromName("vit_x");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("vit_b"), std::string::npos);
}

TEST_F(SamConfigTest, ValidateRefusesPartsThatDoNotFit) {
  SamConfig config = SamConfig::VitB();
  config.prompt_encoder.image_embedding_size = 32;
  EXPECT_EQ(config.Validate().code(), StatusCode::kInvalidArgument);
  config = SamConfig::VitB();
  config.mask_decoder.transformer_dim = 128;
  EXPECT_EQ(config.Validate().code(), StatusCode::kInvalidArgument);
  config = SamConfig::VitB();
  config.image_encoder.global_attn_indexes = {12};
  EXPECT_EQ(config.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_THROW(Sam{config}, c10::Error);
}

TEST_F(SamConfigTest, LoadsTheTinyCheckpointInBothFormats) {
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam_plain.pth"));
  const SamConfig config = testing::TinySamConfig();
  auto ordered = LoadSam(Fixture("sam/tiny_sam.pth"), config, ComputeDevice{});
  ASSERT_TRUE(ordered.ok()) << ordered.status().ToString();
  auto plain = LoadSam(Fixture("sam/tiny_sam_plain.pth"), config, ComputeDevice{});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE((*ordered)->is_training());
  auto file = ReadCheckpoint(Fixture("sam/tiny_sam.pth"));
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(file->size(), 202u);
  std::map<std::string, torch::Tensor> ours;
  for (const auto& p : (*ordered)->named_parameters()) ours[p.key()] = p.value();
  for (const auto& b : (*ordered)->named_buffers()) ours[b.key()] = b.value();
  EXPECT_EQ(ours.size(), 202u);  // pixel_mean and pixel_std are constants, not state
  for (const auto& [name, tensor] : *file) {
    ASSERT_TRUE(ours.count(name)) << name;
    EXPECT_TRUE(torch::equal(ours[name], tensor)) << name;
  }
  for (const auto& p : (*plain)->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), ours[p.key()])) << p.key();
}

TEST_F(SamConfigTest, AcceptsWrappedTrainingCheckpoints) {
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  const SamConfig config = testing::TinySamConfig();
  Sam reference{nullptr};
  ASSERT_NO_FATAL_FAILURE(testing::LoadTinySam(reference));
  // {"model": sam} and {"module": sam}, as a training script or DataParallel saves them.
  for (const std::string wrapper : {"model", "module"}) {
    auto root = std::make_shared<torch::nn::Module>();
    root->register_module(wrapper, reference.ptr());
    auto loaded = LoadSam(Save(root, wrapper + ".pt"), config, ComputeDevice{});
    ASSERT_TRUE(loaded.ok()) << wrapper << ": " << loaded.status().ToString();
    for (const auto& p : (*loaded)->named_parameters())
      EXPECT_TRUE(torch::equal(p.value(), reference->named_parameters()[p.key()])) << p.key();
  }
  // {"epoch": 3, "state_dict": {...}}: non-tensor entries beside the weights.
  c10::impl::GenericDict state(c10::StringType::get(), c10::TensorType::get());
  for (const auto& p : reference->named_parameters()) state.insert(p.key(), p.value());
  for (const auto& b : reference->named_buffers()) state.insert(b.key(), b.value());
  c10::impl::GenericDict training(c10::StringType::get(), c10::AnyType::get());
  training.insert("epoch", c10::IValue(int64_t{3}));
  training.insert("state_dict", state);
  const fs::path path = dir_ / "training.pth";
  SaveAsPythonWould(training, path);
  auto loaded = LoadSam(path, config, ComputeDevice{});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  for (const auto& p : (*loaded)->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), reference->named_parameters()[p.key()])) << p.key();
}

TEST_F(SamConfigTest, WrongSizeNamesTheModelTypeItLooksLike) {
  // Just the tensors LoadSam sizes a checkpoint by: a vit_b patch embedding and 12 blocks.
  auto root = std::make_shared<torch::nn::Module>();
  auto encoder = root->register_module("image_encoder", std::make_shared<torch::nn::Module>());
  auto patch_embed = encoder->register_module("patch_embed", std::make_shared<torch::nn::Module>());
  auto proj = patch_embed->register_module("proj", std::make_shared<torch::nn::Module>());
  proj->register_parameter("weight", torch::zeros({768, 3, 16, 16}));
  auto blocks = encoder->register_module("blocks", std::make_shared<torch::nn::Module>());
  for (int i = 0; i < 12; ++i) {
    auto block = blocks->register_module(std::to_string(i), std::make_shared<torch::nn::Module>());
    block->register_parameter("weight", torch::zeros({1}));
  }
  const fs::path path = Save(root, "vit_b_like.pt");
  auto as_vit_l = LoadSam(path, "vit_l", ComputeDevice{});
  ASSERT_FALSE(as_vit_l.ok());
  EXPECT_EQ(as_vit_l.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(as_vit_l.status().message().find("load it with model type vit_b"), std::string::npos)
      << as_vit_l.status().message();
  std::cout << "  " << as_vit_l.status().ToString() << "\n";

  // The tiny model is no official size: the message says what it holds instead.
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  auto tiny_as_vit_b = LoadSam(Fixture("sam/tiny_sam.pth"), "vit_b", ComputeDevice{});
  ASSERT_FALSE(tiny_as_vit_b.ok());
  EXPECT_EQ(tiny_as_vit_b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tiny_as_vit_b.status().message().find("embed_dim 48 with 4 blocks"), std::string::npos)
      << tiny_as_vit_b.status().message();

  // Same width and depth but another shape elsewhere: the strict loader names the key.
  SamConfig wider = testing::TinySamConfig();
  wider.image_encoder.mlp_ratio = 2.0;
  auto mismatch = LoadSam(Fixture("sam/tiny_sam.pth"), wider, ComputeDevice{});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("mlp.lin1.weight"), std::string::npos)
      << mismatch.status().message();
}

TEST_F(SamConfigTest, MissingFileIsNotFound) {
  auto missing = LoadSam(dir_ / "absent.pth", "vit_b", ComputeDevice{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(SamDescribeCheckpointTest, NamesEachOfficialSize) {
  for (const SamConfig& config : {SamConfig::VitB(), SamConfig::VitL(), SamConfig::VitH()}) {
    StateDict dict;
    dict.emplace_back("image_encoder.patch_embed.proj.weight",
                      torch::zeros({config.image_encoder.embed_dim, 1, 1, 1}));
    for (int64_t i = 0; i < config.image_encoder.depth; ++i)
      dict.emplace_back("image_encoder.blocks." + std::to_string(i) + ".norm1.weight",
                        torch::zeros({1}));
    EXPECT_EQ(DescribeSamCheckpoint(dict), config.model_type);
  }
  EXPECT_EQ(DescribeSamCheckpoint({}), "model without image_encoder.patch_embed.proj.weight");
}

}  // namespace
}  // namespace clisc::models
