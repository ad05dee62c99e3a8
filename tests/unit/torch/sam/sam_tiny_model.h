// The tiny random SAM of the golden fixtures: its SamConfig read from tiny_config.json (every
// hyperparameter the generator used), and the model loaded from tiny_sam.pth.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "tests/support/torch_fixtures.h"
#include "workers/models/sam/sam_model.h"

namespace clisc::testing {

inline models::SamConfig TinySamConfig(const std::filesystem::path& json_path) {
  StatusOr<models::SamConfig> config = models::SamConfig::FromJsonFile(json_path, "tiny");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? *config : models::SamConfig::VitB();
}

inline models::SamConfig TinySamConfig() { return TinySamConfig(Fixture("sam/tiny_config.json")); }

// Fails the calling test (ASSERT_NO_FATAL_FAILURE) when the model does not load.
inline void LoadTinySam(models::Sam& out, const models::ComputeDevice& compute = {}) {
  auto sam = models::LoadSam(Fixture("sam/tiny_sam.pth"), TinySamConfig(), compute);
  ASSERT_TRUE(sam.ok()) << sam.status().ToString();
  out = *sam;
}

}  // namespace clisc::testing
