// The LibTorch backends of the method roles (ModelMethodBackends) on the tiny CLIP and SAM
// fixtures: a scorer and a segmenter built from a Config give the official outputs, a second
// factory call reuses the loaded model (also under concurrent calls), and a missing checkpoint is
// NOT_FOUND naming its config key.
#include "workers/roles/model_backends.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "tests/support/torch_fixtures.h"
#include "workers/models/clip/clip_config.h"
#include "workers/models/clip/clip_preprocess.h"
#include "workers/models/clip/clip_slice_scorer.h"

namespace clisc::roles {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::Fixture;
using ::clisc::testing::Goldens;
using ::clisc::testing::LoadGoldens;

constexpr double kProbabilityTolerance = 1e-5;  // fixtures/clip README: tiny model, fp32
constexpr double kIouTolerance = 1e-4;          // fixtures/sam README: predictor outputs
constexpr double kNearThreshold = 1e-3;  // mask pixels whose logit is this close to 0 may flip

std::string Quoted(const fs::path& path) { return "\"" + path.string() + "\""; }

// A uint8 golden image as a float slice whose min-max scaling gives the image back (exact when
// it holds both 0 and 255, as image_src_0 does).
backends::FloatSlice SliceScalingTo(const torch::Tensor& source) {
  const torch::Tensor u8 = source.contiguous();
  backends::FloatSlice slice{static_cast<int>(u8.size(1)), static_cast<int>(u8.size(0)), {}};
  for (int64_t i = 0; i < u8.numel(); ++i) {
    const int v = u8.data_ptr<uint8_t>()[i];
    slice.values.push_back(v == 0 || v == 255 ? float(v) : float(v) + 0.5f);
  }
  return slice;
}

backends::FloatSlice RandomSlice(int width, int height) {
  torch::manual_seed(11);
  const torch::Tensor values = torch::randn({height, width}) * 1.5 + 0.3;
  return {width, height,
          std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + values.numel())};
}

class ModelBackendsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("clisc_model_backends_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The fixture checkpoint under `name` in the test folder, with its hyperparameters beside it
  // as the sidecar `<stem>.config.json`.
  fs::path WithSidecar(const fs::path& checkpoint, const fs::path& config_json,
                       const std::string& name) {
    const fs::path link = dir_ / name;
    fs::create_symlink(checkpoint, link);
    fs::copy_file(config_json, fs::path(link).replace_extension(".config.json"));
    return link;
  }

  Config ClipConfigFor(const fs::path& checkpoint) {
    Config config;
    EXPECT_TRUE(config.Set("clip.checkpoint", Quoted(checkpoint)).ok());
    EXPECT_TRUE(
        config.Set("clip.vocab", Quoted(Fixture("clip/bpe_simple_vocab_16e6.txt.gz"))).ok());
    EXPECT_TRUE(config.Set("clip.batch_size", "2").ok());
    return config;
  }

  Config SamConfigFor(const fs::path& checkpoint, const std::string& precision = "fp32") {
    Config config;
    EXPECT_TRUE(config.Set("sam.checkpoint", Quoted(checkpoint)).ok());
    EXPECT_TRUE(config.Set("precision", precision).ok());
    return config;
  }

  fs::path dir_;
};

