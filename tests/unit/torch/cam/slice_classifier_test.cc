// The slice classifier's structure (torchvision names and shapes for resnet50, resnet18 and the
// fixture's ResNet(Bottleneck, [1,1,1,1])), the factory's errors, and the weight loaders:
// torchvision ImageNet files (fc skipped, strict elsewhere) and whole classifier checkpoints.
#include "workers/models/cam/slice_classifier.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/torch_fixtures.h"
#include "workers/models/checkpoint_reader.h"
#include "workers/models/checkpoint_writer.h"

namespace clisc::models {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::ExpectModuleMatchesManifest;
using ::clisc::testing::Fixture;
using ::clisc::testing::ReadManifest;

std::map<std::string, torch::Tensor> StateMap(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, value] : StateDictOf(module)) out[name] = value;
  return out;
}

void SaveStateDict(const StateDict& dict, const fs::path& path) {
  ASSERT_TRUE(WriteCheckpoint(path, dict).ok());
}

SliceClassifier Make(std::string_view arch) {
  auto model = MakeSliceClassifier(arch);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return *model;
}

// What torchvision's ImageNet file holds for `model`: its backbone, running statistics made
// non-trivial so buffers are seen to load, and a 1000-way fc in place of CLISC's head.
StateDict TorchvisionStyleWeights(const SliceClassifier& model) {
  StateDict out;
  const int64_t features = model->StageChannels("layer4");
  for (auto& [name, value] : StateDictOf(*model)) {
    if (name.rfind("fc.", 0) == 0) continue;
    if (name.find("running_var") != std::string::npos) {
      out.emplace_back(name, torch::rand_like(value) + 0.5);
    } else if (name.find("num_batches_tracked") != std::string::npos) {
      out.emplace_back(name, torch::full_like(value, 1234));
    } else {
      out.emplace_back(name, torch::randn_like(value));
    }
  }
  out.emplace_back("fc.weight", torch::randn({1000, features}));
  out.emplace_back("fc.bias", torch::randn({1000}));
  return out;
}

class SliceClassifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    torch::manual_seed(7);
    dir_ = fs::temp_directory_path() /
           ("clisc_slice_classifier_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SliceClassifierTest, ResNet50MatchesTheCliscManifest) {
  const fs::path manifest = Fixture("cam/keys_resnet50_clisc.txt");
  CLISC_REQUIRE_FIXTURE(manifest);
  SliceClassifier model = Make("resnet50");
  ExpectModuleMatchesManifest(*model, manifest);
  // dtypes too: float32 everywhere but the int64 BN counters; 24,086,263 values in all.
  const auto state = StateMap(*model);
  int64_t values = 0;
  for (const auto& entry : ReadManifest(manifest)) {
    ASSERT_TRUE(state.count(entry.name)) << entry.name;
    const torch::Tensor& t = state.at(entry.name);
    EXPECT_EQ(t.scalar_type(), entry.dtype == "int64" ? torch::kLong : torch::kFloat) << entry.name;
    values += t.numel();
  }
  EXPECT_EQ(state.size(), 322u);
  EXPECT_EQ(values, 24086263);
  EXPECT_EQ(model->StageChannels("layer3"), 1024);
}

