#include "common/case_validation.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <thread>

#include "common/logging.h"
#include "common/volume_io.h"

namespace clisc {
namespace fs = std::filesystem;

namespace {

std::string DimsText(const Dims& d) {
  return std::to_string(d.x) + "x" + std::to_string(d.y) + "x" + std::to_string(d.z);
}

std::string Triple(const std::array<double, 3>& v) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%g x %g x %g", v[0], v[1], v[2]);
  return buf;
}

std::string JoinReasons(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : "; ") + s;
  return out;
}

// One file of the case under check: a required modality or the seg.
struct FileUnderCheck {
  std::string what;  // "flair", ..., "seg"
  fs::path path;
  bool is_seg = false;
  std::optional<VolumeHeader> header;  // set when the header is sane
};

// Why `geometry` is not the grid of `reference`, or "" when it is.
std::string GridDifference(const Dims& dims, const Geometry& geometry, const Dims& ref_dims,
                           const Geometry& reference, double tolerance) {
  if (!(dims == ref_dims)) return "dims " + DimsText(dims) + " vs " + DimsText(ref_dims);
  if (geometry.NearlyEquals(reference, tolerance)) return "";
  Geometry only_spacing = reference;
  only_spacing.spacing = geometry.spacing;
  if (!only_spacing.NearlyEquals(reference, tolerance)) {
    return "spacing " + Triple(geometry.spacing) + " vs " + Triple(reference.spacing) + " mm";
  }
  Geometry only_origin = reference;
  only_origin.origin = geometry.origin;
  if (!only_origin.NearlyEquals(reference, tolerance)) {
    return "origin " + Triple(geometry.origin) + " vs " + Triple(reference.origin) + " mm";
  }
  return "direction differs";
}

// Header-level checks: readable, plausible size and spacing. Adds reasons; returns whether the
// file may be read in full.
bool CheckHeader(FileUnderCheck& file, const ValidationOptions& options,
                 std::vector<std::string>& reasons) {
  auto header = ReadVolumeHeader(file.path);
  if (!header.ok()) {
    // The IO layer's message names the file; DisplayName keeps odd names on one line.
    reasons.push_back(file.what + ": " + DisplayName(header.status().message()));
    return false;
  }
  const Dims& d = header->size;
  bool ok = true;
  for (int64_t n : {d.x, d.y, d.z}) {
    if (n < options.min_dim || n > options.max_dim) {
      reasons.push_back(file.what + ": implausible dims " + DimsText(d) + " (each axis must be " +
                        std::to_string(options.min_dim) + ".." + std::to_string(options.max_dim) +
                        ")");
      ok = false;
      break;
    }
  }
  for (double s : header->geometry.spacing) {
    if (!(s >= options.min_spacing_mm && s <= options.max_spacing_mm)) {
      char range[64];
      std::snprintf(range, sizeof(range), "%g..%g", options.min_spacing_mm, options.max_spacing_mm);
      reasons.push_back(file.what + ": implausible spacing " + Triple(header->geometry.spacing) +
                        " mm (each must be " + range + " mm)");
      ok = false;
      break;
    }
  }
  file.header = *header;
  return ok;
}

struct VoxelCounts {
  int64_t nan = 0, inf = 0, nonzero = 0, non_integer = 0;
  std::map<int, int64_t> labels;  // seg only
};

VoxelCounts CountVoxels(const FloatVolume& volume, bool is_seg) {
  VoxelCounts c;
  for (float v : volume.voxels()) {
    if (std::isnan(v)) {
      ++c.nan;
    } else if (std::isinf(v)) {
      ++c.inf;
    } else if (v != 0.0f) {
      ++c.nonzero;
      if (is_seg) {
        if (v != std::nearbyint(v) || std::abs(v) > 1e6f) {
          ++c.non_integer;
        } else {
          ++c.labels[static_cast<int>(v)];
        }
      }
    }
  }
  return c;
}

struct Grid {
  std::string owner;  // the file that defined it
  Dims dims;
  Geometry geometry;
};