TEST_F(ModelBackendsTest, ClipScorerFromConfigGivesGoldenProbabilitiesAndIsCached) {
  CLISC_REQUIRE_FIXTURE(Fixture("clip/tiny_clip_state_dict.pth"));
  CLISC_REQUIRE_FIXTURE(Fixture("clip/clip_io.pth"));
  CLISC_REQUIRE_FIXTURE(Fixture("clip/bpe_simple_vocab_16e6.txt.gz"));
  const fs::path checkpoint = WithSidecar(Fixture("clip/tiny_clip_state_dict.pth"),
                                          Fixture("clip/tiny_clip_config.json"), "tiny_clip.pth");
  const Config config = ClipConfigFor(checkpoint);
  const MethodBackends backends = ModelMethodBackends();

  const ModelCacheStats before = ModelCacheStatistics();
  auto scorer = MakeSliceScorer(backends, config, "cpu");
  ASSERT_TRUE(scorer.ok()) << scorer.status().ToString();
  EXPECT_LE(ModelCacheStatistics().loads, before.loads + 1);
  EXPECT_NE((*scorer)->Describe().find("tiny_clip.pth"), std::string::npos);
  EXPECT_EQ((*scorer)->num_prompts(), 2);

  const Goldens golden = LoadGoldens(Fixture("clip/clip_io.pth"));
  const std::vector<backends::FloatSlice> slices = {SliceScalingTo(golden.at("image_src_0")),
                                                    RandomSlice(57, 23)};
  auto rows = (*scorer)->Score(slices);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  const torch::Tensor expected = golden.at("clisc_probs_2prompts")[0];
  double max_deviation = 0;
  for (int p = 0; p < 2; ++p) {
    max_deviation =
        std::max(max_deviation, std::abs(double((*rows)[0][p]) - expected[p].item<double>()));
  }
  EXPECT_LE(max_deviation, kProbabilityTolerance);
  RecordProperty("clip_max_deviation", std::to_string(max_deviation));

  // The same as a scorer that loads the model itself, for every slice.
  models::ClipScorerOptions options;
  options.checkpoint = Fixture("clip/tiny_clip_state_dict.pth");
  options.vocab = Fixture("clip/bpe_simple_vocab_16e6.txt.gz");
  options.prompts = config.GetStringList("clip.prompts");
  options.config = *models::ClipConfig::FromJsonFile(Fixture("clip/tiny_clip_config.json"));
  auto standalone = models::ClipSliceScorer::Create(options);
  ASSERT_TRUE(standalone.ok()) << standalone.status().ToString();
  auto standalone_rows = (*standalone)->Score(slices);
  ASSERT_TRUE(standalone_rows.ok());
  for (size_t i = 0; i < slices.size(); ++i) {
    for (int p = 0; p < 2; ++p) EXPECT_FLOAT_EQ((*rows)[i][p], (*standalone_rows)[i][p]);
  }

  // A second scorer (the next task) reuses the loaded model.
  const ModelCacheStats after_first = ModelCacheStatistics();
  auto second = MakeSliceScorer(backends, config, "cpu");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(ModelCacheStatistics().loads, after_first.loads);
  EXPECT_EQ(ModelCacheStatistics().hits, after_first.hits + 1);
  auto second_rows = (*second)->Score(slices);
  ASSERT_TRUE(second_rows.ok());
  EXPECT_EQ(*second_rows, *rows);
}

// Channel 0 of a golden image whose three channels are equal.
backends::GrayImage GrayOf(const torch::Tensor& rgb) {
  const torch::Tensor gray = rgb.select(2, 0).contiguous();
  backends::GrayImage image;
  image.height = static_cast<int>(gray.size(0));
  image.width = static_cast<int>(gray.size(1));
  image.pixels.assign(gray.data_ptr<uint8_t>(), gray.data_ptr<uint8_t>() + gray.numel());
  return image;
}

