// ReadCheckpoint on the golden fixtures of shared/fixtures: compared with torch::pickle_load, the
// key manifests, and the parameters of the TorchScript archive.
#include <gtest/gtest.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/support/torch_fixtures.h"
#include "workers/models/checkpoint_reader.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using ::clisc::testing::Fixture;
using ::clisc::testing::ManifestEntry;
using ::clisc::testing::ReadBytes;
using ::clisc::testing::ReadManifest;

void ExpectMatchesManifest(const StateDict& dict, const fs::path& manifest) {
  const std::vector<ManifestEntry> entries = ReadManifest(manifest);
  ASSERT_EQ(dict.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(dict[i].first, entries[i].name) << "entry " << i;
    EXPECT_EQ(dict[i].second.sizes().vec(), entries[i].shape) << entries[i].name;
    EXPECT_EQ(entries[i].dtype, "float32");
    EXPECT_EQ(dict[i].second.scalar_type(), torch::kFloat) << entries[i].name;
  }
}

// Our reader against LibTorch's, on a plain-dict file both can read: same names in the same
// order, same dtypes and shapes, equal values.
void ExpectSameAsPickleLoad(const fs::path& path) {
  auto dict = ReadCheckpoint(path);
  ASSERT_TRUE(dict.ok()) << dict.status().ToString();
  const std::string bytes = ReadBytes(path);
  const c10::IValue root = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  const auto reference = root.toGenericDict();
  ASSERT_EQ(dict->size(), reference.size()) << path;
  size_t i = 0;
  for (const auto& entry : reference) {
    const auto& [name, tensor] = (*dict)[i++];
    const at::Tensor expected = entry.value().toTensor();
    ASSERT_EQ(name, entry.key().toStringRef());
    EXPECT_EQ(tensor.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(tensor.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(torch::equal(tensor, expected)) << name;
  }
}

TEST(CheckpointFixtureTest, TinySamOrderedDictMatchesManifestAndPlainCopy) {
  const fs::path path = Fixture("sam/tiny_sam.pth");
  CLISC_REQUIRE_FIXTURE(path);
  auto dict = ReadCheckpoint(path);
  ASSERT_TRUE(dict.ok()) << dict.status().ToString();
  ExpectMatchesManifest(*dict, Fixture("sam/keys_tiny.txt"));
  auto plain = ReadCheckpoint(Fixture("sam/tiny_sam_plain.pth"));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  std::map<std::string, torch::Tensor> by_name(plain->begin(), plain->end());
  for (const auto& [name, tensor] : *dict)
    EXPECT_TRUE(torch::equal(tensor, by_name.at(name))) << name;
  ExpectSameAsPickleLoad(Fixture("sam/tiny_sam_plain.pth"));
}

TEST(CheckpointFixtureTest, PlainDictGoldensMatchPickleLoad) {
  for (const char* file : {"sam/encoder_io.pth", "sam/prompt_io.pth", "sam/predictor_io.pth",
                           "clip/clip_io.pth", "cam/cam_io.pth"}) {
    const fs::path path = Fixture(file);
    CLISC_REQUIRE_FIXTURE(path);
    SCOPED_TRACE(file);
    ExpectSameAsPickleLoad(path);
  }
}

TEST(CheckpointFixtureTest, ResNetStateDictMatchesManifest) {
  const fs::path path = Fixture("cam/resnet1111_clisc_state_dict.pth");
  CLISC_REQUIRE_FIXTURE(path);
  auto dict = ReadCheckpoint(path);
  ASSERT_TRUE(dict.ok()) << dict.status().ToString();
  const std::vector<ManifestEntry> entries = ReadManifest(Fixture("cam/keys_resnet1111_clisc.txt"));
  ASSERT_EQ(dict->size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ((*dict)[i].first, entries[i].name);
    EXPECT_EQ((*dict)[i].second.sizes().vec(), entries[i].shape) << entries[i].name;
  }
}

TEST(CheckpointFixtureTest, ClipStateDictEqualsTorchScriptParameters) {
  const fs::path state_path = Fixture("clip/tiny_clip_state_dict.pth");
  const fs::path jit_path = Fixture("clip/tiny_clip_jit.pt");
  CLISC_REQUIRE_FIXTURE(state_path);
  CLISC_REQUIRE_FIXTURE(jit_path);
  auto state = ReadCheckpoint(state_path);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  auto jit = ReadCheckpoint(jit_path);
  ASSERT_TRUE(jit.ok()) << jit.status().ToString();
  ASSERT_EQ(state->size(), 62u);
  ASSERT_EQ(jit->size(), 65u);  // plus input_resolution, context_length, vocab_size
  std::map<std::string, torch::Tensor> from_jit(jit->begin(), jit->end());
  for (const auto& [name, tensor] : *state) {
    ASSERT_TRUE(from_jit.count(name)) << name;
    EXPECT_TRUE(torch::equal(tensor, from_jit.at(name))) << name;
  }
  std::vector<std::string> jit_names;
  for (const auto& [name, tensor] : *jit) jit_names.push_back(name);
  auto at = std::find(jit_names.begin(), jit_names.end(), "logit_scale");
  ASSERT_NE(at, jit_names.end());
  ASSERT_LE(at + 4, jit_names.end());
  EXPECT_EQ(*(at + 1), "input_resolution");
  EXPECT_EQ(*(at + 2), "context_length");
  EXPECT_EQ(*(at + 3), "vocab_size");
  EXPECT_EQ(from_jit.at("input_resolution").dim(), 0);
  EXPECT_EQ(from_jit.at("input_resolution").item<int64_t>(), 64);
}

}  // namespace
}  // namespace clisc
