// Small semi-synthetic datasets for tests that measure quality on realistic inputs: `clisc
// synth` cases written to a temporary folder, then preprocessed as stage 0 does. The folder is
// removed before returning; failures are reported as gtest failures and the case is skipped.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/brats_layout.h"
#include "common/preprocess.h"
#include "common/synth_dataset.h"

namespace clisc::testing {

inline std::vector<PreprocessedCase> PreprocessedSynthCases(int cases, uint64_t seed,
                                                            const std::string& tag) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       ("clisc_synth_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  SynthOptions options;
  options.out_dir = dir;
  options.cases = cases;
  options.seed = seed;
  options.size = SynthSize::kHalf;
  options.threads = 2;
  std::vector<PreprocessedCase> out;
  auto summary = WriteSynthDataset(options);
  EXPECT_TRUE(summary.ok()) << summary.status().ToString();
  auto found = DiscoverCases(dir);
  EXPECT_TRUE(found.ok()) << found.status().ToString();
  if (summary.ok() && found.ok()) {
    for (const CaseFiles& files : found->cases) {
      auto c = PreprocessCase(files, PreprocessOptions{});
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      if (c.ok()) out.push_back(std::move(*c));
    }
  }
  fs::remove_all(dir);
  return out;
}

}  // namespace clisc::testing
