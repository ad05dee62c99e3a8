#include "common/synth_dataset.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "common/atomic_file.h"
#include "common/logging.h"
#include "common/synth_contrast.h"
#include "common/synth_tumor.h"
#include "common/volume_io.h"

namespace clisc {
namespace fs = std::filesystem;

namespace {

// Independent random streams of a case, so that redrawing a tumor never changes the anatomy or
// the contrasts that follow.
enum Stream : uint64_t { kAnatomyStream = 1, kTumorStream = 2, kContrastStream = 3 };
// Dataset-level streams (distinct from any case number).
constexpr uint64_t kCaseSeedStream = 0x5eed0000;
constexpr uint64_t kTumorFreeStream = 0x7f000000;
constexpr uint64_t kSplitStream = 0x5b117000;

constexpr int kMaxTumorAttempts = 12;

// Rounds to `digits` decimals so that JSON shows 23.048, not 23.048000000000002.
double RoundTo(double v, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

std::string SplitCsv(const std::vector<std::string>& ids) {
  std::string text = "image_pth,mask_pth\n";
  for (const std::string& id : ids) {
    text += id + "/" + id + "_flair.nii.gz," + id + "/" + id + "_seg.nii.gz\n";
  }
  return text;
}

nlohmann::json CaseJson(const SynthCaseInfo& c) {
  auto point = [](const Point3& p) {
    return nlohmann::json::array({RoundTo(p[0], 2), RoundTo(p[1], 2), RoundTo(p[2], 2)});
  };
  nlohmann::json j = {{"id", c.id},
                      {"number", c.number},
                      {"seed", c.seed},
                      {"tumor_free", c.tumor_free},
                      {"wt_cm3", RoundTo(c.wt_cm3, 3)},
                      {"ncr_cm3", RoundTo(c.ncr_cm3, 3)},
                      {"ed_cm3", RoundTo(c.ed_cm3, 3)},
                      {"et_cm3", RoundTo(c.et_cm3, 3)},
                      {"tumor_attempts", c.attempts}};
  if (c.tumor_free) {
    j["tumor_center_mm"] = nullptr;
    j["tumor_center_voxel"] = nullptr;
  } else {
    j["tumor_center_mm"] = point(c.center_mm);
    j["tumor_center_voxel"] = point(c.center_voxel);
  }
  return j;
}

Status WriteCase(const SynthCase& c, const fs::path& out_dir) {
  const fs::path dir = out_dir / c.info.id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return UnavailableError("cannot create " + dir.string() + ": " + ec.message());
  for (Modality m : kAllModalities) {
    const fs::path file = dir / (c.info.id + "_" + std::string(ModalityName(m)) + ".nii.gz");
    RETURN_IF_ERROR(WriteVolume(c.images[static_cast<int>(m)], file));
  }
  return WriteVolume(c.seg, dir / (c.info.id + "_seg.nii.gz"));
}

}  // namespace

StatusOr<SynthSize> ParseSynthSize(std::string_view text) {
  if (text == "full") return SynthSize::kFull;
  if (text == "half") return SynthSize::kHalf;
  return InvalidArgumentError("size must be full or half, got '" + std::string(text) + "'");
}

std::string_view SynthSizeName(SynthSize size) {
  return size == SynthSize::kFull ? "full" : "half";
}

SynthGrid BratsGrid(SynthSize size) {
  SynthGrid full;
  full.dims = {240, 240, 155};
  full.geometry.origin = {0.0, -239.0, 0.0};
  if (size == SynthSize::kFull) return full;
  SynthGrid half;
  CoveringGrid(full.dims, full.geometry, {2.0, 2.0, 2.0}, &half.dims, &half.geometry);
  return half;
}

std::string SynthCaseId(int number) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "BraTS20_Training_%03d", number);
  return buf;
}

uint64_t SynthCaseSeed(uint64_t dataset_seed, int number) {
  return SynthRandom::Derive(SynthRandom::Derive(dataset_seed, kCaseSeedStream),
                             static_cast<uint64_t>(number));
}

bool IsTumorFreeCase(uint64_t dataset_seed, int number) {
  const uint64_t block = static_cast<uint64_t>(number - 1) / 10;
  SynthRandom rng(SynthRandom::Derive(SynthRandom::Derive(dataset_seed, kTumorFreeStream), block));
  return static_cast<uint64_t>(number - 1) == block * 10 + rng.UniformBelow(10);
}

