// WriteCheckpoint round trips through ReadCheckpoint for every dtype it writes, keeps names,
// order, shapes and values, wraps a state dict as a training checkpoint, and refuses dtypes it
// cannot write.
#include "workers/models/checkpoint_writer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace clisc {
namespace {

namespace fs = std::filesystem;

class CheckpointWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("clisc_ckpt_writer_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CheckpointWriterTest, EveryDtypeRoundTripsInOrder) {
  StateDict dict;
  dict.emplace_back("w.float", torch::randn({3, 4}));
  dict.emplace_back("w.double", torch::randn({2}, torch::kDouble));
  dict.emplace_back("w.half", torch::randn({5}).to(torch::kHalf));
  dict.emplace_back("w.bf16", torch::randn({2, 2}).to(torch::kBFloat16));
  dict.emplace_back("bn.num_batches_tracked", torch::tensor(1234, torch::kLong));  // 0-dim
  dict.emplace_back("big.long", torch::tensor({int64_t{1} << 40, -(int64_t{1} << 35)}));
  dict.emplace_back("i.int", torch::arange(6, torch::kInt).reshape({2, 3}));
  dict.emplace_back("u.byte", torch::arange(200, 210, torch::kByte));
  dict.emplace_back("b.bool", torch::tensor({true, false, true}));
  dict.emplace_back("t.transposed", torch::randn({4, 3}).t());  // non-contiguous
  dict.emplace_back("e.empty", torch::zeros({0, 7}));
  const fs::path path = dir_ / "all.pth";
  ASSERT_TRUE(WriteCheckpoint(path, dict).ok());
  auto read = ReadCheckpoint(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), dict.size());
  for (size_t i = 0; i < dict.size(); ++i) {
    EXPECT_EQ((*read)[i].first, dict[i].first);
    EXPECT_EQ((*read)[i].second.scalar_type(), dict[i].second.scalar_type()) << dict[i].first;
    EXPECT_EQ((*read)[i].second.sizes(), dict[i].second.sizes()) << dict[i].first;
    EXPECT_TRUE(torch::equal((*read)[i].second, dict[i].second)) << dict[i].first;
  }
}

TEST_F(CheckpointWriterTest, ModuleStateAndTrainingWrapperLoadBack) {
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)),
                            torch::nn::BatchNorm2d(4), torch::nn::Linear(4, 2));
  const StateDict state = StateDictOf(*net);
  ASSERT_EQ(state.size(), 9u);  // 6 parameters, then BatchNorm's 3 buffers
  EXPECT_EQ(state.front().first, "0.weight");
  CheckpointWriteOptions options;
  options.wrap_in = "model";
  options.epoch = 12;
  options.module_versions = {{"", 1}, {"0", 1}, {"1", 2}, {"2", 1}};
  const fs::path path = dir_ / "train.pth";
  ASSERT_TRUE(WriteCheckpoint(path, state, options).ok());
  auto inner = ReadCheckpoint(path, CheckpointOptions{"model."});
  ASSERT_TRUE(inner.ok()) << inner.status().ToString();
  torch::nn::Sequential copy(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)),
                             torch::nn::BatchNorm2d(4), torch::nn::Linear(4, 2));
  ASSERT_TRUE(LoadStateDict(*copy, *inner).ok());
  for (size_t i = 0; i < state.size(); ++i)
    EXPECT_TRUE(torch::equal(StateDictOf(*copy)[i].second, state[i].second)) << state[i].first;
  auto whole = ReadCheckpoint(path);  // the epoch is not a tensor
  ASSERT_FALSE(whole.ok());
  EXPECT_EQ(whole.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CheckpointWriterTest, RefusesComplexTensorsAndLeavesNoFile) {
  StateDict dict;
  dict.emplace_back("z", torch::randn({2}, torch::kComplexFloat));
  const fs::path path = dir_ / "complex.pth";
  const Status status = WriteCheckpoint(path, dict);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("z has dtype"), std::string::npos) << status.ToString();
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace clisc
