// Golden fixtures for the LibTorch tests: locating ../shared/fixtures (or $CLISC_FIXTURES),
// skipping visibly when absent (failing under CLISC_REQUIRE_FIXTURES=1), reading the plain-dict
// golden .pth files and the key manifests, and comparing tensors within a tolerance.
#pragma once

#include <gtest/gtest.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace clisc::testing {

namespace fs = std::filesystem;

inline fs::path Fixture(const std::string& relative) {
  const char* env = std::getenv("CLISC_FIXTURES");
  const fs::path root = env && *env ? fs::path(env) : fs::path(CLISC_FIXTURES_DEFAULT);
  return root / relative;
}

inline bool FixturesRequired() {
  const char* env = std::getenv("CLISC_REQUIRE_FIXTURES");
  return env && std::string(env) == "1";
}

// In a TEST body: skip (or fail in CI) when a fixture file is missing.
#define CLISC_REQUIRE_FIXTURE(path)                                                     \
  do {                                                                                  \
    if (!std::filesystem::exists(path)) {                                               \
      if (::clisc::testing::FixturesRequired()) FAIL() << "missing fixture " << (path); \
      GTEST_SKIP() << "fixture " << (path) << " absent (set CLISC_FIXTURES)";           \
    }                                                                                   \
  } while (0)

inline std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A golden *_io.pth: a plain dict str -> tensor, which torch::pickle_load reads.
using Goldens = std::map<std::string, torch::Tensor>;

inline Goldens LoadGoldens(const fs::path& path) {
  const std::string bytes = ReadBytes(path);
  const c10::IValue root = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  Goldens out;
  for (const auto& entry : root.toGenericDict())
    out.emplace(entry.key().toStringRef(), entry.value().toTensor());
  return out;
}

// One line of a keys_*.txt manifest: name<TAB>dtype<TAB>shape, the shape "1,8,8,48" or "[64,3]".
struct ManifestEntry {
  std::string name, dtype;
  std::vector<int64_t> shape;
};

inline std::vector<ManifestEntry> ReadManifest(const fs::path& path) {
  std::vector<ManifestEntry> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    ManifestEntry e;
    std::string shape;
    std::getline(fields, e.name, '\t');
    std::getline(fields, e.dtype, '\t');
    std::getline(fields, shape, '\t');
    for (char& c : shape) {
      if (c == '[' || c == ']' || c == ',') c = ' ';
    }
    std::istringstream dims(shape);
    for (int64_t d; dims >> d;) e.shape.push_back(d);
    out.push_back(std::move(e));
  }
  return out;
}

// A module's state (named_parameters then named_buffers, as a state_dict lists them) against the
// manifest's entries under `prefix` (stripped): the same set of names, each with the manifest's
// shape and dtype. Order is not compared, since LibTorch registers a module's own parameters and
// buffers in two lists where Python keeps one.
inline void ExpectModuleMatchesManifest(const torch::nn::Module& module, const fs::path& manifest,
                                        const std::string& prefix = "") {
  std::map<std::string, torch::Tensor> ours;
  for (const auto& p : module.named_parameters()) ours[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) ours[b.key()] = b.value();
  std::map<std::string, ManifestEntry> theirs;
  for (const auto& e : ReadManifest(manifest)) {
    if (e.name.rfind(prefix, 0) == 0) theirs[e.name.substr(prefix.size())] = e;
  }
  ASSERT_FALSE(theirs.empty()) << manifest << " has no entry under '" << prefix << "'";
  for (const auto& [name, entry] : theirs) {
    auto it = ours.find(name);
    if (it == ours.end()) {
      ADD_FAILURE() << "module lacks " << prefix << name;
      continue;
    }
    EXPECT_EQ(it->second.sizes().vec(), entry.shape) << prefix << name;
    const std::string dtype = it->second.scalar_type() == torch::kFloat  ? "float32"
                              : it->second.scalar_type() == torch::kLong ? "int64"
                                                                         : "other";
    EXPECT_EQ(dtype, entry.dtype) << prefix << name;
  }
  for (const auto& [name, tensor] : ours)
    EXPECT_TRUE(theirs.count(name))
        << "module has " << prefix << name << ", which " << manifest << " lacks";
}

// The largest |a - b|, in double; 0 for empty tensors.
inline double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() == 0) return 0.0;
  return (a.detach().to(torch::kCPU, torch::kDouble) - b.detach().to(torch::kCPU, torch::kDouble))
      .abs()
      .max()
      .item<double>();
}

// |actual - expected| <= atol + rtol * |expected| everywhere, reporting the worst element.
inline ::testing::AssertionResult AllClose(const torch::Tensor& actual,
                                           const torch::Tensor& expected, double atol,
                                           double rtol = 0.0) {
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " vs expected " << expected.sizes();
  const torch::Tensor a = actual.detach().to(torch::kCPU, torch::kDouble);
  const torch::Tensor e = expected.detach().to(torch::kCPU, torch::kDouble);
  if (a.numel() == 0) return ::testing::AssertionSuccess();
  const torch::Tensor excess = (a - e).abs() - (atol + rtol * e.abs());
  const int64_t worst = excess.flatten().argmax().item<int64_t>();
  const double worst_diff = (a - e).abs().flatten()[worst].item<double>();
  if (excess.flatten()[worst].item<double>() <= 0)
    return ::testing::AssertionSuccess() << "max diff within tolerance";
  return ::testing::AssertionFailure()
         << "element " << worst << ": " << a.flatten()[worst].item<double>() << " vs "
         << e.flatten()[worst].item<double>() << " (diff " << worst_diff << ", atol " << atol
         << ", rtol " << rtol << "); max abs diff " << (a - e).abs().max().item<double>();
}

}  // namespace clisc::testing
