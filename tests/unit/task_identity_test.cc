// Identity keys: a key changes with the task's params, its case's files and anything upstream,
// and with nothing else, so re-planning a changed config reruns exactly the tasks it reaches.
#include "coordinator/task_identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace clisc {
namespace {

TaskSpec Spec(std::string key, std::string stage, std::optional<std::string> case_id,
              std::string params, std::vector<std::string> deps) {
  TaskSpec s;
  s.task_key = std::move(key);
  s.stage = std::move(stage);
  s.case_id = std::move(case_id);
  s.role = "r";
  s.params_json = std::move(params);
  s.depends_on = std::move(deps);
  return s;
}

// prep/a, prep/b -> train (global) -> predict/a, predict/b
std::vector<TaskSpec> Chain(const std::string& prep_params, const std::string& train_params) {
  return {Spec("prep/a", "prep", "a", prep_params, {}),
          Spec("prep/b", "prep", "b", prep_params, {}),
          Spec("train", "train", std::nullopt, train_params, {"prep/a", "prep/b"}),
          Spec("predict/a", "predict", "a", "{}", {"train", "prep/a"}),
          Spec("predict/b", "predict", "b", "{}", {"train", "prep/b"})};
}

std::vector<std::string> Keys(const std::vector<TaskSpec>& tasks) {
  std::vector<std::string> keys;
  for (const TaskSpec& t : tasks) keys.push_back(t.task_key);
  return keys;
}

TEST(TaskIdentityTest, KeysAreStableReadableAndRewriteTheDependencies) {
  const std::map<std::string, std::string> stamps = {{"a", "1"}, {"b", "2"}};
  auto first = WithIdentityKeys(Chain("{}", "{}"), stamps);
  auto second = WithIdentityKeys(Chain("{}", "{}"), stamps);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(Keys(*first), Keys(*second));
  EXPECT_EQ((*first)[0].task_key.rfind("prep/a/r0/", 0), 0u);
  EXPECT_EQ((*first)[2].task_key.rfind("train/-/r0/", 0), 0u);
  EXPECT_EQ((*first)[3].depends_on,
            (std::vector<std::string>{(*first)[2].task_key, (*first)[0].task_key}));
}

TEST(TaskIdentityTest, AChangedSectionChangesItsTaskAndWhatIsDownstreamOnly) {
  const std::map<std::string, std::string> stamps = {{"a", "1"}, {"b", "2"}};
  auto base = Keys(*WithIdentityKeys(Chain("{}", "{\"lr\":1}"), stamps));
  auto changed = Keys(*WithIdentityKeys(Chain("{}", "{\"lr\":2}"), stamps));
  EXPECT_EQ(base[0], changed[0]);
  EXPECT_EQ(base[1], changed[1]);
  for (size_t i = 2; i < base.size(); ++i) EXPECT_NE(base[i], changed[i]) << i;
}

TEST(TaskIdentityTest, AChangedInputFileChangesThatCaseAndTheGlobalTasks) {
  auto base = Keys(*WithIdentityKeys(Chain("{}", "{}"), {{"a", "1"}, {"b", "2"}}));
  auto changed = Keys(*WithIdentityKeys(Chain("{}", "{}"), {{"a", "1"}, {"b", "3"}}));
  EXPECT_EQ(base[0], changed[0]);  // prep/a
  EXPECT_NE(base[1], changed[1]);  // prep/b
  EXPECT_NE(base[2], changed[2]);  // train reads both
  EXPECT_NE(base[3], changed[3]);  // predict/a reads the new model
}

TEST(TaskIdentityTest, ADependencyThatIsNotEarlierIsRefused) {
  std::vector<TaskSpec> tasks = {Spec("x", "x", std::nullopt, "{}", {"y"}),
                                 Spec("y", "y", std::nullopt, "{}", {})};
  auto keyed = WithIdentityKeys(tasks, {});
  ASSERT_FALSE(keyed.ok());
  EXPECT_EQ(keyed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(keyed.status().message().find("depends on y"), std::string::npos);
}

TEST(TaskIdentityTest, FolderStampFollowsNamesSizesAndTimes) {
  std::string pattern = (std::filesystem::temp_directory_path() / "clisc-identity-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  struct Cleanup {
    std::filesystem::path path;
    ~Cleanup() { std::filesystem::remove_all(path); }
  } dir{pattern};
  std::ofstream(dir.path / "a.nii") << "abc";
  std::ofstream(dir.path / "b.nii") << "de";
  auto first = StampFolderFiles(dir.path);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*StampFolderFiles(dir.path), *first);
  std::ofstream(dir.path / "b.nii") << "def";  // one more byte
  auto grown = StampFolderFiles(dir.path);
  EXPECT_NE(*grown, *first);
  // Same size, new time.
  std::filesystem::last_write_time(
      dir.path / "a.nii",
      std::filesystem::last_write_time(dir.path / "a.nii") + std::chrono::seconds(5));
  EXPECT_NE(*StampFolderFiles(dir.path), *grown);
  EXPECT_EQ(StampFolderFiles(dir.path / "missing").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace clisc