// Reads the whole file and checks its voxels, and its grid against `reference` unless
// `skip_grid`. Adds reasons and warnings; returns the grid ITK read, when the file could be read.
std::optional<Grid> CheckVoxels(const FileUnderCheck& file, BratsNaming naming,
                                const std::optional<Grid>& reference, bool skip_grid,
                                const ValidationOptions& options, CaseReport& report) {
  auto volume = ReadVolume<float>(file.path);
  if (!volume.ok()) {
    report.reasons.push_back(file.what + ": " + DisplayName(volume.status().message()));
    return std::nullopt;
  }
  Grid grid{file.what, volume->size(), volume->geometry()};
  if (reference && !skip_grid) {
    std::string diff = GridDifference(grid.dims, grid.geometry, reference->dims,
                                      reference->geometry, options.geometry_tolerance);
    if (!diff.empty()) {
      report.reasons.push_back(file.what + ": not on the grid of " + reference->owner + ": " +
                               diff);
    }
  }
  VoxelCounts c = CountVoxels(*volume, file.is_seg);
  // ITK's NIfTI reader turns NaN and Inf into 0 as it reads, so the file itself is asked; the
  // in-memory count only matters should a reader ever pass them through.
  auto in_file = CountNonFiniteVoxels(file.path);
  if (!in_file.ok()) {
    report.reasons.push_back(file.what + ": " + DisplayName(in_file.status().message()));
  }
  int64_t non_finite = std::max(in_file.ok() ? *in_file : 0, c.nan + c.inf);
  if (non_finite > 0) {
    report.reasons.push_back(file.what + ": " + std::to_string(non_finite) +
                             " non-finite voxels (NaN or Inf)");
  }
  if (!file.is_seg) {
    if (c.nonzero == 0) report.reasons.push_back(file.what + ": all voxels are zero (no brain)");
    return grid;
  }
  if (c.non_integer > 0) {
    report.reasons.push_back("seg: " + std::to_string(c.non_integer) +
                             " voxels are not integer labels");
  }
  std::vector<int> allowed = SegLabelsOf(naming);
  std::string unexpected;
  for (const auto& [label, count] : c.labels) {
    if (std::find(allowed.begin(), allowed.end(), label) != allowed.end()) continue;
    unexpected += (unexpected.empty() ? "" : ", ") + std::to_string(label) + " (" +
                  std::to_string(count) + " voxels)";
  }
  if (!unexpected.empty()) {
    report.warnings.push_back("seg: labels outside the " + std::string(BratsNamingName(naming)) +
                              " set: " + unexpected);
  }
  if (c.nonzero == 0 && non_finite == 0) report.warnings.push_back("seg: no tumor voxels");
  return grid;
}

}  // namespace

std::vector<int> SegLabelsOf(BratsNaming naming) {
  if (naming == BratsNaming::kBraTS2023) return {0, 1, 2, 3};
  return {0, 1, 2, 4};
}

int CanonicalSegLabel(BratsNaming naming, int label) {
  if (naming == BratsNaming::kBraTS2023 && label == 3) return 4;
  return label;
}

CaseReport ValidateCase(const CaseFiles& files, const ValidationOptions& options) {
  CaseReport report;
  report.id = files.id;
  report.dir = files.dir;
  report.naming = files.naming;
  report.files = files;
  report.has_seg = files.seg.has_value();
  report.reasons = files.problems;
  report.warnings = files.warnings;

  std::vector<FileUnderCheck> checks;
  for (Modality m : options.required) {
    std::string name(ModalityName(m));
    const bool ambiguous =
        std::find(files.ambiguous.begin(), files.ambiguous.end(), name) != files.ambiguous.end();
    if (files.image(m)) {
      checks.push_back({name, *files.image(m), false, std::nullopt});
    } else if (files.listed && !ambiguous) {  // otherwise a problem already says why
      report.reasons.push_back("missing " + name);
    }
  }
  if (files.seg) checks.push_back({"seg", *files.seg, true, std::nullopt});

  // Headers first: cheap, and they decide whether reading the voxels is safe at all.
  std::vector<bool> readable(checks.size(), false);
  std::vector<bool> grid_reported(checks.size(), false);
  const FileUnderCheck* reference = nullptr;
  for (size_t i = 0; i < checks.size(); ++i) {
    readable[i] = CheckHeader(checks[i], options, report.reasons);
    if (!checks[i].header) continue;
    if (reference == nullptr) {
      reference = &checks[i];
      continue;
    }
    std::string diff =
        GridDifference(checks[i].header->size, checks[i].header->geometry, reference->header->size,
                       reference->header->geometry, options.geometry_tolerance);
    if (!diff.empty()) {
      report.reasons.push_back(checks[i].what + ": not on the grid of " + reference->what + ": " +
                               diff);
      grid_reported[i] = true;
    }
  }
  if (reference != nullptr) {
    report.dims = reference->header->size;
    report.geometry = reference->header->geometry;
  }

  // Voxels. The geometry of a full read is ITK's own (the header's is an approximation), so
  // the grid is compared again here, against the first file read in full.
  std::optional<Grid> read_grid;
  for (size_t i = 0; i < checks.size(); ++i) {
    if (!readable[i]) continue;
    std::optional<Grid> grid =
        CheckVoxels(checks[i], files.naming, read_grid, grid_reported[i], options, report);
    if (!read_grid && grid) {
      read_grid = grid;
      report.dims = grid->dims;
      report.geometry = grid->geometry;
    }
  }

  report.accepted = report.reasons.empty();
  return report;
}