TEST_F(SliceClassifierTest, FixtureTopologyMatchesItsManifest) {
  const fs::path manifest = Fixture("cam/keys_resnet1111_clisc.txt");
  CLISC_REQUIRE_FIXTURE(manifest);
  SliceClassifierOptions options;
  options.blocks_per_stage = {1, 1, 1, 1};
  auto model = MakeSliceClassifier(options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ExpectModuleMatchesManifest(**model, manifest);
}

// torchvision.models.resnet18 written out: BasicBlocks [2,2,2,2], a downsample in the first
// block of layer2..layer4, and CLISC's head in place of fc.
TEST_F(SliceClassifierTest, ResNet18HasTorchvisionNames) {
  std::set<std::string> expected_parameters, expected_buffers;
  auto bn = [&](const std::string& prefix) {
    expected_parameters.insert({prefix + ".weight", prefix + ".bias"});
    expected_buffers.insert(
        {prefix + ".running_mean", prefix + ".running_var", prefix + ".num_batches_tracked"});
  };
  expected_parameters.insert("conv1.weight");
  bn("bn1");
  for (int layer = 1; layer <= 4; ++layer) {
    for (int block = 0; block < 2; ++block) {
      const std::string b = "layer" + std::to_string(layer) + "." + std::to_string(block);
      for (int conv = 1; conv <= 2; ++conv) {
        expected_parameters.insert(b + ".conv" + std::to_string(conv) + ".weight");
        bn(b + ".bn" + std::to_string(conv));
      }
      if (layer > 1 && block == 0) {
        expected_parameters.insert(b + ".downsample.0.weight");
        bn(b + ".downsample.1");
      }
    }
  }
  // torchvision's resnet18 has 62 parameters; CLISC's head has 4 where fc had 2.
  EXPECT_EQ(expected_parameters.size(), 60u);
  expected_parameters.insert({"fc.1.weight", "fc.1.bias", "fc.4.weight", "fc.4.bias"});

  SliceClassifier model = Make("resnet18");
  std::set<std::string> parameters, buffers;
  int64_t parameter_values = 0;
  for (const auto& p : model->named_parameters()) {
    parameters.insert(p.key());
    parameter_values += p.value().numel();
  }
  for (const auto& b : model->named_buffers()) buffers.insert(b.key());
  EXPECT_EQ(parameters, expected_parameters);
  EXPECT_EQ(buffers, expected_buffers);
  EXPECT_EQ(parameters.size(), 64u);
  EXPECT_EQ(buffers.size(), 60u);
  // torchvision's 11,689,512 less the 1000-way fc (513,000) plus the head (131,842).
  EXPECT_EQ(parameter_values, 11689512 - 513000 + 131842);

  const auto state = StateMap(*model);
  using Shape = std::vector<int64_t>;
  EXPECT_EQ(state.at("conv1.weight").sizes().vec(), (Shape{64, 3, 7, 7}));
  EXPECT_EQ(state.at("layer1.1.conv2.weight").sizes().vec(), (Shape{64, 64, 3, 3}));
  EXPECT_EQ(state.at("layer2.0.conv1.weight").sizes().vec(), (Shape{128, 64, 3, 3}));
  EXPECT_EQ(state.at("layer3.0.downsample.0.weight").sizes().vec(), (Shape{256, 128, 1, 1}));
  EXPECT_EQ(state.at("layer4.1.bn2.running_var").sizes().vec(), (Shape{512}));
  EXPECT_EQ(state.at("layer4.1.bn2.num_batches_tracked").scalar_type(), torch::kLong);
  EXPECT_EQ(state.at("layer4.1.bn2.num_batches_tracked").dim(), 0);
  EXPECT_EQ(state.at("fc.1.weight").sizes().vec(), (Shape{256, 512}));
  EXPECT_EQ(state.at("fc.4.weight").sizes().vec(), (Shape{2, 256}));
}

TEST_F(SliceClassifierTest, EveryArchGivesLogitsAndStageOutputs) {
  const torch::Tensor x = torch::rand({1, 3, 224, 224});
  for (const char* arch : {"resnet18", "small"}) {
    SliceClassifier model = Make(arch);
    model->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = model->forward(x);
    EXPECT_EQ(logits.sizes().vec(), (std::vector<int64_t>{1, 2})) << arch;
    const int64_t sides[] = {56, 28, 14, 7};
    for (int i = 0; i < 4; ++i) {
      const std::string stage = "layer" + std::to_string(i + 1);
      auto [stage_logits, features] = model->ForwardWithStage(x, stage);
      EXPECT_EQ(features.sizes().vec(),
                (std::vector<int64_t>{1, model->StageChannels(stage), sides[i], sides[i]}))
          << arch << " " << stage;
      EXPECT_TRUE(torch::equal(stage_logits, logits)) << arch << " " << stage;
    }
  }
}

TEST_F(SliceClassifierTest, FactoryRejectsBadOptions) {
  EXPECT_EQ(MakeSliceClassifier("resnet34").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeSliceClassifier("small", 0).status().code(), StatusCode::kInvalidArgument);
  SliceClassifierOptions options;
  options.blocks_per_stage = {1, 0, 1, 1};
  EXPECT_EQ(MakeSliceClassifier(options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.head_dropout = 1.0;
  EXPECT_EQ(MakeSliceClassifier(options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(SliceClassifierImpl::IsStageName("layer5"));
  EXPECT_TRUE(SliceClassifierImpl::IsStageName("layer2"));
}

TEST_F(SliceClassifierTest, MaxGlobalPoolFeedsTheHeadTheStrongestPosition) {
  EXPECT_EQ(*ParseGlobalPool("avg"), SliceClassifierOptions::GlobalPool::kAverage);
  EXPECT_EQ(*ParseGlobalPool("max"), SliceClassifierOptions::GlobalPool::kMax);
  EXPECT_EQ(ParseGlobalPool("sum").status().code(), StatusCode::kInvalidArgument);
  auto options = SliceClassifierOptionsFor("small");
  ASSERT_TRUE(options.ok());
  options->global_pool = SliceClassifierOptions::GlobalPool::kMax;
  torch::manual_seed(3);
  auto made = MakeSliceClassifier(*options);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  SliceClassifier model = *made;
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({2, 3, 64, 64});
  const torch::Tensor features = model->ForwardToStage(x, "layer4");
  const torch::Tensor pooled = features.amax({2, 3});
  const torch::Tensor expected =
      model->named_modules()["fc"]->as<torch::nn::Sequential>()->forward(pooled);
  EXPECT_TRUE(torch::allclose(model->forward(x), expected, 1e-6, 1e-6));
  // The CAM split still reproduces the whole pass.
  EXPECT_TRUE(torch::allclose(model->ForwardFromStage(model->ForwardToStage(x, "layer2"), "layer2"),
                              expected, 1e-6, 1e-6));
}

TEST_F(SliceClassifierTest, ImageNetWeightsLoadIntoTheBackboneAndSkipFc) {
  SliceClassifier model = Make("resnet18");
  const StateDict weights = TorchvisionStyleWeights(model);
  const fs::path path = dir_ / "resnet18-f37072fd.pth";
  SaveStateDict(weights, path);
  const auto head_before = StateMap(*model);

  ASSERT_TRUE(LoadImageNetBackbone(*model, path).ok());
  const auto state = StateMap(*model);
  for (const auto& [name, value] : weights) {
    if (name.rfind("fc.", 0) == 0) continue;
    EXPECT_TRUE(torch::equal(state.at(name), value)) << name;
  }
  for (const char* head : {"fc.1.weight", "fc.1.bias", "fc.4.weight", "fc.4.bias"}) {
    EXPECT_TRUE(torch::equal(state.at(head), head_before.at(head))) << head;
  }
}

TEST_F(SliceClassifierTest, ImageNetFilesWithoutBatchCountersLoad) {
  // Weights saved before PyTorch 0.4.1, like the original torchvision files, have no counters.
  SliceClassifier model = Make("resnet18");
  StateDict weights;
  for (auto& entry : TorchvisionStyleWeights(model)) {
    if (entry.first.find("num_batches_tracked") == std::string::npos) weights.push_back(entry);
  }
  const fs::path path = dir_ / "old.pth";
  SaveStateDict(weights, path);
  const Status status = LoadImageNetBackbone(*model, path);
  EXPECT_TRUE(status.ok()) << status.ToString();
  const auto state = StateMap(*model);
  for (const auto& [name, value] : weights) {
    if (name.rfind("fc.", 0) == 0) continue;
    EXPECT_TRUE(torch::equal(state.at(name), value)) << name;
  }
}

TEST_F(SliceClassifierTest, ImageNetLoadNamesAMissingBackboneKeyAndCopiesNothing) {
  SliceClassifier model = Make("resnet18");
  StateDict weights;
  for (auto& entry : TorchvisionStyleWeights(model)) {
    if (entry.first != "layer3.1.bn2.running_var") weights.push_back(entry);
  }
  const fs::path path = dir_ / "broken.pth";
  SaveStateDict(weights, path);
  const auto before = StateMap(*model);
  const Status status = LoadImageNetBackbone(*model, path);
  EXPECT_EQ(status.code(), StatusCode::kNotFound) << status.ToString();
  EXPECT_NE(status.message().find("layer3.1.bn2.running_var"), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find(path.string()), std::string::npos) << status.message();
  EXPECT_TRUE(torch::equal(StateMap(*model).at("conv1.weight"), before.at("conv1.weight")));
}

TEST_F(SliceClassifierTest, ImageNetLoadRefusesAnotherArchitecture) {
  SliceClassifier resnet18 = Make("resnet18");
  SliceClassifier resnet50 = Make("resnet50");
  const fs::path path = dir_ / "resnet50.pth";
  SaveStateDict(TorchvisionStyleWeights(resnet50), path);
  const Status status = LoadImageNetBackbone(*resnet18, path);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_NE(status.message().find("conv3"), std::string::npos) << status.message();

  SliceClassifier small = Make("small");
  EXPECT_EQ(LoadImageNetBackbone(*small, path).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(LoadImageNetBackbone(*resnet18, dir_ / "absent.pth").code(), StatusCode::kNotFound);
}

TEST_F(SliceClassifierTest, ClassifierCheckpointsRoundTripStrictly) {
  SliceClassifier trained = Make("small");
  {
    // Move the BN statistics off their initial values so buffers are seen to load.
    torch::NoGradGuard no_grad;
    trained->train();
    trained->forward(torch::rand({4, 3, 64, 64}) * 3);
  }
  const fs::path path = dir_ / "best_model.pth";
  SaveStateDict(StateDictOf(*trained), path);
  auto loaded = LoadSliceClassifier(path, "small");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE((*loaded)->is_training());
  trained->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({2, 3, 96, 96});
  EXPECT_TRUE(torch::equal((*loaded)->forward(x), trained->forward(x)));

  // nn.DataParallel's "module." prefix is accepted.
  StateDict wrapped;
  for (auto& [name, value] : StateDictOf(*trained)) wrapped.emplace_back("module." + name, value);
  const fs::path wrapped_path = dir_ / "data_parallel.pth";
  SaveStateDict(wrapped, wrapped_path);
  auto unwrapped = LoadSliceClassifier(wrapped_path, "small");
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status().ToString();
  EXPECT_TRUE(torch::equal((*unwrapped)->forward(x), trained->forward(x)));

  // Strict: the head is part of a classifier checkpoint, and another arch does not fit.
  StateDict headless;
  for (auto& [name, value] : StateDictOf(*trained)) {
    if (name.rfind("fc.", 0) != 0) headless.emplace_back(name, value);
  }
  const fs::path headless_path = dir_ / "headless.pth";
  SaveStateDict(headless, headless_path);
  const auto missing = LoadSliceClassifier(headless_path, "small");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("fc.1.weight"), std::string::npos)
      << missing.status().message();
  EXPECT_FALSE(LoadSliceClassifier(path, "resnet18").ok());
}

}  // namespace
}  // namespace clisc::models