StatusOr<SynthCase> SynthesizeCase(const BrainTemplate& tpl, const SynthGrid& grid,
                                   uint64_t dataset_seed, int number, bool tumor_free) {
  SynthCase c;
  c.info.number = number;
  c.info.id = SynthCaseId(number);
  c.info.seed = SynthCaseSeed(dataset_seed, number);
  c.info.tumor_free = tumor_free;
  SynthRandom anatomy_rng(SynthRandom::Derive(c.info.seed, kAnatomyStream));
  SynthRandom tumor_rng(SynthRandom::Derive(c.info.seed, kTumorStream));
  SynthRandom contrast_rng(SynthRandom::Derive(c.info.seed, kContrastStream));
  const Dims& dims = grid.dims;
  const Geometry& geometry = grid.geometry;
  const AnatomyWarp warp = RandomAnatomyWarp(tpl, dims, geometry, anatomy_rng);
  const PointMap warp_map = [&warp](const Point3& p) { return warp(p); };

  CaseAnatomy anatomy;
  TumorFields tumor;
  const double voxel_cm3 = geometry.spacing[0] * geometry.spacing[1] * geometry.spacing[2] / 1000;
  if (tumor_free) {
    anatomy = WarpAnatomy(tpl, dims, geometry, warp_map);
    c.seg = LabelVolume(dims, 0, geometry);
  } else {
    // Every label region must survive on the output grid; a tumor whose necrosis or rim came
    // out too thin (or whose edema was all trimmed away) is drawn again.
    const double max_spacing = *std::max_element(geometry.spacing.begin(), geometry.spacing.end());
    const double min_rim_mm = 1.25 * max_spacing + 0.5;
    const int64_t min_voxels = std::max<int64_t>(8, std::llround(0.05 / voxel_cm3));
    LabelCounts counts;
    bool grown = false;
    for (int attempt = 1; attempt <= kMaxTumorAttempts && !grown; ++attempt) {
      c.info.attempts = attempt;
      TumorParams params = RandomTumorParams(tumor_rng, min_rim_mm);
      ASSIGN_OR_RETURN(params.center,
                       ChooseTumorCenter(tpl, warp_map, dims, geometry, params, tumor_rng));
      anatomy = WarpAnatomy(tpl, dims, geometry,
                            [&](const Point3& p) { return warp(MassEffectSource(params, p)); });
      tumor = GrowTumor(params, anatomy, tumor_rng);
      counts = CountLabels(tumor.labels);
      grown = counts.necrosis >= min_voxels && counts.edema >= min_voxels &&
              counts.enhancing >= min_voxels && counts.other == 0;
      if (grown) {
        c.info.center_mm = params.center;
        c.info.center_voxel = PhysicalToIndex(geometry, params.center);
      } else {
        LogDebug("synth_tumor_redrawn", {{"case", c.info.id},
                                         {"attempt", attempt},
                                         {"ncr", counts.necrosis},
                                         {"ed", counts.edema},
                                         {"et", counts.enhancing}});
      }
    }
    if (!grown) {
      return InternalError(c.info.id + ": no tumor with all of labels 1, 2 and 4 after " +
                           std::to_string(kMaxTumorAttempts) + " attempts");
    }
    c.info.ncr_cm3 = counts.necrosis * voxel_cm3;
    c.info.ed_cm3 = counts.edema * voxel_cm3;
    c.info.et_cm3 = counts.enhancing * voxel_cm3;
    c.info.wt_cm3 = counts.whole() * voxel_cm3;
    c.seg = std::move(tumor.labels);
  }
  for (Modality m : kAllModalities) {
    const ContrastLevels levels = RandomContrast(m, contrast_rng);
    c.images[static_cast<int>(m)] =
        RenderContrast(levels, anatomy, tumor_free ? nullptr : &tumor, contrast_rng);
  }
  return c;
}

Splits SynthSplits(const std::vector<std::string>& ids, uint64_t seed) {
  std::vector<std::string> order = ids;
  std::sort(order.begin(), order.end());
  SynthRandom rng(SynthRandom::Derive(seed, kSplitStream));
  for (size_t i = order.size(); i > 1; --i) {
    std::swap(order[i - 1], order[rng.UniformBelow(i)]);
  }
  const int64_t n = static_cast<int64_t>(order.size());
  int64_t n_valid = std::llround(0.1 * double(n));
  int64_t n_test = std::llround(0.2 * double(n));
  if (n >= 3) {
    n_valid = std::max<int64_t>(n_valid, 1);
    n_test = std::max<int64_t>(n_test, 1);
  }
  n_test = std::min(n_test, std::max<int64_t>(n - 1, 0));
  n_valid = std::min(n_valid, std::max<int64_t>(n - 1 - n_test, 0));
  Splits s;
  s.test.assign(order.begin(), order.begin() + n_test);
  s.valid.assign(order.begin() + n_test, order.begin() + n_test + n_valid);
  s.train.assign(order.begin() + n_test + n_valid, order.end());
  for (auto* list : {&s.train, &s.valid, &s.test}) std::sort(list->begin(), list->end());
  return s;
}

