// `clisc run` end to end with real processes: the whole method (stages 0-13, tiny networks) on
// `clisc synth` data in local mode. One run goes uninterrupted. A second, on its own workdir, has
// its coordinator and a worker SIGKILLed mid-run (the supervisor restarts both from the ledger)
// and is then killed as a whole; the same command run again finishes it. The ledger must show no
// finished task leased again, and the results must equal the uninterrupted run's. A third command
// on the finished workdir redoes nothing, and a changed config section reruns exactly the tasks it
// reaches.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/synth_dataset.h"
#include "coordinator/sqlite_db.h"
#include "tests/integration/runtime_harness.h"

namespace clisc::testutil {
namespace {

using namespace std::chrono_literals;

constexpr char kConfig[] = R"(mode: unsupervised
data:
  min_cases: 2
  splits:
    source: seeded
    train_fraction: 0.6
    valid_fraction: 0.0
    test_fraction: 0.4
clip:
  backend: heuristic
  checkpoint: null
  vocab: null
classifier:
  arch: small
  image_size: 64
  batch_size: 16
  epochs: 2
  loader_threads: 1
  checkpoint_every: 1
sam:
  backend: heuristic
  checkpoint: null
unet:
  feature_channels: [4, 8, 16]
  dropout: 0.0
train:
  loss: ce_dice
  patch_size: [32, 32, 32]
  max_iterations: 30
  checkpoint_every: 10
  loader_threads: 1
inference:
  patch_size: [32, 32, 32]
  overlap: 0.25
s3f:
  rounds: 2
  keep_ratio: 0.5
baselines:
  supervised: false
  sam_only: true
)";

nlohmann::json ReadJsonFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  return nlohmann::json::parse(in, nullptr, false);
}

// Succeeded tasks and per task key the number of times it was leased and succeeded.
struct LedgerHistory {
  std::set<std::string> succeeded;
  std::map<std::string, int> leases, successes;
  int64_t last_seq = 0;
};

LedgerHistory ReadHistory(const std::filesystem::path& ledger, int64_t after_seq = 0) {
  LedgerHistory history;
  auto db = sqlite::Database::OpenReadOnly(ledger.string());
  if (!db.ok()) return history;
  auto tasks = (*db)->Prepare("SELECT task_key FROM tasks WHERE state = 'succeeded'");
  if (!tasks.ok()) return history;
  while (true) {
    auto row = (*tasks)->Step();
    if (!row.ok() || !*row) break;
    history.succeeded.insert((*tasks)->Text(0));
  }
  auto events = (*db)->Prepare(
      "SELECT e.seq, e.kind, t.task_key FROM events e JOIN tasks t ON t.id = e.task_id "
      "WHERE e.seq > ? AND e.kind IN ('task_leased', 'task_succeeded') ORDER BY e.seq");
  if (!events.ok()) return history;
  (*events)->Bind(1, after_seq);
  while (true) {
    auto row = (*events)->Step();
    if (!row.ok() || !*row) break;
    history.last_seq = (*events)->Int(0);
    const std::string kind = (*events)->Text(1);
    (kind == "task_leased" ? history.leases : history.successes)[(*events)->Text(2)]++;
  }
  return history;
}

// The pids of the processes `parent` started whose command line contains `word`.
std::vector<pid_t> ChildrenRunning(pid_t parent, const std::string& word) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent || state == "Z") continue;
    std::ifstream cmdline(entry.path() / "cmdline");
    std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    for (char& c : args) c = c == '\0' ? ' ' : c;
    if (args.find(" " + word + " ") != std::string::npos) found.push_back(std::stoi(name));
  }
  return found;
}