TEST_F(ModelBackendsTest, SamSegmenterFromConfigGivesGoldenMaskAndIsCached) {
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_config.json"));
  CLISC_REQUIRE_FIXTURE(Fixture("sam/predictor_io.pth"));
  const fs::path checkpoint =
      WithSidecar(Fixture("sam/tiny_sam.pth"), Fixture("sam/tiny_config.json"), "tiny_sam.pth");
  const Config config = SamConfigFor(checkpoint);
  const MethodBackends backends = ModelMethodBackends();

  auto segmenter = MakePromptSegmenter(backends, config, "cpu");
  ASSERT_TRUE(segmenter.ok()) << segmenter.status().ToString();
  const Goldens golden = LoadGoldens(Fixture("sam/predictor_io.pth"));
  ASSERT_TRUE((*segmenter)->SetImage(GrayOf(golden.at("img4.image"))).ok());
  const torch::Tensor box = golden.at("img4.box_only.box").to(torch::kFloat);
  backends::Prompts prompts;
  prompts.box = backends::BoxPrompt{box[0].item<float>(), box[1].item<float>(),
                                    box[2].item<float>(), box[3].item<float>()};
  auto segmentation = (*segmenter)->Segment({prompts}, /*multimask=*/false);
  ASSERT_TRUE(segmentation.ok()) << segmentation.status().ToString();
  ASSERT_EQ(segmentation->size(), 1u);
  const backends::BinaryMask& mask = (*segmentation)[0].mask;
  const torch::Tensor expected = golden.at("img4.box_only.masks")[0];
  const torch::Tensor logits = golden.at("img4.box_only.logits")[0];
  ASSERT_EQ(mask.height, expected.size(0));
  ASSERT_EQ(mask.width, expected.size(1));
  const torch::Tensor ours = torch::from_blob(const_cast<uint8_t*>(mask.pixels.data()),
                                              {mask.height, mask.width}, torch::kUInt8)
                                 .to(torch::kBool);
  EXPECT_EQ(((ours != expected) & (logits.abs() >= kNearThreshold)).sum().item<int64_t>(), 0);
  EXPECT_GT(ours.sum().item<int64_t>(), 0);
  const double iou_deviation =
      std::abs((*segmentation)[0].score - golden.at("img4.box_only.iou")[0].item<double>());
  EXPECT_LE(iou_deviation, kIouTolerance);
  RecordProperty("sam_iou_deviation", std::to_string(iou_deviation));

  const ModelCacheStats after_first = ModelCacheStatistics();
  auto second = MakePromptSegmenter(backends, config, "cpu");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(ModelCacheStatistics().loads, after_first.loads);
  EXPECT_EQ(ModelCacheStatistics().hits, after_first.hits + 1);
  // Its own image state: the first segmenter's image is not the second's.
  EXPECT_EQ((*second)->Segment({prompts}, false).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(ModelBackendsTest, ConcurrentFactoryCallsLoadOnce) {
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_config.json"));
  // bf16 makes a cache key no other test uses, so this test's first load is a real one.
  const fs::path checkpoint =
      WithSidecar(Fixture("sam/tiny_sam.pth"), Fixture("sam/tiny_config.json"), "tiny_sam.pth");
  const Config config = SamConfigFor(checkpoint, "bf16");
  const MethodBackends backends = ModelMethodBackends();
  const ModelCacheStats before = ModelCacheStatistics();
  constexpr int kSlots = 4;
  std::vector<Status> results(kSlots);
  std::vector<std::thread> slots;
  for (int i = 0; i < kSlots; ++i) {
    slots.emplace_back(
        [&, i] { results[i] = MakePromptSegmenter(backends, config, "cpu").status(); });
  }
  for (std::thread& slot : slots) slot.join();
  for (const Status& result : results) EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_EQ(ModelCacheStatistics().loads, before.loads + 1);
  EXPECT_EQ(ModelCacheStatistics().hits, before.hits + kSlots - 1);
}

TEST_F(ModelBackendsTest, MissingFilesAreNotFoundNamingTheKey) {
  const MethodBackends backends = ModelMethodBackends();
  Config sam = SamConfigFor(dir_ / "absent_sam.pth");
  auto segmenter = MakePromptSegmenter(backends, sam, "cpu");
  ASSERT_FALSE(segmenter.ok());
  EXPECT_EQ(segmenter.status().code(), StatusCode::kNotFound);
  EXPECT_NE(segmenter.status().message().find(
                "sam.checkpoint: " + (dir_ / "absent_sam.pth").string() + " not found"),
            std::string::npos)
      << segmenter.status().ToString();

  ASSERT_TRUE(sam.Set("sam.checkpoint", "null").ok());
  segmenter = MakePromptSegmenter(backends, sam, "cpu");
  EXPECT_EQ(segmenter.status().code(), StatusCode::kNotFound);
  EXPECT_NE(segmenter.status().message().find("sam.checkpoint"), std::string::npos);

  Config clip = ClipConfigFor(dir_ / "absent_clip.pt");
  auto scorer = MakeSliceScorer(backends, clip, "cpu");
  ASSERT_FALSE(scorer.ok());
  EXPECT_EQ(scorer.status().code(), StatusCode::kNotFound);
  EXPECT_NE(scorer.status().message().find("clip.checkpoint: "), std::string::npos)
      << scorer.status().ToString();

  CLISC_REQUIRE_FIXTURE(Fixture("clip/tiny_clip_state_dict.pth"));
  clip = ClipConfigFor(Fixture("clip/tiny_clip_state_dict.pth"));
  ASSERT_TRUE(clip.Set("clip.vocab", Quoted(dir_ / "absent_vocab.txt.gz")).ok());
  scorer = MakeSliceScorer(backends, clip, "cpu");
  EXPECT_EQ(scorer.status().code(), StatusCode::kNotFound);
  EXPECT_NE(scorer.status().message().find("clip.vocab: "), std::string::npos)
      << scorer.status().ToString();
}

TEST_F(ModelBackendsTest, CheckpointOfAnotherSizeNamesTheKey) {
  CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
  // No sidecar: sam.model_type vit_b does not fit the tiny checkpoint.
  auto segmenter =
      MakePromptSegmenter(ModelMethodBackends(), SamConfigFor(Fixture("sam/tiny_sam.pth")), "cpu");
  ASSERT_FALSE(segmenter.ok());
  EXPECT_EQ(segmenter.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(segmenter.status().message().find("sam.checkpoint"), std::string::npos)
      << segmenter.status().ToString();
  EXPECT_NE(segmenter.status().message().find("vit_b"), std::string::npos);
}

TEST_F(ModelBackendsTest, ClassifierHandlesShareOneEngine) {
  const MethodBackends backends = ModelMethodBackends();
  auto first = backends.classifier();
  auto second = backends.classifier();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_NE(first->get(), second->get());
  EXPECT_FALSE((*first)->Describe().empty());
  EXPECT_EQ((*first)->Describe(), (*second)->Describe());
}

}  // namespace
}  // namespace clisc::roles
