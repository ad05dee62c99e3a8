// `clisc synth`: writes the semi-synthetic BraTS2020-layout dataset that the demo and the
// end-to-end tests run on (see common/synth_dataset.h).
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/command.h"
#include "common/synth_dataset.h"

namespace clisc::cli {
namespace {

int RunSynth(const std::vector<std::string>& args) {
  ArgParser parser("synth",
                   "synth --out DIR [--cases N] [--size full|half] [--seed S] [--threads T] "
                   "[--template PATH] [--json]",
                   "Write a semi-synthetic BraTS2020-layout dataset: real brain anatomy (Colin27) "
                   "with random deformations, a synthetic glioma per case, FLAIR/T1/T1ce/T2 and "
                   "BraTS labels.");
  parser.Option("out", "DIR", "output folder (created if needed)", std::nullopt, true)
      .Option("cases", "N", "number of cases, ids 001..N", "16")
      .Option("size", "full|half", "full: 240x240x155 at 1 mm; half: 120x120x78 at 2 mm", "half")
      .Option("seed", "S", "dataset seed; the same seed and N give identical files", "1")
      .Option("threads", "T", "cases generated in parallel", "2")
      .Option("template", "PATH", "brain template (skull-stripped T1 NIfTI)",
              kDefaultBrainTemplatePath)
      .Flag("json", "print the summary as JSON")
      .Epilog(
          "About 10% of the cases are tumor-free (one per block of ten ids). Each case k depends\n"
          "only on (seed, k). Writes DIR/<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz,\n"
          "DIR/splits/{train,valid,test}.csv (7:1:2, paths relative to DIR) and\n"
          "DIR/synth_manifest.json (per case: seed, tumor-free flag, label volumes, centre).\n"
          "\nexample:\n  clisc synth --out /tmp/synth --cases 16 --size half --seed 7\n");
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;

  SynthOptions options;
  options.out_dir = parser.Get("out");
  options.template_path = parser.Get("template");
  auto cases = parser.GetInt("cases");
  auto seed = parser.GetInt("seed");
  auto threads = parser.GetInt("threads");
  auto size = ParseSynthSize(parser.Get("size"));
  for (const Status& s : {cases.status(), seed.status(), threads.status(), size.status()}) {
    if (!s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  if (*cases < 1 || *cases > 999 || *seed < 0 || *threads < 1) {
    std::cerr << "error: need 1 <= --cases <= 999, --seed >= 0 and --threads >= 1\n";
    return kExitUsage;
  }
  options.cases = static_cast<int>(*cases);
  options.seed = static_cast<uint64_t>(*seed);
  options.threads = static_cast<int>(*threads);
  options.size = *size;

  auto summary = WriteSynthDataset(options);
  if (!summary.ok()) {
    std::cerr << "error: " << summary.status().ToString() << "\n";
    return kExitFailure;
  }
  int tumor_free = 0;
  double min_wt = 1e300, max_wt = 0;
  for (const auto& c : summary->cases) {
    if (c.tumor_free) {
      ++tumor_free;
      continue;
    }
    min_wt = std::min(min_wt, c.wt_cm3);
    max_wt = std::max(max_wt, c.wt_cm3);
  }
  if (tumor_free == options.cases) min_wt = max_wt = 0;
  if (parser.GetFlag("json")) {
    nlohmann::json j = {{"out", options.out_dir.string()},
                        {"cases", options.cases},
                        {"tumor_free", tumor_free},
                        {"size", SynthSizeName(options.size)},
                        {"seed", options.seed},
                        {"wt_cm3_min", min_wt},
                        {"wt_cm3_max", max_wt},
                        {"train", summary->splits.train.size()},
                        {"valid", summary->splits.valid.size()},
                        {"test", summary->splits.test.size()},
                        {"seconds", summary->seconds}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "wrote " << options.cases << " " << SynthSizeName(options.size) << "-size cases ("
              << tumor_free << " tumor-free) to " << options.out_dir.string() << " in "
              << summary->seconds << " s\n"
              << "whole tumor " << min_wt << " .. " << max_wt << " cm^3; splits train "
              << summary->splits.train.size() << ", valid " << summary->splits.valid.size()
              << ", test " << summary->splits.test.size() << "\n";
  }
  return kExitOk;
}

}  // namespace
CLISC_REGISTER_COMMAND("synth", "write a semi-synthetic BraTS dataset", RunSynth);
}  // namespace clisc::cli