std::vector<CaseReport> ValidateCases(const std::vector<CaseFiles>& cases,
                                      const ValidationOptions& options) {
  std::vector<CaseReport> reports(cases.size());
  if (cases.empty()) return reports;
  size_t threads = static_cast<size_t>(std::max(1, options.threads));
  threads = std::min(threads, cases.size());
  std::atomic<size_t> next{0}, done{0};
  const size_t total = cases.size();
  const size_t log_every = std::max<size_t>(1, total / 20);

  auto worker = [&] {
    for (size_t i = next.fetch_add(1); i < total; i = next.fetch_add(1)) {
      reports[i] = ValidateCase(cases[i], options);
      if (!reports[i].accepted) {
        LogWarn("case_rejected",
                {{"case", reports[i].id}, {"reason", JoinReasons(reports[i].reasons)}});
      }
      size_t finished = done.fetch_add(1) + 1;
      if (finished % log_every == 0 || finished == total) {
        LogInfo("ingest_progress", {{"done", finished}, {"total", total}});
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  return reports;
}

size_t DatasetReport::accepted_count() const {
  return static_cast<size_t>(
      std::count_if(cases.begin(), cases.end(), [](const CaseReport& c) { return c.accepted; }));
}

size_t DatasetReport::rejected_count() const { return cases.size() - accepted_count(); }

std::vector<std::string> DatasetReport::accepted_ids() const {
  std::vector<std::string> ids;
  for (const CaseReport& c : cases) {
    if (c.accepted) ids.push_back(c.id);
  }
  return ids;
}

StatusOr<DatasetReport> InspectDataset(const fs::path& data_dir, const ValidationOptions& options) {
  ASSIGN_OR_RETURN(DiscoveryResult discovery, DiscoverCases(data_dir));
  LogInfo("ingest_start", {{"data_dir", DisplayPath(data_dir)}, {"cases", discovery.cases.size()}});
  DatasetReport report;
  report.data_dir = data_dir;
  report.warnings = std::move(discovery.warnings);
  report.cases = ValidateCases(discovery.cases, options);
  LogInfo("ingest_done", {{"cases", report.cases.size()},
                          {"accepted", report.accepted_count()},
                          {"rejected", report.rejected_count()}});
  return report;
}

nlohmann::json CaseReportToJson(const CaseReport& report) {
  nlohmann::json files = nlohmann::json::object();
  for (Modality m : kAllModalities) {
    if (report.files.image(m))
      files[std::string(ModalityName(m))] = DisplayPath(*report.files.image(m));
  }
  if (report.files.seg) files["seg"] = DisplayPath(*report.files.seg);
  nlohmann::json j = {
      {"id", DisplayName(report.id)},
      {"status", report.accepted ? "accepted" : "rejected"},
      {"naming", BratsNamingName(report.naming)},
      {"dir", DisplayPath(report.dir)},
      {"files", files},
      {"has_seg", report.has_seg},
      {"reasons", report.reasons},
      {"warnings", report.warnings},
  };
  if (report.dims.count() > 0) {
    j["dims"] = {report.dims.x, report.dims.y, report.dims.z};
    j["spacing"] = report.geometry.spacing;
  } else {
    j["dims"] = nullptr;
    j["spacing"] = nullptr;
  }
  return j;
}

nlohmann::json DatasetReportToJson(const DatasetReport& report, const ValidationOptions& options) {
  nlohmann::json cases = nlohmann::json::array();
  for (const CaseReport& c : report.cases) cases.push_back(CaseReportToJson(c));
  nlohmann::json modalities = nlohmann::json::array();
  for (Modality m : options.required) modalities.push_back(ModalityName(m));
  return {
      {"data_dir", DisplayPath(report.data_dir)},
      {"modalities", modalities},
      {"cases", cases},
      {"warnings", report.warnings},
      {"summary",
       {{"cases", report.cases.size()},
        {"accepted", report.accepted_count()},
        {"rejected", report.rejected_count()}}},
  };
}

}  // namespace clisc