std::vector<std::string> RunCommand(const std::filesystem::path& dir, const std::string& workdir,
                                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {CLISC_BINARY, "run",
                                   "--config",   (dir / "config.yaml").string(),
                                   "--data",     (dir / "data").string(),
                                   "--workdir",  (dir / workdir).string(),
                                   "--workers",  "2"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::vector<double> FinalDice(const std::filesystem::path& workdir) {
  nlohmann::json evaluation = ReadJsonFile(workdir / "report" / "data" / "evaluation.json");
  std::vector<double> dice;
  if (!evaluation.is_object()) return dice;
  for (const auto& row : evaluation["rows"]) dice.push_back(row["dice"]["mean"].get<double>());
  return dice;
}

TEST(RunResumeTest, KilledRunResumesWithoutRedoingFinishedTasksAndGivesTheSameResults) {
  Scratch dir("clisc-run");
  SynthOptions synth;
  synth.out_dir = dir / "data";
  synth.cases = 5;
  synth.seed = 5;
  synth.threads = 2;
  ASSERT_TRUE(WriteSynthDataset(synth).ok());
  std::ofstream(dir / "config.yaml") << kConfig;

  // The uninterrupted run.
  ChildProcess whole(RunCommand(dir.path(), "whole"), dir / "whole.log");
  auto status = whole.Wait(15min);
  ASSERT_TRUE(status.has_value()) << whole.Log();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << whole.Log();
  const std::vector<double> expected = FinalDice(dir / "whole");
  ASSERT_FALSE(expected.empty()) << whole.Log();

  // The interrupted one: SIGKILL the coordinator and a worker once the classifier has trained.
  const std::filesystem::path ledger = dir / "killed" / "ledger.db";
  ChildProcess killed(RunCommand(dir.path(), "killed"), dir / "killed.log");
  auto trained = [&] {
    for (const std::string& key : ReadHistory(ledger).succeeded) {
      if (key.rfind("train_classifier_raw/", 0) == 0) return true;
    }
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + 10min;
  while (!trained() && killed.running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(trained()) << killed.Log();
  std::vector<pid_t> coordinators = ChildrenRunning(killed.pid(), "coordinator");
  std::vector<pid_t> workers = ChildrenRunning(killed.pid(), "worker");
  ASSERT_EQ(coordinators.size(), 1u) << killed.Log();
  ASSERT_EQ(workers.size(), 2u) << killed.Log();
  const std::set<std::string> done_before_kill = ReadHistory(ledger).succeeded;
  kill(coordinators[0], SIGKILL);
  kill(workers[0], SIGKILL);

  // The supervisor brings both back; once more work has finished, the whole run is killed.
  const size_t done_at_kill = done_before_kill.size();
  while (ReadHistory(ledger).succeeded.size() < done_at_kill + 5 && killed.running() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(killed.running()) << "the run ended before it could be killed:\n" << killed.Log();
  EXPECT_NE(killed.Log().find("restarting it on the same ledger"), std::string::npos)
      << killed.Log();
  const std::set<std::string> done_before_crash = ReadHistory(ledger).succeeded;
  killed.Kill(SIGKILL);
  std::this_thread::sleep_for(1s);  // its children end on their parent-death signal

  ChildProcess again(RunCommand(dir.path(), "killed"), dir / "again.log");
  status = again.Wait(15min);
  ASSERT_TRUE(status.has_value()) << again.Log();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << again.Log();
  EXPECT_NE(again.Log().find("resuming"), std::string::npos) << again.Log();

  // No finished task was leased again, and no task succeeded twice.
  const LedgerHistory history = ReadHistory(ledger);
  for (const auto& [key, count] : history.successes) {
    EXPECT_EQ(count, 1) << key << " succeeded " << count << " times";
  }
  for (const std::string& key : done_before_crash) {
    EXPECT_EQ(history.leases.at(key), 1) << key << " was finished and leased again";
  }
  EXPECT_GT(done_before_crash.size(), done_before_kill.size());
  EXPECT_LT(done_before_crash.size(), history.succeeded.size());
  EXPECT_EQ(FinalDice(dir / "killed"), expected);

  // Once more on the finished workdir: nothing is leased.
  ChildProcess idle(RunCommand(dir.path(), "killed"), dir / "idle.log");
  status = idle.Wait(2min);
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << idle.Log();
  EXPECT_EQ(ReadHistory(ledger, history.last_seq).leases.size(), 0u) << idle.Log();

  // A changed S3F section: the ranking and everything after it run again, nothing before it.
  ChildProcess changed(RunCommand(dir.path(), "killed", {"--set", "s3f.keep_ratio=0.7"}),
                       dir / "changed.log");
  status = changed.Wait(10min);
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << changed.Log();
  std::set<std::string> rerun_stages;
  for (const auto& [key, count] : ReadHistory(ledger, history.last_seq).leases) {
    rerun_stages.insert(key.substr(0, key.find('/')));
  }
  EXPECT_TRUE(rerun_stages.count("s3f_rank_r1")) << changed.Log();
  EXPECT_TRUE(rerun_stages.count("train_unet_r2"));
  for (const char* untouched : {"prep", "clip_label", "train_classifier_raw", "sam_label",
                                "train_unet_r1", "predict_r1", "s3f_score_r1", "evaluate_r1"}) {
    EXPECT_EQ(rerun_stages.count(untouched), 0u) << untouched << " ran again";
  }
}

}  // namespace
}  // namespace clisc::testutil
