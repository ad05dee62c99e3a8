// `clisc demo`: the README's first command. Generates a synthetic BraTS dataset (clisc synth) in
// the workdir, unless it is there already, and runs the whole method on it with the demo config
// (configs/demo.yaml, compiled in) and local workers, exactly as `clisc run` does: progress lines,
// a results table and the report at the end. Running it again resumes.
#include <atomic>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_command.h"
#include "common/atomic_file.h"
#include "common/synth_dataset.h"

namespace clisc {
extern const char kDemoConfigText[];
}

namespace clisc::cli {
namespace {

// The dataset of an earlier demo in the same folder, if it was made with the same settings:
// generating it again would give the files new times and so make every task new.
bool SynthDatasetPresent(const std::filesystem::path& dir, int cases, uint64_t seed) {
  std::ifstream in(dir / "synth_manifest.json");
  if (!in) return false;
  nlohmann::json manifest = nlohmann::json::parse(in, nullptr, false);
  return !manifest.is_discarded() && manifest.value("cases", -1) == cases &&
         manifest.value("seed", uint64_t{0}) == seed && manifest.value("size", "") == "half";
}

int RunDemo(const std::vector<std::string>& raw_args) {
  ArgParser parser("demo", "demo [--workdir DIR] [--cases N] [--seed S] [--workers N]",
                   "Run the whole method on a synthetic BraTS dataset on this machine: "
                   "synthetic data, local workers, progress, results table and report.");
  parser.Option("workdir", "DIR", "where the data, the run and the report go", "demo-run")
      .Option("cases", "N", "number of synthetic cases (half size)", "24")
      .Option("seed", "S", "dataset seed", "2025")
      .Option("workers", "N", "local worker processes", "2")
      .Option("config", "FILE", "run config (default: the built-in configs/demo.yaml)")
      .Option("set", "KEY=VALUE", "override a config key (repeatable)")
      .Option("threads", "N", "threads for generating the data", "2")
      .Epilog(
          "The demo uses the heuristic CLIP and SAM backends (no model weights), a small "
          "classifier and\na small U-Net, sized for a 2-core CPU. Its figures show the pipeline "
          "working; they say\nnothing about CLISC's accuracy with the real models.\n"
          "Running the command again on the same workdir resumes the run.");
  std::vector<std::string> args = raw_args;
  RunRequest request;
  if (Status s = TakeRepeatedOption(args, "set", request.overrides); !s.ok()) {
    std::cerr << "error: clisc demo: " << s.message() << "\n";
    return kExitUsage;
  }
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;
  auto cases = parser.GetInt("cases");
  auto seed = parser.GetInt("seed");
  auto workers = parser.GetInt("workers");
  auto threads = parser.GetInt("threads");
  for (const Status& s : {cases.status(), seed.status(), workers.status(), threads.status()}) {
    if (!s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  if (*cases < 6 || *workers < 1 || *threads < 1) {
    std::cerr << "error: clisc demo: --cases must be at least 6, --workers and --threads at "
                 "least 1\n";
    return kExitUsage;
  }
  const std::filesystem::path workdir = parser.Get("workdir");
  const std::filesystem::path data = workdir / "data";
  std::error_code ec;
  std::filesystem::create_directories(workdir, ec);

  if (SynthDatasetPresent(data, static_cast<int>(*cases), static_cast<uint64_t>(*seed))) {
    std::cout << "clisc demo: reusing the synthetic dataset in " << data.string() << "\n";
  } else {
    std::cout << "clisc demo: synthesizing " << *cases << " half-size cases into " << data.string()
              << "\n"
              << std::flush;
    SynthOptions synth;
    synth.out_dir = data;
    synth.cases = static_cast<int>(*cases);
    synth.seed = static_cast<uint64_t>(*seed);
    synth.threads = static_cast<int>(*threads);
    auto summary = WriteSynthDataset(synth);
    if (!summary.ok()) {
      std::cerr << "error: " << summary.status().ToString() << "\n";
      return kExitFailure;
    }
    std::printf("clisc demo: %zu cases written in %.1f s\n", summary->cases.size(),
                summary->seconds);
  }

  request.config_path = parser.Get("config");
  if (request.config_path.empty()) {
    const std::filesystem::path config = workdir / "demo.yaml";
    if (Status s = WriteFileAtomically(config, kDemoConfigText); !s.ok()) {
      std::cerr << "error: cannot write the demo config: " << s.ToString() << "\n";
      return kExitFailure;
    }
    request.config_path = config.string();
  }
  request.data = data.string();
  request.workdir = workdir / "run";
  request.workers = static_cast<int>(*workers);

  return ExecuteRun(request, InstallRunStopHandlers());
}

}  // namespace
CLISC_REGISTER_COMMAND("demo", "run the whole method on synthetic data (local workers)", RunDemo);
}  // namespace clisc::cli