StatusOr<SynthSummary> WriteSynthDataset(const SynthOptions& options) {
  if (options.cases < 1) return InvalidArgumentError("the number of cases must be at least 1");
  if (options.cases > 999)
    return InvalidArgumentError("at most 999 cases (BraTS ids have 3 digits)");
  const auto start = std::chrono::steady_clock::now();
  const SynthGrid grid = BratsGrid(options.size);
  ASSIGN_OR_RETURN(auto tpl, LoadBrainTemplate(options.template_path, grid.geometry.spacing[0]));
  std::error_code ec;
  fs::create_directories(options.out_dir / "splits", ec);
  if (ec) {
    return UnavailableError("cannot create " + (options.out_dir / "splits").string() + ": " +
                            ec.message());
  }

  SynthSummary summary;
  summary.cases.resize(static_cast<size_t>(options.cases));
  std::atomic<int> next{1};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    for (int k = next++; k <= options.cases && !failed; k = next++) {
      const auto t0 = std::chrono::steady_clock::now();
      auto made = SynthesizeCase(*tpl, grid, options.seed, k, IsTumorFreeCase(options.seed, k));
      Status s = made.ok() ? WriteCase(*made, options.out_dir) : made.status();
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::lock_guard<std::mutex> lock(mu);
      if (!s.ok()) {
        if (!failed.exchange(true)) first_error = s;
        return;
      }
      const SynthCaseInfo& info = made->info;
      summary.cases[static_cast<size_t>(k - 1)] = info;
      LogInfo("synth_case", {{"case", info.id},
                             {"n", std::to_string(k) + "/" + std::to_string(options.cases)},
                             {"tumor_free", info.tumor_free},
                             {"wt_cm3", RoundTo(info.wt_cm3, 1)},
                             {"ncr_cm3", RoundTo(info.ncr_cm3, 1)},
                             {"ed_cm3", RoundTo(info.ed_cm3, 1)},
                             {"et_cm3", RoundTo(info.et_cm3, 1)},
                             {"attempts", info.attempts},
                             {"seconds", RoundTo(secs, 2)}});
    }
  };
  const int threads = std::clamp(options.threads, 1, options.cases);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failed) return first_error;

  std::vector<std::string> ids;
  for (const auto& c : summary.cases) ids.push_back(c.id);
  summary.splits = SynthSplits(ids, options.seed);
  RETURN_IF_ERROR(WriteFileAtomically(options.out_dir / "splits" / "train.csv",
                                      SplitCsv(summary.splits.train)));
  RETURN_IF_ERROR(WriteFileAtomically(options.out_dir / "splits" / "valid.csv",
                                      SplitCsv(summary.splits.valid)));
  RETURN_IF_ERROR(
      WriteFileAtomically(options.out_dir / "splits" / "test.csv", SplitCsv(summary.splits.test)));

  const Dims& d = grid.dims;
  const Geometry& g = grid.geometry;
  nlohmann::json manifest = {
      {"generator", "clisc synth"},
      {"seed", options.seed},
      {"cases", options.cases},
      {"size", SynthSizeName(options.size)},
      {"template", options.template_path.string()},
      {"grid",
       {{"dims", {d.x, d.y, d.z}},
        {"spacing", g.spacing},
        {"origin", g.origin},
        {"direction", g.direction}}},
      {"labels", {{"1", "necrotic core"}, {"2", "edema"}, {"4", "enhancing tumor"}}},
      {"splits",
       {{"train", summary.splits.train},
        {"valid", summary.splits.valid},
        {"test", summary.splits.test}}},
      {"case_list", nlohmann::json::array()}};
  for (const auto& c : summary.cases) manifest["case_list"].push_back(CaseJson(c));
  RETURN_IF_ERROR(
      WriteFileAtomically(options.out_dir / "synth_manifest.json", manifest.dump(2) + "\n"));

  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int tumor_free = 0;
  for (const auto& c : summary.cases) tumor_free += c.tumor_free;
  LogInfo("synth_done", {{"out", options.out_dir.string()},
                         {"cases", options.cases},
                         {"tumor_free", tumor_free},
                         {"size", SynthSizeName(options.size)},
                         {"seed", options.seed},
                         {"seconds", RoundTo(summary.seconds, 2)}});
  return summary;
}

}  // namespace clisc
